//! Overlay networks (s4t extension): their addressing, and what a port on one gets — an IPv4
//! address from the network's range, a locally administered MAC, and a Linux interface name.
//! No I/O here.

use std::net::Ipv4Addr;

use serde_json::Value;

use crate::input::{BodyReader, InputError};

/// An IPv4 network in CIDR form, normalised (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

/// The MTU of an overlay interface when the network does not say: 1500 minus what the
/// encrypted UDP tunnel adds (IPv4 20 + UDP 8 + tunnel header and tag 32 + Ethernet 14, rounded
/// to leave room for an IPv6 underlay).
pub const DEFAULT_MTU: u16 = 1380;
pub const MIN_MTU: u16 = 576;
pub const MAX_MTU: u16 = 9000;

/// Linux's limit on interface names, without the terminating NUL.
pub const IFNAME_MAX: usize = 15;

impl Cidr {
    /// Reads `a.b.c.d/n`, with `n` from 8 to 30 (a network needs room for two hosts).
    pub fn parse(field: &str, text: &str) -> Result<Cidr, InputError> {
        let bad = || {
            InputError::field(
                field,
                format!(
                    "{field} {text:?} is not an IPv4 network such as 10.10.0.0/24 (prefix 8 to 30)"
                ),
            )
        };
        let (addr, prefix) = text.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Addresses a host may have: all but the network and broadcast addresses.
    pub fn hosts(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }

    /// The `n`-th host address (0-based).
    fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1 + n)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A network as created.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkFields {
    pub name: String,
    pub cidr: Cidr,
    pub mtu: u16,
    pub gateway: Option<Ipv4Addr>,
}

impl NetworkFields {
    /// Reads a create body: `name`, `cidr`, optional `mtu` and `gateway`.
    pub fn read(body: Value) -> Result<NetworkFields, InputError> {
        let mut r = BodyReader::new("Network", body, &["name", "cidr", "mtu", "gateway"])?;
        let name = r.name("name", 255, true)?.unwrap_or_default();
        let cidr_text = r.text_or_zero("cidr", 64)?.ok_or_else(|| {
            InputError::field(
                "cidr",
                "cidr is required: the network's IPv4 range, such as 10.10.0.0/24",
            )
        })?;
        let cidr = Cidr::parse("cidr", &cidr_text)?;
        let mtu = r
            .integer("mtu", MIN_MTU as i64..=MAX_MTU as i64)?
            .map_or(DEFAULT_MTU, |m| m as u16);
        let gateway = match r.text_or_zero("gateway", 64)? {
            None => None,
            Some(g) => {
                let ip: Ipv4Addr = g.trim().parse().map_err(|_| {
                    InputError::field("gateway", format!("gateway {g:?} is not an IPv4 address"))
                })?;
                if !cidr.contains(ip) || ip == cidr.network || ip == cidr.broadcast() {
                    return Err(InputError::field(
                        "gateway",
                        format!("gateway {ip} is not a host address of {cidr}"),
                    ));
                }
                Some(ip)
            }
        };
        Ok(NetworkFields {
            name,
            cidr,
            mtu,
            gateway,
        })
    }
}

/// A free host address of `cidr`: the first one from the `draw`-th host on (wrapping) that is
/// neither `used` nor the gateway. `None`: the network is full.
pub fn allocate(
    cidr: &Cidr,
    gateway: Option<Ipv4Addr>,
    used: &[Ipv4Addr],
    draw: u32,
) -> Option<Ipv4Addr> {
    let hosts = cidr.hosts();
    let taken: std::collections::HashSet<Ipv4Addr> = used.iter().copied().chain(gateway).collect();
    (0..hosts)
        .map(|i| cidr.host((draw % hosts + i) % hosts))
        .find(|ip| !taken.contains(ip))
}

/// A locally administered, unicast MAC address from six random bytes.
pub fn mac_from(random: [u8; 6]) -> String {
    let mut b = random;
    b[0] = (b[0] & 0b1111_1100) | 0b0000_0010;
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The board-side interface of a port: `s4t` and the first 12 hex digits of its uuid, 15
/// characters, within Linux's limit, and the same on the board and in the API.
pub fn vif_name(port_uuid: &str) -> String {
    let hex: String = port_uuid
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(IFNAME_MAX - 3)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("s4t{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cidr_table() {
        for (text, ok) in [
            ("10.10.0.0/24", Some(("10.10.0.0", 24, "10.10.0.255", 254))),
            ("10.10.0.77/24", Some(("10.10.0.0", 24, "10.10.0.255", 254))),
            (
                "192.168.4.0/30",
                Some(("192.168.4.0", 30, "192.168.4.3", 2)),
            ),
            (
                "10.0.0.0/8",
                Some(("10.0.0.0", 8, "10.255.255.255", 16_777_214)),
            ),
            ("10.0.0.0/31", None),
            ("10.0.0.0/7", None),
            ("10.0.0.0", None),
            ("10.0.0/24", None),
            ("fd00::/64", None),
            ("", None),
        ] {
            let got = Cidr::parse("cidr", text);
            match (ok, got) {
                (Some((net, p, bc, hosts)), Ok(c)) => {
                    assert_eq!(
                        (c.network.to_string().as_str(), c.prefix),
                        (net, p),
                        "{text}"
                    );
                    assert_eq!(c.broadcast().to_string(), bc, "{text}");
                    assert_eq!(c.hosts(), hosts, "{text}");
                }
                (None, Err(e)) => assert_eq!(e.field.as_deref(), Some("cidr"), "{text}"),
                (want, got) => panic!("{text}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn bodies_table() {
        let n = NetworkFields::read(json!({"name": "n1", "cidr": "10.1.0.0/24"})).unwrap();
        assert_eq!((n.mtu, n.gateway), (DEFAULT_MTU, None));
        let n = NetworkFields::read(
            json!({"name": "n1", "cidr": "10.1.0.0/24", "mtu": 9000, "gateway": "10.1.0.1"}),
        )
        .unwrap();
        assert_eq!((n.mtu, n.gateway), (9000, Some(Ipv4Addr::new(10, 1, 0, 1))));
        for (body, field) in [
            (json!({"cidr": "10.1.0.0/24"}), "name"),
            (json!({"name": "n"}), "cidr"),
            (json!({"name": "n", "cidr": "10.1.0.0/33"}), "cidr"),
            (
                json!({"name": "n", "cidr": "10.1.0.0/24", "mtu": 100}),
                "mtu",
            ),
            (
                json!({"name": "n", "cidr": "10.1.0.0/24", "gateway": "10.2.0.1"}),
                "gateway",
            ),
            (
                json!({"name": "n", "cidr": "10.1.0.0/24", "gateway": "10.1.0.255"}),
                "gateway",
            ),
            (
                json!({"name": "n", "cidr": "10.1.0.0/24", "gateway": "x"}),
                "gateway",
            ),
            (json!({"name": "n", "cidr": "10.1.0.0/24", "vlan": 3}), ""),
        ] {
            let e = NetworkFields::read(body.clone()).unwrap_err();
            if !field.is_empty() {
                assert_eq!(e.field.as_deref(), Some(field), "{body}: {}", e.message);
            }
        }
    }

    #[test]
    fn allocation_table() {
        let c = Cidr::parse("cidr", "10.0.0.0/29").unwrap(); // hosts .1 to .6
        let ip = |n: u8| Ipv4Addr::new(10, 0, 0, n);
        assert_eq!(allocate(&c, None, &[], 0), Some(ip(1)));
        assert_eq!(allocate(&c, Some(ip(1)), &[], 0), Some(ip(2)));
        assert_eq!(allocate(&c, None, &[ip(1), ip(2)], 0), Some(ip(3)));
        assert_eq!(allocate(&c, None, &[], 4), Some(ip(5)));
        // The draw wraps, and skips what is taken.
        assert_eq!(allocate(&c, None, &[ip(6)], 5), Some(ip(1)));
        assert_eq!(allocate(&c, None, &[], 6 + 2), Some(ip(3)));
        let all: Vec<Ipv4Addr> = (1..=6).map(ip).collect();
        assert_eq!(allocate(&c, None, &all, 0), None);
        assert_eq!(allocate(&c, Some(ip(6)), &all[..5], 3), None);
        // Never the network or the broadcast address.
        let c30 = Cidr::parse("cidr", "10.0.0.0/30").unwrap();
        let got: Vec<_> = (0..10)
            .filter_map(|d| allocate(&c30, None, &[], d))
            .collect();
        assert!(got.iter().all(|a| *a == ip(1) || *a == ip(2)), "{got:?}");
    }

    #[test]
    fn macs_and_names() {
        for seed in [[0u8; 6], [0xff; 6], [0x13, 0x37, 0, 1, 2, 3]] {
            let mac = mac_from(seed);
            let first = u8::from_str_radix(&mac[..2], 16).unwrap();
            assert_eq!(first & 0b11, 0b10, "{mac}: locally administered, unicast");
            assert_eq!(mac.len(), 17);
        }
        let name = vif_name("5fa322d5-0053-4b43-b711-bda11c4b7a43");
        assert_eq!(name, "s4t5fa322d50053");
        assert_eq!(name.len(), IFNAME_MAX);
        assert!(vif_name("X").len() <= IFNAME_MAX);
    }
}
