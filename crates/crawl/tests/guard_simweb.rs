//! The SSRF guard against the simulated internet: names, literals and redirects that lead to
//! private addresses are refused before anything is sent there.

mod common;

use std::net::IpAddr;

use aranea_crawl::fetch::{FetchError, Fetcher};
use aranea_crawl::ssrf::{GuardConfig, GuardError};
use common::{HOSTILE, config, fetcher, url, world};

fn refused_ip(error: FetchError) -> IpAddr {
    match error {
        FetchError::Refused(GuardError::NonPublicAddress { ip, .. }) => ip,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_to_private_metadata_and_loopback_addresses_are_refused() {
    let world = world();
    let fetcher = fetcher(&world);
    for (path, target) in [
        ("/quirks/redirect/private", "10.0.0.1"),
        ("/quirks/redirect/metadata", "169.254.169.254"),
        // 127.0.0.1 is loopback and outside the allowlisted provider blocks.
        ("/quirks/redirect/loopback", "127.0.0.1"),
    ] {
        let fetch = fetcher.fetch(&url(&world, HOSTILE, path)).await;
        assert_eq!(fetch.redirects.len(), 1, "{path}");
        assert_eq!(
            refused_ip(fetch.outcome.unwrap_err()).to_string(),
            target,
            "{path}"
        );
    }
    // The world saw exactly the three redirecting requests, all on allowlisted addresses.
    let requests = world.requests();
    assert_eq!(requests.len(), 3);
    for request in requests {
        let local = request.local.ip().to_string();
        assert!(local.starts_with("127.10."), "{local}");
        assert!(request.target.starts_with("/quirks/redirect/"));
    }
}

#[tokio::test]
async fn without_an_allowlist_the_simulated_web_itself_is_unreachable() {
    let world = world();
    let mut config = config(&world);
    config.guard.allow_cidrs.clear();
    let fetcher = Fetcher::new(config).unwrap();
    for host in ["sunny-gallery.sim", HOSTILE, "secure-gallery.sim"] {
        let fetch = fetcher.fetch(&url(&world, host, "/")).await;
        let ip = refused_ip(fetch.outcome.unwrap_err());
        assert!(ip.is_loopback(), "{ip}");
    }
    assert!(
        world.requests().is_empty(),
        "no request may reach a refused address"
    );
}

#[tokio::test]
async fn literals_bad_ports_and_schemes_are_refused_before_any_request() {
    let world = world();
    let fetcher = fetcher(&world);
    let port = world.http_port();
    for literal in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://127.0.53.1:{port}/rdap/"),
    ] {
        let fetch = fetcher.fetch(&literal.parse().unwrap()).await;
        refused_ip(fetch.outcome.unwrap_err());
    }
    let smtp = fetcher
        .fetch(&"http://sunny-gallery.sim:25/".parse().unwrap())
        .await;
    assert_eq!(
        smtp.outcome.unwrap_err(),
        FetchError::Refused(GuardError::PortNotAllowed { port: 25 })
    );
    let ftp = fetcher
        .fetch(&"ftp://sunny-gallery.sim/".parse().unwrap())
        .await;
    assert!(matches!(
        ftp.outcome.unwrap_err(),
        FetchError::Refused(GuardError::SchemeNotAllowed { .. })
    ));
    assert!(world.requests().is_empty());
}

#[tokio::test]
async fn unknown_names_fail_resolution_with_a_typed_error() {
    let world = world();
    let fetch = fetcher(&world)
        .fetch(&url(&world, "no-such-site.sim", "/"))
        .await;
    assert!(
        matches!(
            fetch.outcome,
            Err(FetchError::Refused(
                GuardError::Resolution { .. } | GuardError::NoAddresses { .. }
            ))
        ),
        "{:?}",
        fetch.outcome
    );
}

#[test]
fn the_default_guard_admits_nothing_special() {
    let config = GuardConfig::default();
    assert!(config.allow_cidrs.is_empty());
    let policy = aranea_crawl::ssrf::AddressPolicy::new(&config);
    assert!(policy.check_ip("127.10.1.1".parse().unwrap()).is_err());
}

#[test]
fn a_fetcher_can_be_built_outside_a_runtime_and_used_inside_one() {
    let world = world();
    let fetcher = Fetcher::new(config(&world)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fetch = runtime.block_on(fetcher.fetch(&url(&world, "sunny-gallery.sim", "/")));
    assert_eq!(fetch.outcome.unwrap().status, 200);
}
