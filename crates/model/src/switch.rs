//! The cloud's learning switch for one overlay network: which member a frame goes to. Pure: the
//! hub feeds it frames' addresses and the time, and sends the frame where it says.
//!
//! Members are the boards' tunnels (and the cloud's own TAP when bridged). A frame's source
//! address is learnt on the member it came from; a frame to a learnt unicast address goes to
//! that member only; broadcast, multicast and unknown unicast go to every other member of the
//! same network. Entries age out, and a member that leaves takes its entries with it. One
//! switch per network: frames never cross networks.

use std::collections::HashMap;
use std::time::Duration;

/// An Ethernet address.
pub type Mac = [u8; 6];

/// How long a learnt address stays without traffic from it (Linux bridges: 300 s).
pub const DEFAULT_AGEING: Duration = Duration::from_secs(300);

/// The most addresses one network learns; past it, unknown sources are not learnt (their frames
/// still flood), so a member cannot grow the table without bound.
pub const MAX_ENTRIES: usize = 4096;

/// Where a frame goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward<M> {
    /// To this member only.
    One(M),
    /// To every member but the one it came from.
    Flood,
    /// Nowhere (to its own sender, or from an address a frame may not come from).
    Drop,
}

#[derive(Debug, Clone)]
struct Entry<M> {
    member: M,
    /// When it was last seen, on the caller's clock.
    seen: Duration,
}

/// One network's switch. `M` names a member (a port uuid, say).
#[derive(Debug, Clone)]
pub struct Switch<M> {
    table: HashMap<Mac, Entry<M>>,
    ageing: Duration,
}

fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

impl<M: Clone + Eq> Switch<M> {
    pub fn new(ageing: Duration) -> Switch<M> {
        Switch {
            table: HashMap::new(),
            ageing,
        }
    }

    /// Decides where a frame from `member`, `src` → `dst`, goes at time `now`; learns `src`.
    pub fn forward(&mut self, member: &M, src: &Mac, dst: &Mac, now: Duration) -> Forward<M> {
        // A group address is never a source; all zeros is no one.
        if is_group(src) || *src == [0; 6] {
            return Forward::Drop;
        }
        let known = self.table.contains_key(src);
        if known || self.table.len() < MAX_ENTRIES {
            self.table.insert(
                *src,
                Entry {
                    member: member.clone(),
                    seen: now,
                },
            );
        }
        if is_group(dst) {
            return Forward::Flood;
        }
        match self.table.get(dst) {
            Some(e) if now.saturating_sub(e.seen) <= self.ageing => {
                if e.member == *member {
                    Forward::Drop
                } else {
                    Forward::One(e.member.clone())
                }
            }
            Some(_) => {
                self.table.remove(dst);
                Forward::Flood
            }
            None => Forward::Flood,
        }
    }

    /// Forgets what a member taught (its tunnel went down or its port was deleted).
    pub fn remove_member(&mut self, member: &M) {
        self.table.retain(|_, e| e.member != *member);
    }

    /// Drops entries older than the ageing time; returns how many.
    pub fn expire(&mut self, now: Duration) -> usize {
        let before = self.table.len();
        let ageing = self.ageing;
        self.table
            .retain(|_, e| now.saturating_sub(e.seen) <= ageing);
        before - self.table.len()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [0x02, 0, 0, 0, 0, 0xa];
    const B: Mac = [0x02, 0, 0, 0, 0, 0xb];
    const C: Mac = [0x02, 0, 0, 0, 0, 0xc];
    const BROADCAST: Mac = [0xff; 6];
    const MULTICAST: Mac = [0x01, 0x00, 0x5e, 0, 0, 1];

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn forwarding_table() {
        let mut sw: Switch<&str> = Switch::new(s(300));
        // (from, src, dst, at, where)
        let steps: &[(&str, Mac, Mac, u64, Forward<&str>)] = &[
            ("pa", A, BROADCAST, 0, Forward::Flood), // ARP who-has: flood, learn A
            ("pb", B, A, 1, Forward::One("pa")),     // reply to a learnt address
            ("pa", A, B, 2, Forward::One("pb")),     // both learnt now
            ("pa", A, C, 3, Forward::Flood),         // unknown unicast floods
            ("pa", A, MULTICAST, 4, Forward::Flood), // multicast floods
            ("pb", A, B, 5, Forward::Drop),          // A moved to pb: learnt there, B is on pb
            ("pc", C, A, 6, Forward::One("pb")),     // A is now reached through pb
            ("pa", BROADCAST, B, 7, Forward::Drop),  // a group source is refused
            ("pa", [0; 6], B, 8, Forward::Drop),     // so is all zeros
            ("pc", C, B, 400, Forward::Flood),       // B aged out (last seen at 5)
        ];
        for (i, (from, src, dst, at, want)) in steps.iter().enumerate() {
            assert_eq!(&sw.forward(from, src, dst, s(*at)), want, "step {i}");
        }
    }

    #[test]
    fn members_leave_and_entries_age() {
        let mut sw: Switch<u32> = Switch::new(s(10));
        sw.forward(&1, &A, &BROADCAST, s(0));
        sw.forward(&2, &B, &BROADCAST, s(5));
        sw.forward(&2, &C, &BROADCAST, s(5));
        assert_eq!(sw.len(), 3);
        sw.remove_member(&2);
        assert_eq!(sw.len(), 1);
        assert_eq!(
            sw.forward(&3, &[0x02, 0, 0, 0, 1, 1], &B, s(6)),
            Forward::Flood
        );
        assert_eq!(sw.expire(s(12)), 1, "A (seen at 0) is older than 10 s");
        assert_eq!(sw.len(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut sw: Switch<u32> = Switch::new(s(300));
        for i in 0..(MAX_ENTRIES as u32 + 100) {
            let b = i.to_be_bytes();
            sw.forward(&1, &[0x02, 0, b[0], b[1], b[2], b[3]], &BROADCAST, s(0));
        }
        assert_eq!(sw.len(), MAX_ENTRIES);
        // A known address still moves; an unknown one still floods.
        assert_eq!(
            sw.forward(&2, &[0x02, 0, 0, 0, 0, 0], &BROADCAST, s(1)),
            Forward::Flood
        );
        assert_eq!(
            sw.forward(&3, &A, &[0x02, 0, 0, 0, 0, 0], s(2)),
            Forward::One(2)
        );
    }
}
