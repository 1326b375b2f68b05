//! The SSRF guard: which addresses, schemes and ports the crawler may reach.
//!
//! Three checks, one policy ([`AddressPolicy`]):
//! 1. before any request, a URL's scheme (http/https), port and — if the host is an IP
//!    literal — the address itself ([`AddressPolicy::check_url`]);
//! 2. after resolution, *every* address a name resolves to ([`GuardedResolver`], plugged into
//!    reqwest as its DNS resolver): one non-public address fails the whole name, so a
//!    rebinding answer that mixes a public and a private address cannot slip through, and
//!    hyper connects only to what the guard returned (no second lookup, no rebinding window);
//! 3. after connecting, the peer address again ([`AddressPolicy::check_ip`] on
//!    `remote_addr()`), a tripwire in case anything above was bypassed.
//!
//! A configured CIDR allowlist admits otherwise refused addresses (the simulated web lives on
//! 127/8). This module must never perform a request itself, and must never admit an address
//! because of its *name*: only the addresses decide.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use ipnet::IpNet;
use url::{Host, Url};

/// Why the guard refused a URL or an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("scheme {scheme:?} is not fetched (only http and https)")]
    SchemeNotAllowed { scheme: String },
    #[error("port {port} is not in the allowed port ranges")]
    PortNotAllowed { port: u16 },
    #[error("URL has no host")]
    NoHost,
    #[error("{host} resolves to {ip}, which is {range} (not public, not allowlisted)")]
    NonPublicAddress {
        host: String,
        ip: IpAddr,
        range: &'static str,
    },
    #[error("resolving {host} failed: {message}")]
    Resolution {
        host: String,
        message: String,
        /// The name servers answered that the name has no such records (NXDOMAIN, or no
        /// data). False for timeouts, server failures and lost packets, which may pass.
        no_such_name: bool,
    },
    #[error("{host} has no A or AAAA records")]
    NoAddresses { host: String },
    #[error("could not build the DNS resolver: {message}")]
    ResolverSetup { message: String },
}

/// Where names are resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NameServers {
    /// The system configuration (`/etc/resolv.conf`). The default.
    #[default]
    System,
    /// These servers, over UDP and TCP (tests point this at simweb's DNS).
    Servers(Vec<SocketAddr>),
}

/// The guard's configuration.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// CIDR blocks admitted although they are not public. Default: none. Tests and the demo
    /// name the simulated web's provider blocks (e.g. `127.10.0.0/16`), never all of 127/8.
    pub allow_cidrs: Vec<IpNet>,
    /// Ports a URL may name. Default: 80, 443 and 1024–65535 (the well-known service ports
    /// below 1024 — SMTP, SSH, databases' neighbours — are refused).
    pub allowed_ports: Vec<RangeInclusive<u16>>,
    /// Where names are resolved. Default: the system configuration.
    pub name_servers: NameServers,
    /// Time for one DNS query before it is retried or fails. Default: 5 s.
    pub dns_timeout: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            allow_cidrs: Vec::new(),
            allowed_ports: vec![80..=80, 443..=443, 1024..=65535],
            name_servers: NameServers::System,
            dns_timeout: Duration::from_secs(5),
        }
    }
}

/// The address, scheme and port rules, shared by the resolver and the fetcher.
#[derive(Debug, Clone)]
pub struct AddressPolicy {
    allow_cidrs: Vec<IpNet>,
    allowed_ports: Vec<RangeInclusive<u16>>,
}

impl AddressPolicy {
    pub fn new(config: &GuardConfig) -> AddressPolicy {
        AddressPolicy {
            allow_cidrs: config.allow_cidrs.clone(),
            allowed_ports: config.allowed_ports.clone(),
        }
    }

    /// Ok if `ip` is public or allowlisted; otherwise the name of the range it falls in.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), &'static str> {
        match non_public_range(ip) {
            None => Ok(()),
            Some(_) if self.allowlisted(ip) => Ok(()),
            Some(range) => Err(range),
        }
    }

    fn allowlisted(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address reaches the IPv4 host: an IPv4 allowlist entry covers it.
        let canonical = ip.to_canonical();
        self.allow_cidrs
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// Scheme, port and (for IP literals, which no resolver ever sees) the address.
    pub fn check_url(&self, url: &Url) -> Result<(), GuardError> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(GuardError::SchemeNotAllowed {
                scheme: scheme.to_owned(),
            });
        }
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.allowed_ports.iter().any(|r| r.contains(&port)) {
            return Err(GuardError::PortNotAllowed { port });
        }
        let ip = match url.host() {
            None => return Err(GuardError::NoHost),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        self.check_ip(ip)
            .map_err(|range| GuardError::NonPublicAddress {
                host: ip.to_string(),
                ip,
                range,
            })
    }
}

/// The special-purpose range `ip` belongs to, or `None` if it is publicly routable unicast.
///
/// IANA's special-purpose registries, written out because `IpAddr::is_global` is unstable.
/// IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is judged by the embedded address.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        (0, _, _) => "0.0.0.0/8 (this network)",
        (10, _, _) => "10.0.0.0/8 (private)",
        (100, 64..=127, _) => "100.64.0.0/10 (shared address space)",
        (127, _, _) => "127.0.0.0/8 (loopback)",
        (169, 254, _) => "169.254.0.0/16 (link-local, cloud metadata)",
        (172, 16..=31, _) => "172.16.0.0/12 (private)",
        (192, 0, 0) => "192.0.0.0/24 (IETF protocol assignments)",
        (192, 0, 2) => "192.0.2.0/24 (documentation)",
        (192, 88, 99) => "192.88.99.0/24 (6to4 relay anycast)",
        (192, 168, _) => "192.168.0.0/16 (private)",
        (198, 18..=19, _) => "198.18.0.0/15 (benchmarking)",
        (198, 51, 100) => "198.51.100.0/24 (documentation)",
        (203, 0, 113) => "203.0.113.0/24 (documentation)",
        (224..=239, _, _) => "224.0.0.0/4 (multicast)",
        (240..=255, _, _) => "240.0.0.0/4 (reserved, broadcast)",
        _ => return None,
    };
    Some(range)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("::/128 (unspecified)");
    }
    if ip.is_loopback() {
        return Some("::1/128 (loopback)");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4).map(|_| "::ffff:0:0/96 (IPv4-mapped non-public address)");
    }
    match segments {
        [0, 0, 0, 0, 0, 0, _, _] => Some("::/96 (IPv4-compatible, deprecated)"),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => non_public_v4(embedded(hi, lo))
            .map(|_| "64:ff9b::/96 (NAT64 of a non-public IPv4 address)"),
        [0x64, 0xff9b, 1, ..] => Some("64:ff9b:1::/48 (local-use NAT64)"),
        [0x2002, hi, lo, ..] => {
            non_public_v4(embedded(hi, lo)).map(|_| "2002::/16 (6to4 of a non-public IPv4 address)")
        }
        // Teredo (2001::/32) hides its IPv4 addresses, benchmarking and ORCHID sit here too:
        // nothing in 2001::/23 is a web server a crawler needs.
        [0x2001, 0..=0x1ff, ..] => Some("2001::/23 (IETF protocol assignments, Teredo)"),
        [0x2001, 0xdb8, ..] => Some("2001:db8::/32 (documentation)"),
        [0x3fff, 0..=0x0fff, ..] => Some("3fff::/20 (documentation)"),
        [0x5f00, ..] => Some("5f00::/16 (SRv6 SIDs)"),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("fc00::/7 (unique local)"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("fe80::/10 (link-local)"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("fec0::/10 (site-local, deprecated)"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("ff00::/8 (multicast)"),
        // Everything else outside 2000::/3 (100::/64 discard, reserved blocks) is not
        // global unicast.
        [first, ..] if first & 0xe000 != 0x2000 => Some("outside 2000::/3 (not global unicast)"),
        _ => None,
    }
}

/// A reqwest DNS resolver that answers only names whose every address passes the policy.
#[derive(Clone)]
pub struct GuardedResolver {
    resolver: Arc<TokioResolver>,
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub fn new(config: &GuardConfig, policy: Arc<AddressPolicy>) -> Result<Self, GuardError> {
        let setup = |e: &dyn std::fmt::Display| GuardError::ResolverSetup {
            message: e.to_string(),
        };
        let mut builder = match &config.name_servers {
            NameServers::System => Resolver::builder_tokio().map_err(|e| setup(&e))?,
            NameServers::Servers(addrs) => {
                let servers = addrs
                    .iter()
                    .map(|addr| {
                        let mut udp = ConnectionConfig::udp();
                        udp.port = addr.port();
                        let mut tcp = ConnectionConfig::tcp();
                        tcp.port = addr.port();
                        NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                    })
                    .collect();
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let mut options = ResolverOpts::default();
        // Both families, so an AAAA record pointing inside fails the name even when A is public.
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.timeout = config.dns_timeout;
        options.attempts = 2;
        *builder.options_mut() = options;
        let resolver = builder.build().map_err(|e| setup(&e))?;
        Ok(GuardedResolver {
            resolver: Arc::new(resolver),
            policy,
        })
    }

    /// Every address of `host`, or why the name is refused.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>, GuardError> {
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| GuardError::Resolution {
                host: host.to_owned(),
                message: e.to_string(),
                no_such_name: e.is_no_records_found(),
            })?;
        let addrs: Vec<IpAddr> = lookup.iter().collect();
        if addrs.is_empty() {
            return Err(GuardError::NoAddresses {
                host: host.to_owned(),
            });
        }
        for &ip in &addrs {
            self.policy
                .check_ip(ip)
                .map_err(|range| GuardError::NonPublicAddress {
                    host: host.to_owned(),
                    ip,
                    range,
                })?;
        }
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let addrs = guard.resolve_checked(name.as_str()).await?;
            // Port 0: reqwest substitutes the URL's port.
            let iter: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(iter)
        })
    }
}

#[cfg(test)]
#[path = "ssrf_tests.rs"]
mod tests;
