//! Binding every socket a world needs before any task starts, so a port clash is an error
//! from `start` rather than a server that silently never runs. Must not serve anything.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::SimWebError;
use crate::tls::{self, Pki};
use crate::world::World;

pub struct TlsSockets {
    pub pki: Pki,
    pub port: u16,
    pub listeners: Vec<std::net::TcpListener>,
    pub ca_path: PathBuf,
}

pub struct Sockets {
    pub http_port: u16,
    pub hosts: Vec<std::net::TcpListener>,
    pub tls: Option<TlsSockets>,
    pub dns: std::net::UdpSocket,
    pub infra: std::net::TcpListener,
    pub smtp: std::net::TcpListener,
    /// SMTP with implicit TLS (RFC 8314), and its certificate.
    pub smtps: std::net::TcpListener,
    pub mail_pki: Pki,
}

pub fn io(what: &str, source: std::io::Error) -> SimWebError {
    SimWebError::Io {
        what: what.to_owned(),
        source,
    }
}

/// Web hosts on every simulated address (HTTP, and HTTPS if any site uses it), then DNS,
/// RDAP/webhooks and SMTP on the infrastructure address (RDAP and SMTP on free ports).
pub fn bind(
    world: &World,
    seed: u64,
    out_dir: &Path,
    http_port: Option<u16>,
    https_port: Option<u16>,
    dns_addr: SocketAddrV4,
    smtp_port: u16,
) -> Result<Sockets, SimWebError> {
    let host_ips = world.all_host_ips();
    let (http_port, hosts) = bind_hosts(&host_ips, http_port)?;
    let https_names: Vec<String> = world
        .sites
        .iter()
        .filter(|s| s.https)
        .flat_map(|s| std::iter::once(s.host.clone()).chain(s.aliases.clone()))
        .collect();
    let tls = if https_names.is_empty() {
        None
    } else {
        let pki = tls::build(seed, &https_names)?;
        let (port, listeners) = bind_hosts(&host_ips, https_port)?;
        let ca_path = out_dir.join("simweb-ca.pem");
        std::fs::write(&ca_path, &pki.ca_pem)
            .map_err(|source| io("writing the CA certificate", source))?;
        Some(TlsSockets {
            pki,
            port,
            listeners,
            ca_path,
        })
    };
    let dns = std::net::UdpSocket::bind(dns_addr)
        .map_err(|source| io("binding the DNS server", source))?;
    dns.set_nonblocking(true)
        .map_err(|source| io("configuring the DNS socket", source))?;
    let infra = bind_tcp(
        SocketAddrV4::new(*dns_addr.ip(), 0),
        "binding the RDAP server",
    )?;
    let smtp = bind_tcp(
        SocketAddrV4::new(*dns_addr.ip(), smtp_port),
        "binding the SMTP server",
    )?;
    let smtps = bind_tcp(
        SocketAddrV4::new(*dns_addr.ip(), 0),
        "binding the SMTP server (implicit TLS)",
    )?;
    let mail_pki = tls::build_mail(
        seed,
        &[dns_addr.ip().to_string(), "mx.simweb.sim".to_owned()],
    )?;
    Ok(Sockets {
        http_port,
        hosts,
        tls,
        dns,
        infra,
        smtp,
        smtps,
        mail_pki,
    })
}

pub fn tcp_addr(listener: &std::net::TcpListener) -> Result<SocketAddr, SimWebError> {
    listener
        .local_addr()
        .map_err(|source| io("reading a listening address", source))
}

pub fn udp_addr(socket: &std::net::UdpSocket) -> Result<SocketAddr, SimWebError> {
    socket
        .local_addr()
        .map_err(|source| io("reading the DNS address", source))
}

pub fn fresh_temp_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("aranea-simweb-{}-{n}-{nanos}", std::process::id()))
}

pub fn bind_tcp(addr: SocketAddrV4, what: &str) -> Result<std::net::TcpListener, SimWebError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| io(what, source))?;
    listener
        .set_nonblocking(true)
        .map_err(|source| io(what, source))?;
    Ok(listener)
}

/// Binds every host address on one port: the given one, or a free one found by trying.
pub fn bind_hosts(
    ips: &[Ipv4Addr],
    port: Option<u16>,
) -> Result<(u16, Vec<std::net::TcpListener>), SimWebError> {
    let attempts = if port.is_some() { 1 } else { 30 };
    let mut last_error = None;
    for _ in 0..attempts {
        let mut listeners = Vec::with_capacity(ips.len());
        let mut chosen = port.unwrap_or(0);
        let mut failed = false;
        for &ip in ips {
            match bind_tcp(SocketAddrV4::new(ip, chosen), "binding a web host") {
                Ok(listener) => {
                    if chosen == 0 {
                        chosen = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                    }
                    listeners.push(listener);
                }
                Err(e) => {
                    last_error = Some(e);
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            return Ok((chosen, listeners));
        }
    }
    match (port, last_error) {
        (Some(_), Some(e)) => Err(e),
        _ => Err(SimWebError::NoSharedPort {
            hosts: ips.len(),
            attempts,
        }),
    }
}
