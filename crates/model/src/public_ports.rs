//! The public port pool of service tunnels: which ports boards' services are exposed on.
//!
//! The pool is not kept anywhere: the free ports are the configured range minus the ports of the
//! exposed services in the store, and the store's UNIQUE constraint on the public port makes an
//! allocation safe between cloud replicas (a lost race is retried with another port).

use std::ops::RangeInclusive;

/// The default range, what IoTronic's defaults (service_port_min 50000, service_port_max
/// 50100) give: 50001 to 50098.
pub const DEFAULT_RANGE: RangeInclusive<u16> = 50001..=50098;

/// Parses `FIRST-LAST` (inclusive).
pub fn parse_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let bad = || {
        format!("public port range {text:?} is not FIRST-LAST with 1 <= FIRST <= LAST <= 65535 (e.g. 50001-50098)")
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let first: u16 = a.trim().parse().map_err(|_| bad())?;
    let last: u16 = b.trim().parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok(first..=last)
}

/// Picks a free port of `range`, given the ports in use (any order, may hold ports outside the
/// range), spread by `draw` (a random number): the `draw % free`-th free port. `None` when the
/// range is full.
pub fn pick_free(range: &RangeInclusive<u16>, used: &[i64], draw: u64) -> Option<u16> {
    let mut taken: Vec<u16> = used
        .iter()
        .filter_map(|p| u16::try_from(*p).ok())
        .filter(|p| range.contains(p))
        .collect();
    taken.sort_unstable();
    taken.dedup();
    let size = (*range.end() as u64) - (*range.start() as u64) + 1;
    let free = size - taken.len() as u64;
    if free == 0 {
        return None;
    }
    // The k-th free port: walk the sorted taken ports, shifting k past each one at or below it.
    let mut candidate = *range.start() as u64 + draw % free;
    for t in taken {
        if (t as u64) <= candidate {
            candidate += 1;
        } else {
            break;
        }
    }
    Some(candidate as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_kth_free_port() {
        // (range, used, draw, want)
        type Case = (RangeInclusive<u16>, &'static [i64], u64, Option<u16>);
        let cases: &[Case] = &[
            (10..=14, &[], 0, Some(10)),
            (10..=14, &[], 4, Some(14)),
            (10..=14, &[], 5, Some(10)),
            (10..=14, &[10], 0, Some(11)),
            (10..=14, &[11, 10], 0, Some(12)),
            (10..=14, &[12], 2, Some(13)),
            (10..=14, &[10, 12, 14], 1, Some(13)),
            (10..=14, &[10, 11, 12, 13, 14], 0, None),
            (10..=14, &[9, 15, 70000, -1], 4, Some(14)),
            (10..=14, &[13, 13], 3, Some(14)),
            (7..=7, &[], 123, Some(7)),
            (7..=7, &[7], 0, None),
            (65535..=65535, &[], 9, Some(65535)),
        ];
        for (range, used, draw, want) in cases {
            assert_eq!(
                pick_free(range, used, *draw),
                *want,
                "{range:?} {used:?} {draw}"
            );
        }
    }

    #[test]
    fn every_free_port_is_reachable_and_none_taken_is_returned() {
        let range = 100..=140;
        let used: Vec<i64> = (100..=140).filter(|p| p % 3 == 0).collect();
        let mut seen = std::collections::BTreeSet::new();
        for draw in 0..200 {
            let p = pick_free(&range, &used, draw).unwrap();
            assert!(!used.contains(&(p as i64)), "{p}");
            seen.insert(p);
        }
        assert_eq!(seen.len(), 41 - used.len());
    }

    #[test]
    fn ranges_parse_with_clear_errors() {
        assert_eq!(parse_range("50001-50098"), Ok(50001..=50098));
        assert_eq!(parse_range(" 1 - 1 "), Ok(1..=1));
        for bad in ["", "5", "0-10", "10-5", "a-b", "1-70000"] {
            let e = parse_range(bad).unwrap_err();
            assert!(e.contains("FIRST-LAST"), "{bad}: {e}");
        }
    }
}
