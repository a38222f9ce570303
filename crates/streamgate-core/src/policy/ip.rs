//! IP ranges, client-IP resolution behind trusted proxies, and prefix widening.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An address or CIDR range. A bare address is a /32 (IPv4) or /128 (IPv6).
/// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpRange(IpNet);

impl IpRange {
    /// Parses `203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32` (host bits are cleared).
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let t = text.trim();
        if let Ok(net) = IpNet::from_str(t) {
            return Ok(IpRange::from_net(net));
        }
        match IpAddr::from_str(t) {
            Ok(addr) => Ok(IpRange::single(addr)),
            Err(_) => Err(format!("{text:?} is not an IP address or CIDR range")),
        }
    }

    /// The range holding exactly `addr`.
    pub fn single(addr: IpAddr) -> IpRange {
        IpRange(IpNet::from(canonical_ip(addr)))
    }

    fn from_net(net: IpNet) -> IpRange {
        let net = match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                Some(v4) if v6.prefix_len() >= 96 => {
                    let len = v6.prefix_len() - 96;
                    IpNet::new(IpAddr::V4(v4), len).unwrap_or(IpNet::from(IpAddr::V4(v4)))
                }
                _ => net,
            },
            IpNet::V4(_) => net,
        };
        IpRange(net.trunc())
    }

    /// Whether `addr` is inside the range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(&canonical_ip(addr))
    }

    /// The prefix length in bits (32 or 128 for a single address).
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// The range's first address (the address itself for a single one).
    pub fn first_address(&self) -> IpAddr {
        self.0.network()
    }

    /// Whether this is an IPv4 range (IPv4-mapped IPv6 ranges count as IPv4).
    pub fn is_ipv4(&self) -> bool {
        matches!(self.0, IpNet::V4(_))
    }

    /// Whether this is a single address (not a wider range).
    pub fn is_single(&self) -> bool {
        self.0.prefix_len() == self.0.max_prefix_len()
    }

    /// The same range widened to at most `/v4` or `/v6` bits (never narrowed).
    pub fn widened(&self, v4: Option<u8>, v6: Option<u8>) -> IpRange {
        let target = match self.0 {
            IpNet::V4(_) => v4,
            IpNet::V6(_) => v6,
        };
        match target {
            Some(len) if len < self.0.prefix_len() => {
                IpNet::new(self.0.addr(), len).map(|n| IpRange(n.trunc())).unwrap_or(*self)
            }
            _ => *self,
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl TryFrom<String> for IpRange {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        IpRange::parse(&value)
    }
}

impl From<IpRange> for String {
    fn from(value: IpRange) -> String {
        value.to_string()
    }
}

/// Maps IPv4-mapped IPv6 (`::ffff:a.b.c.d`) to plain IPv4, so dual-stack sockets compare right.
pub fn canonical_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        IpAddr::V4(_) => addr,
    }
}

/// The network a client address belongs to for session binding and counting: its /24
/// (IPv4) or /64 (IPv6, where privacy addresses rotate).
pub fn network_of(addr: IpAddr) -> IpRange {
    match canonical_ip(addr) {
        v4 @ IpAddr::V4(_) => IpRange::single(v4).widened(Some(24), None),
        v6 @ IpAddr::V6(_) => IpRange::single(v6).widened(None, Some(64)),
    }
}

/// Whether any range in `ranges` holds `addr`.
pub fn any_contains(ranges: &[IpRange], addr: IpAddr) -> bool {
    ranges.iter().any(|r| r.contains(addr))
}

/// The client's IP. `X-Forwarded-For` is believed only when the direct peer is a trusted
/// proxy; it is then read right to left, skipping trusted proxies, so a client cannot
/// forge its address by prepending entries.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpRange]) -> Option<IpAddr> {
    let peer = peer.map(canonical_ip);
    let (Some(peer_ip), Some(header)) = (peer, forwarded_for) else {
        return peer;
    };
    if !any_contains(trusted, peer_ip) {
        return Some(peer_ip);
    }
    let mut candidate = peer_ip;
    for hop in header.rsplit(',') {
        match parse_forwarded_hop(hop) {
            Some(ip) => {
                candidate = ip;
                if !any_contains(trusted, ip) {
                    return Some(ip);
                }
            }
            // An unparsable hop ends what we can believe; use the last good one.
            None => return Some(candidate),
        }
    }
    Some(candidate)
}

fn parse_forwarded_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let hop = hop.strip_prefix('[').map_or(hop, |rest| rest.split(']').next().unwrap_or(rest));
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical_ip(ip));
    }
    // `203.0.113.7:5123` style (IPv4 with port).
    let (host, _port) = hop.rsplit_once(':')?;
    IpAddr::from_str(host).ok().map(canonical_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        IpAddr::from_str(s).unwrap()
    }

    #[test]
    fn parses_addresses_and_ranges() {
        let r = IpRange::parse("203.0.113.9/24").unwrap();
        assert_eq!(r.to_string(), "203.0.113.0/24");
        assert!(r.contains(ip("203.0.113.200")));
        assert!(!r.contains(ip("203.0.114.1")));
        assert!(IpRange::parse("::ffff:1.2.3.4").unwrap().contains(ip("1.2.3.4")));
        assert!(IpRange::parse("1.2.3.4").unwrap().contains(ip("::ffff:1.2.3.4")));
        assert!(IpRange::parse("banana").is_err());
    }

    #[test]
    fn widening_only_widens() {
        let r = IpRange::parse("198.51.100.77").unwrap();
        assert_eq!(r.widened(Some(24), None).to_string(), "198.51.100.0/24");
        let wide = IpRange::parse("10.0.0.0/8").unwrap();
        assert_eq!(wide.widened(Some(24), None), wide);
        let v6 = IpRange::parse("2001:db8:1:2:3::1").unwrap();
        assert_eq!(v6.widened(Some(24), Some(64)).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let trusted = vec![IpRange::parse("10.0.0.0/8").unwrap()];
        // Untrusted peer: header ignored.
        assert_eq!(client_ip(Some(ip("198.51.100.1")), Some("1.1.1.1"), &trusted), Some(ip("198.51.100.1")));
        // Trusted peer: rightmost untrusted hop wins; a forged left entry is ignored.
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), Some("6.6.6.6, 203.0.113.5, 10.0.0.9"), &trusted),
            Some(ip("203.0.113.5"))
        );
        // Garbage hop: last believable address.
        assert_eq!(client_ip(Some(ip("10.0.0.2")), Some("junk"), &trusted), Some(ip("10.0.0.2")));
        assert_eq!(client_ip(Some(ip("10.0.0.2")), Some("[2001:db8::1]:443"), &trusted), Some(ip("2001:db8::1")));
        assert_eq!(client_ip(None, Some("1.1.1.1"), &trusted), None);
    }
}
