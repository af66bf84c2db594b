//! Which IP addresses plugins may connect to (the SSRF guard).
//!
//! Every outbound request is resolved by the host, each address is checked,
//! and the connection goes to a checked address (no second lookup, so DNS
//! rebinding cannot swap in another one). Loopback, private, link-local,
//! CGNAT, unique-local, IPv4-mapped/-compatible, unspecified, multicast,
//! broadcast, documentation and other reserved ranges are refused unless
//! the hoster lists a network in `[sandbox] allow_private_networks`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An IP network, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parse `10.0.0.0/8`, `::1/128` or a bare address (a single host).
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr: IpAddr =
            addr.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| format!("`{text}` is not an IP network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("`{text}`: the prefix length must be 0–{max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(u128::from(net.to_bits()) << 96, u128::from(ip.to_bits()) << 96, self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_matches(net.to_bits(), ip.to_bits(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_matches(net: u128, ip: u128, prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
    net & mask == ip & mask
}

/// The networks a host lets plugins reach beyond the public internet.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    allowed: Vec<IpNet>,
}

/// Why a request was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{host} resolves only to addresses plugins may not reach ({addresses})")]
    NonPublic { host: String, addresses: String },
    #[error("{host} could not be resolved")]
    Unresolvable { host: String },
}

impl NetworkPolicy {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Parse the `allow_private_networks` entries.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries.iter().map(|entry| IpNet::parse(entry)).collect::<Result<_, _>>().map(Self::new)
    }

    /// Whether plugins may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allowed.iter().any(|net| net.contains(ip))
    }

    /// Resolve `host` (a name or an IP literal, IPv6 with or without
    /// brackets) and keep the addresses plugins may reach.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let candidates: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match tokio::net::lookup_host((host, port)).await {
                Ok(addresses) => addresses.collect(),
                Err(_) => return Err(Refusal::Unresolvable { host: host.to_string() }),
            },
        };
        if candidates.is_empty() {
            return Err(Refusal::Unresolvable { host: host.to_string() });
        }
        let permitted: Vec<SocketAddr> = candidates.iter().copied().filter(|address| self.permits(address.ip())).collect();
        if permitted.is_empty() {
            let addresses = candidates.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
            return Err(Refusal::NonPublic { host: host.to_string(), addresses });
        }
        Ok(permitted)
    }
}

/// A globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    !RESERVED.iter().any(|net| net.contains(ip))
}

const fn v4(octets: [u8; 4], prefix: u8) -> IpNet {
    IpNet { addr: IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3])), prefix }
}

const fn v6(segments: [u16; 3], prefix: u8) -> IpNet {
    IpNet { addr: IpAddr::V6(Ipv6Addr::new(segments[0], segments[1], segments[2], 0, 0, 0, 0, 0)), prefix }
}

/// Networks that are not the public internet.
const RESERVED: &[IpNet] = &[
    v4([0, 0, 0, 0], 8),                                                                // "this network", unspecified
    v4([10, 0, 0, 0], 8),                                                               // private
    v4([100, 64, 0, 0], 10),                                                            // CGNAT
    v4([127, 0, 0, 0], 8),                                                              // loopback
    v4([169, 254, 0, 0], 16),                                                           // link-local, cloud metadata
    v4([172, 16, 0, 0], 12),                                                            // private
    v4([192, 0, 0, 0], 24),                                                             // IETF protocol assignments
    v4([192, 0, 2, 0], 24),                                                             // documentation
    v4([192, 88, 99, 0], 24),                                                           // 6to4 relay anycast
    v4([192, 168, 0, 0], 16),                                                           // private
    v4([198, 18, 0, 0], 15),                                                            // benchmarking
    v4([198, 51, 100, 0], 24),                                                          // documentation
    v4([203, 0, 113, 0], 24),                                                           // documentation
    v4([224, 0, 0, 0], 4),                                                              // multicast
    v4([240, 0, 0, 0], 4),                                                              // reserved, broadcast
    v6([0, 0, 0], 96),                                                                  // ::/96: unspecified, loopback, IPv4-compatible
    IpNet { addr: IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)), prefix: 96 }, // IPv4-mapped
    v6([0x64, 0xff9b, 0], 96),                                                          // NAT64 (could reach any IPv4 address)
    v6([0x64, 0xff9b, 1], 48),                                                          // local NAT64
    v6([0x100, 0, 0], 64),                                                              // discard
    v6([0x2001, 0, 0], 23),                                                             // IETF protocol assignments (Teredo, ORCHID, …)
    v6([0x2001, 0xdb8, 0], 32),                                                         // documentation
    v6([0x2002, 0, 0], 16),                                                             // 6to4 (embeds an IPv4 address)
    v6([0xfc00, 0, 0], 7),                                                              // unique local
    v6([0xfe80, 0, 0], 10),                                                             // link-local
    v6([0xfec0, 0, 0], 10),                                                             // site-local (deprecated)
    v6([0xff00, 0, 0], 8),                                                              // multicast
];

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for text in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(text)), "{text} must be refused");
        }
    }

    #[test]
    fn internet_addresses_are_public() {
        for text in ["8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "2a00:1450:4001::200e"] {
            assert!(is_public(ip(text)), "{text} must be allowed");
        }
    }

    #[test]
    fn networks_parse_and_match() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.0.1")) && !net.contains(ip("11.0.0.1")) && !net.contains(ip("::1")));
        assert!(IpNet::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!IpNet::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        assert!(IpNet::parse("[::1]/128").unwrap().contains(ip("::1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("192.168.0.1")));
        assert!(IpNet::parse("10.0.0.0/33").unwrap_err().contains("prefix"));
        assert!(IpNet::parse("localhost").unwrap_err().contains("not an IP network"));
    }

    #[tokio::test]
    async fn resolution_keeps_only_reachable_addresses() {
        let closed = NetworkPolicy::default();
        assert!(matches!(closed.resolve("127.0.0.1", 80).await, Err(Refusal::NonPublic { .. })));
        assert!(matches!(closed.resolve("[::1]", 80).await, Err(Refusal::NonPublic { .. })));
        assert!(matches!(closed.resolve("localhost", 80).await, Err(Refusal::NonPublic { .. })));
        let open = NetworkPolicy::parse(&["127.0.0.0/8".into()]).unwrap();
        assert_eq!(open.resolve("127.0.0.1", 8080).await.unwrap(), vec!["127.0.0.1:8080".parse().unwrap()]);
        assert!(matches!(open.resolve("169.254.169.254", 80).await, Err(Refusal::NonPublic { .. })));
    }
}
