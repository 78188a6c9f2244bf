//! Host names of webservices: `<name>.<dns>.<zone>`, checked before anything is stored.

/// Checks one DNS label (a webservice `name` or a board's `dns`): 1 to 63 letters, digits or
/// hyphens, not starting or ending with a hyphen. Returns it in lower case.
pub fn label(field: &str, value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!(
            "{field} {value:?} is not a DNS label: use 1 to 63 letters, digits or hyphens (not first or last)"
        ))
    }
}

/// Checks a DNS zone (`example.org`, a trailing dot allowed): labels separated by dots, at most
/// 200 characters so that `<name>.<dns>.<zone>` fits in a host name. Returns it in lower case
/// without the trailing dot.
pub fn zone(field: &str, value: &str) -> Result<String, String> {
    let trimmed = value.strip_suffix('.').unwrap_or(value);
    if trimmed.is_empty() || trimmed.len() > 200 {
        return Err(format!(
            "{field} {value:?} is not a DNS zone: give one such as example.org"
        ));
    }
    trimmed
        .split('.')
        .map(|l| label(field, l))
        .collect::<Result<Vec<_>, _>>()
        .map(|labels| labels.join("."))
        .map_err(|_| format!("{field} {value:?} is not a DNS zone: give one such as example.org"))
}

/// The host name a webservice is published under.
pub fn host_name(name: &str, dns: &str, zone: &str) -> String {
    format!("{name}.{dns}.{zone}").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_table() {
        for (value, ok) in [
            ("web", Some("web")),
            ("Board-1", Some("board-1")),
            ("a", Some("a")),
            (&"x".repeat(63) as &str, Some(&"x".repeat(63) as &str)),
            (&"x".repeat(64), None),
            ("", None),
            ("-a", None),
            ("a-", None),
            ("a.b", None),
            ("a_b", None),
            ("caffè", None),
            ("a b", None),
        ] {
            let got = label("dns", value);
            assert_eq!(got.as_deref().ok(), ok, "{value:?}: {got:?}");
            if let Err(e) = got {
                assert!(e.starts_with("dns "), "{e}");
            }
        }
    }

    #[test]
    fn zones_table() {
        for (value, ok) in [
            ("example.org", Some("example.org")),
            ("Example.Org.", Some("example.org")),
            ("test", Some("test")),
            ("", None),
            (".", None),
            ("a..b", None),
            (".a", None),
            ("a/b", None),
        ] {
            assert_eq!(zone("zone", value).ok().as_deref(), ok, "{value:?}");
        }
        assert_eq!(host_name("Web", "b1", "example.org"), "web.b1.example.org");
    }
}
