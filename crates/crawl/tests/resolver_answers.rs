//! The guarded resolver against a tiny DNS server of our own whose answers mix public and
//! private addresses (the simulated web only answers with its own blocks).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use aranea_crawl::ssrf::{AddressPolicy, GuardConfig, GuardError, GuardedResolver, NameServers};
use tokio::net::UdpSocket;

/// Answers for (name, record type): A = 1, AAAA = 28.
fn answers(name: &str, qtype: u16) -> Vec<IpAddr> {
    let ips: &[&str] = match (name, qtype) {
        ("public.test", 1) => &["93.184.216.34", "93.184.216.35"],
        ("mixed.test", 1) => &["93.184.216.34", "10.0.0.1"],
        ("metadata.test", 1) => &["169.254.169.254"],
        ("v6-loopback.test", 1) => &["93.184.216.34"],
        ("v6-loopback.test", 28) => &["::1"],
        ("mapped.test", 28) => &["::ffff:192.168.1.1"],
        _ => &[],
    };
    ips.iter().map(|ip| ip.parse().unwrap()).collect()
}

/// A DNS responder for the names above: copies the question, appends A/AAAA answers.
async fn serve(socket: UdpSocket) {
    let mut buf = [0u8; 512];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let query = &buf[..len];
        let mut at = 12;
        let mut labels = Vec::new();
        while at < len && query[at] != 0 {
            let l = query[at] as usize;
            labels.push(String::from_utf8_lossy(&query[at + 1..at + 1 + l]).to_ascii_lowercase());
            at += 1 + l;
        }
        let question_end = at + 5;
        let qtype = u16::from_be_bytes([query[at + 1], query[at + 2]]);
        let name = labels.join(".");
        let ips = answers(&name, qtype);
        let mut reply = query[..question_end].to_vec();
        reply[2] = 0x81; // response, recursion desired
        reply[3] = match name.as_str() {
            "silent.test" => continue, // a name server that never answers
            "servfail.test" => 0x82,   // recursion available, server failure
            "nx.test" => 0x83,         // recursion available, no such name
            _ => 0x80,                 // recursion available, no error
        };
        reply[6..8].copy_from_slice(&(ips.len() as u16).to_be_bytes());
        reply[8..12].fill(0);
        for ip in ips {
            reply.extend_from_slice(&[0xC0, 12]); // name: pointer to the question
            let (rtype, data) = match ip {
                IpAddr::V4(v4) => (1u16, v4.octets().to_vec()),
                IpAddr::V6(v6) => (28u16, v6.octets().to_vec()),
            };
            reply.extend_from_slice(&rtype.to_be_bytes());
            reply.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            reply.extend_from_slice(&(data.len() as u16).to_be_bytes());
            reply.extend_from_slice(&data);
        }
        let _ = socket.send_to(&reply, peer).await;
    }
}

async fn resolver() -> GuardedResolver {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = socket.local_addr().unwrap();
    tokio::spawn(serve(socket));
    let config = GuardConfig {
        name_servers: NameServers::Servers(vec![addr]),
        dns_timeout: std::time::Duration::from_millis(300),
        ..GuardConfig::default()
    };
    GuardedResolver::new(&config, Arc::new(AddressPolicy::new(&config))).unwrap()
}

fn refused(result: Result<Vec<IpAddr>, GuardError>) -> IpAddr {
    match result {
        Err(GuardError::NonPublicAddress { ip, .. }) => ip,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_name_with_only_public_addresses_resolves_to_all_of_them() {
    let resolver = resolver().await;
    let mut ips = resolver.resolve_checked("public.test").await.unwrap();
    ips.sort();
    assert_eq!(
        ips,
        [
            "93.184.216.34".parse::<IpAddr>().unwrap(),
            "93.184.216.35".parse().unwrap()
        ]
    );
}

#[tokio::test]
async fn one_private_address_fails_the_whole_name() {
    let resolver = resolver().await;
    assert_eq!(
        refused(resolver.resolve_checked("mixed.test").await).to_string(),
        "10.0.0.1"
    );
    assert_eq!(
        refused(resolver.resolve_checked("metadata.test").await).to_string(),
        "169.254.169.254"
    );
}

#[tokio::test]
async fn a_loopback_aaaa_beside_a_public_a_fails_the_name() {
    let resolver = resolver().await;
    assert_eq!(
        refused(resolver.resolve_checked("v6-loopback.test").await).to_string(),
        "::1"
    );
    assert_eq!(
        refused(resolver.resolve_checked("mapped.test").await).to_string(),
        "::ffff:192.168.1.1"
    );
}

#[tokio::test]
async fn a_name_without_addresses_is_a_typed_error() {
    let resolver = resolver().await;
    let result = resolver.resolve_checked("empty.test").await;
    assert!(
        matches!(
            result,
            Err(GuardError::NoAddresses { .. } | GuardError::Resolution { .. })
        ),
        "{result:?}"
    );
}

/// A name that does not exist is told from a name server that failed or never answered: the
/// crawler gives up on the first and tries the others again later.
#[tokio::test]
async fn a_missing_name_is_told_from_a_failing_name_server() {
    let resolver = resolver().await;
    let no_such_name = |result: Result<Vec<IpAddr>, GuardError>| match result {
        Err(GuardError::Resolution { no_such_name, .. }) => no_such_name,
        other => panic!("expected a resolution error, got {other:?}"),
    };
    assert!(no_such_name(resolver.resolve_checked("nx.test").await));
    assert!(!no_such_name(
        resolver.resolve_checked("servfail.test").await
    ));
    assert!(!no_such_name(resolver.resolve_checked("silent.test").await));
}
