//! The SSRF guard: which addresses a feed fetch may connect to.
//!
//! Feed URLs come from users, OPML files and redirects chosen by remote
//! servers, so without a guard feedfold could be pointed at the metadata
//! service (169.254.169.254), the database or an admin UI on the LAN. The
//! check runs on the *resolved* address inside the DNS resolver that reqwest
//! uses to connect (so DNS rebinding between a check and the connect cannot
//! slip through), and separately on IP-literal hosts, which reqwest never
//! hands to the resolver.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// How to lift the refusal; repeated in every error so operators need no docs.
pub const HOW_TO_ALLOW: &str =
    "set fetch.allow_private_networks = true or add the range to fetch.allowed_cidrs";

/// Why an address is not a public unicast address, or `None` when it is.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified/\"this network\" address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_private() {
        Some("private network address")
    } else if ip.is_link_local() {
        Some("link-local address")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("carrier-grade NAT (100.64.0.0/10) address")
    } else if ip.is_broadcast() {
        Some("broadcast address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if a >= 240 {
        Some("reserved address")
    } else if ip.is_documentation() {
        Some("documentation address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignment address")
    } else if a == 198 && (b & 0xfe) == 18 {
        Some("benchmarking address")
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified address");
    }
    if ip.is_loopback() {
        return Some("loopback address");
    }
    // Forms that embed an IPv4 address reach that IPv4 host, so they are
    // judged by the embedded address: mapped (::ffff:a.b.c.d), the deprecated
    // compatible form (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4).map(|_| "IPv4-mapped IPv6 form of a non-public address");
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return classify_v4(v4).map(|_| "IPv4-compatible IPv6 form of a non-public address");
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return classify_v4(v4).map(|_| "NAT64 form of a non-public address");
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        if classify_v4(v4).is_some() {
            return Some("6to4 form of a non-public address");
        }
    }
    if (seg[0] & 0xfe00) == 0xfc00 {
        Some("unique local (private) address")
    } else if (seg[0] & 0xffc0) == 0xfe80 {
        Some("link-local address")
    } else if (seg[0] & 0xffc0) == 0xfec0 {
        Some("site-local address")
    } else if (seg[0] & 0xff00) == 0xff00 {
        Some("multicast address")
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some("documentation address")
    } else if seg[..4] == [0x0100, 0, 0, 0] {
        Some("discard-only address")
    } else {
        None
    }
}

/// A refused connection target. Its Display is the user-facing message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("refused to connect to {ip} ({reason}) for host {host}: {HOW_TO_ALLOW}")]
pub struct Blocked {
    pub host: String,
    pub ip: IpAddr,
    pub reason: &'static str,
}

/// The configured policy: deny non-public addresses unless allowed.
#[derive(Debug, Clone)]
pub struct Guard {
    allow_all: bool,
    allowed: Vec<IpNet>,
}

impl Guard {
    /// Parses `allowed_cidrs`; a bare address counts as a single-host range.
    pub fn new(allow_private_networks: bool, allowed_cidrs: &[String]) -> Result<Guard, String> {
        let mut allowed = Vec::with_capacity(allowed_cidrs.len());
        for raw in allowed_cidrs {
            let s = raw.trim();
            let net = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("fetch.allowed_cidrs: {raw:?} is not a CIDR range"))?;
            allowed.push(net);
        }
        Ok(Guard {
            allow_all: allow_private_networks,
            allowed,
        })
    }

    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Blocked> {
        if self.allow_all {
            return Ok(());
        }
        let Some(reason) = classify(ip) else {
            return Ok(());
        };
        let canonical = ip.to_canonical();
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(Blocked {
            host: host.to_owned(),
            ip,
            reason,
        })
    }
}

/// reqwest DNS resolver that drops refused addresses after resolution, so the
/// connector only ever sees addresses that passed the guard.
pub struct GuardedResolver {
    guard: Arc<Guard>,
    /// Proxy hosts from the environment: the proxy is the operator's choice,
    /// so it is exempt even when it lives on a private network.
    exempt: HashSet<String>,
}

impl GuardedResolver {
    pub fn new(guard: Arc<Guard>, exempt: HashSet<String>) -> GuardedResolver {
        GuardedResolver { guard, exempt }
    }
}

/// Resolves `host` and keeps only the addresses the guard accepts.
pub async fn resolve_checked(
    guard: &Guard,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let mut first_refusal = None;
    let mut kept = Vec::with_capacity(addrs.len());
    for addr in addrs {
        match guard.check(host, addr.ip()) {
            Ok(()) => kept.push(addr),
            Err(b) => {
                first_refusal.get_or_insert(b);
            }
        }
    }
    if kept.is_empty() {
        return Err(match first_refusal {
            Some(b) => Box::new(b),
            None => format!("failed to lookup address for {host}: no addresses").into(),
        });
    }
    Ok(kept)
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.guard);
        let host = name.as_str().to_owned();
        let exempt = self.exempt.contains(&host.to_ascii_lowercase());
        Box::pin(async move {
            let addrs = if exempt {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            } else {
                resolve_checked(&guard, &host, 0).await?
            };
            let it: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

/// Hostnames of proxies configured in the environment (lowercased).
pub fn proxy_hosts_from_env() -> HashSet<String> {
    let mut hosts = HashSet::new();
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        let Ok(value) = std::env::var(var) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let with_scheme = if value.contains("://") {
            value.to_owned()
        } else {
            format!("http://{value}")
        };
        if let Some(host) = url::Url::parse(&with_scheme)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        {
            hosts.insert(host);
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let cases: &[(&str, bool)] = &[
            // (address, blocked by default)
            ("8.8.8.8", false),
            ("93.184.216.34", false),
            ("1.1.1.1", false),
            ("127.0.0.1", true),
            ("127.255.255.254", true),
            ("10.0.0.1", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("100.127.255.255", true),
            ("100.128.0.1", false),
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("255.255.255.255", true),
            ("224.0.0.1", true),
            ("239.255.255.250", true),
            ("240.0.0.1", true),
            ("192.0.2.10", true),
            ("198.51.100.7", true),
            ("203.0.113.9", true),
            ("198.18.0.1", true),
            ("192.0.0.8", true),
            ("::", true),
            ("::1", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("fe80::1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("2001:db8::1", true),
            ("100::1", true),
            ("2606:4700:4700::1111", false),
            ("2a00:1450:4001::200e", false),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.1.2.3", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", false),
            ("::127.0.0.1", true),
            ("::8.8.8.8", false),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::808:808", false),
            ("2002:0a00:0001::1", true),
            ("2002:0808:0808::1", false),
        ];
        for (addr, blocked) in cases {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(classify(ip).is_some(), *blocked, "{addr}");
        }
    }

    #[test]
    fn allow_all_and_cidrs() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let deny = Guard::new(false, &[]).unwrap();
        let err = deny.check("localhost", ip).unwrap_err().to_string();
        assert!(err.contains("127.0.0.1"), "{err}");
        assert!(err.contains("loopback"), "{err}");
        assert!(err.contains("fetch.allow_private_networks"), "{err}");
        assert!(err.contains("fetch.allowed_cidrs"), "{err}");
        assert!(Guard::new(true, &[]).unwrap().check("h", ip).is_ok());

        let one = Guard::new(false, &["127.0.0.1/32".into(), "10.0.0.0/8".into()]).unwrap();
        assert!(one.check("h", ip).is_ok());
        assert!(one.check("h", "10.9.9.9".parse().unwrap()).is_ok());
        assert!(one.check("h", "127.0.0.2".parse().unwrap()).is_err());
        assert!(one.check("h", "::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(one.check("h", "169.254.169.254".parse().unwrap()).is_err());
        // Public addresses never need an allow-list entry.
        assert!(one.check("h", "8.8.8.8".parse().unwrap()).is_ok());
        // A bare address is accepted as a /32.
        let bare = Guard::new(false, &["192.168.1.5".into()]).unwrap();
        assert!(bare.check("h", "192.168.1.5".parse().unwrap()).is_ok());
        assert!(bare.check("h", "192.168.1.6".parse().unwrap()).is_err());
    }

    #[test]
    fn invalid_cidr_is_an_error() {
        assert!(Guard::new(false, &["10.0.0.0/33".into()]).is_err());
        assert!(Guard::new(false, &["not-a-range".into()]).is_err());
    }
}
