//! The fetcher and extractor against the simulated internet over real sockets.

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use aranea_crawl::canonical::{CanonicalConfig, canonicalize};
use aranea_crawl::extract::{ExtractConfig, extract};
use aranea_crawl::fetch::{BodyKind, FetchError, Fetcher, HttpVersion, TlsStatus};
use aranea_hash::MediaKind;
use common::{HOSTILE, config, fetcher, url, world};

#[tokio::test]
async fn a_site_walked_page_by_page_yields_every_image_it_serves() {
    let world = world();
    let fetcher = fetcher(&world);
    let host = "sunny-gallery.sim";
    let canon = CanonicalConfig::default();
    let mut queue = VecDeque::from([url(&world, host, "/")]);
    let mut seen = BTreeSet::new();
    let mut media = BTreeSet::new();
    while let Some(next) = queue.pop_front() {
        if seen.len() >= 50 || !seen.insert(next.to_string()) {
            continue;
        }
        let fetch = fetcher.fetch(&next).await;
        let page = fetch.outcome.unwrap();
        assert_eq!(page.status, 200, "{next}");
        if let BodyKind::Media(_) = page.kind {
            // Galleries link thumbnails to the full image: a page link that sniffs as media.
            media.insert(next.to_string());
            continue;
        }
        assert_eq!(page.kind, BodyKind::Html, "{next}");
        let ip = page.server_ip.unwrap().to_string();
        assert!(ip.starts_with("127.10.1."), "{ip}");
        let found = extract(
            &page.body,
            &page.final_url,
            page.content_type.as_deref(),
            &ExtractConfig::default(),
        );
        for link in found.page_links {
            if link.host_str() == Some(host) {
                queue.push_back(canonicalize(&link, &canon).unwrap());
            }
        }
        media.extend(found.media_links.iter().map(|u| u.to_string()));
    }
    let truth: BTreeSet<String> = world
        .images_at(world.sim_now())
        .into_iter()
        .filter(|i| i.host == host)
        .map(|i| i.url)
        .collect();
    assert!(!truth.is_empty());
    let missing: Vec<_> = truth.difference(&media).collect();
    assert!(missing.is_empty(), "images not found: {missing:?}");

    // And the images are images by their bytes.
    for image in truth.iter().take(4) {
        let fetch = fetcher.fetch(&image.parse().unwrap()).await;
        let response = fetch.outcome.unwrap();
        assert!(
            matches!(response.kind, BodyKind::Media(_)),
            "{image}: {:?}",
            response.kind
        );
        assert!(response.body.len() > 1000);
    }
}

#[tokio::test]
async fn a_redirect_chain_is_followed_and_recorded() {
    let world = world();
    let fetch = fetcher(&world)
        .fetch(&url(&world, HOSTILE, "/quirks/redirect/chain/5"))
        .await;
    let response = fetch.outcome.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.final_url, url(&world, HOSTILE, "/"));
    let statuses: Vec<u16> = fetch.redirects.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [307, 301, 307, 301, 307, 302]);
    assert_eq!(
        fetch.redirects[0].url,
        url(&world, HOSTILE, "/quirks/redirect/chain/5")
    );

    let relative = fetcher(&world)
        .fetch(&url(&world, HOSTILE, "/quirks/redirect/relative"))
        .await;
    assert_eq!(
        relative.outcome.unwrap().final_url,
        url(&world, HOSTILE, "/quirks/broken.html")
    );

    let other = fetcher(&world)
        .fetch(&url(&world, HOSTILE, "/quirks/redirect/other-host"))
        .await;
    let response = other.outcome.unwrap();
    assert_ne!(response.final_url.host_str(), Some(HOSTILE));
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_redirect_loop_ends_in_too_many_redirects() {
    let world = world();
    let fetch = fetcher(&world)
        .fetch(&url(&world, HOSTILE, "/quirks/redirect/loop-a"))
        .await;
    assert_eq!(
        fetch.outcome.unwrap_err(),
        FetchError::TooManyRedirects { limit: 8 }
    );
    assert_eq!(fetch.redirects.len(), 9);
    let requests = world.requests_for(HOSTILE);
    assert_eq!(requests.len(), 9, "one request per hop, then stop");
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_body_cap_after_decompression() {
    let world = world();
    let fetch = fetcher(&world)
        .fetch(&url(&world, HOSTILE, "/quirks/gzip-bomb.html"))
        .await;
    // Not the total deadline: the cap on inflated bytes ended it.
    assert_eq!(
        fetch.outcome.unwrap_err(),
        FetchError::BodyTooLarge {
            limit: 2 * 1024 * 1024
        }
    );
}

#[tokio::test]
async fn an_endless_body_stops_at_the_body_cap() {
    let world = world();
    let fetch = fetcher(&world)
        .fetch(&url(&world, HOSTILE, "/quirks/endless.html"))
        .await;
    assert_eq!(
        fetch.outcome.unwrap_err(),
        FetchError::BodyTooLarge {
            limit: 2 * 1024 * 1024
        }
    );
}

#[tokio::test]
async fn a_drip_is_cut_by_the_total_deadline_not_the_read_timeout() {
    let world = world();
    let mut config = config(&world);
    config.total_timeout = Duration::from_millis(1500);
    config.read_timeout = Duration::from_secs(10);
    let fetcher = Fetcher::new(config).unwrap();
    let started = std::time::Instant::now();
    let fetch = fetcher
        .fetch(&url(&world, HOSTILE, "/quirks/drip.html"))
        .await;
    assert_eq!(
        fetch.outcome.unwrap_err(),
        FetchError::TotalDeadline {
            limit: Duration::from_millis(1500)
        }
    );
    // The drip would take 64 s; the deadline ended it (generous bound for a loaded machine).
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(fetch.elapsed >= Duration::from_millis(1500));
}

#[tokio::test]
async fn lying_content_lengths_end_in_typed_outcomes() {
    let world = world();
    let fetcher = fetcher(&world);
    // Longer than declared: only the declared bytes are read, and they are not an image.
    let lie = fetcher
        .fetch(&url(&world, HOSTILE, "/quirks/length-lie.jpg"))
        .await;
    let response = lie.outcome.unwrap();
    assert_eq!(response.body.len(), 1024);
    assert_eq!(response.kind, BodyKind::Other);
    // Shorter than declared: the body is incomplete.
    let short = fetcher
        .fetch(&url(&world, HOSTILE, "/quirks/short-body.jpg"))
        .await;
    match short.outcome.unwrap_err() {
        FetchError::BodyIncomplete {
            received, declared, ..
        } => {
            assert_eq!(declared, Some(100_000));
            assert!(received <= 1000);
        }
        other => panic!("expected BodyIncomplete, got {other:?}"),
    }
}

#[tokio::test]
async fn a_declared_length_over_the_cap_fails_before_reading() {
    let world = world();
    let mut config = config(&world);
    config.max_body_bytes = 1000;
    let fetcher = Fetcher::new(config).unwrap();
    let fetch = fetcher
        .fetch(&url(&world, HOSTILE, "/quirks/short-body.jpg"))
        .await;
    assert_eq!(
        fetch.outcome.unwrap_err(),
        FetchError::BodyTooLarge { limit: 1000 }
    );
}

#[tokio::test]
async fn types_come_from_the_bytes_not_the_label() {
    let world = world();
    let fetcher = fetcher(&world);
    let wrong = fetcher
        .fetch(&url(&world, HOSTILE, "/quirks/wrong-type.html"))
        .await
        .outcome
        .unwrap();
    assert!(
        wrong
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(wrong.kind, BodyKind::Media(MediaKind::Jpeg));
    let untyped = fetcher
        .fetch(&url(&world, HOSTILE, "/quirks/no-type.jpg"))
        .await
        .outcome
        .unwrap();
    assert_eq!(untyped.content_type, None);
    assert_eq!(untyped.kind, BodyKind::Media(MediaKind::Jpeg));
    let fake = fetcher
        .fetch(&url(&world, HOSTILE, "/quirks/html-as-image.jpg"))
        .await
        .outcome
        .unwrap();
    assert_eq!(fake.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(fake.kind, BodyKind::Html);
}

#[tokio::test]
async fn broken_html_from_the_wire_still_yields_links() {
    let world = world();
    let page = fetcher(&world)
        .fetch(&url(&world, HOSTILE, "/quirks/broken.html"))
        .await
        .outcome
        .unwrap();
    assert_eq!(page.kind, BodyKind::Html);
    let found = extract(
        &page.body,
        &page.final_url,
        page.content_type.as_deref(),
        &ExtractConfig::default(),
    );
    let pages: Vec<String> = found
        .page_links
        .iter()
        .map(|u| u.path().to_owned())
        .collect();
    assert!(pages.contains(&"/quirks/".to_owned()), "{pages:?}");
    assert!(
        pages.contains(&"/quirks/redirect/chain/2".to_owned()),
        "{pages:?}"
    );
    assert_eq!(found.media_links.len(), 1);
}

#[tokio::test]
async fn https_is_verified_against_the_configured_ca() {
    let world = world();
    let host = "secure-gallery.sim";
    let secure = url(&world, host, "/");
    assert_eq!(secure.scheme(), "https");
    let response = fetcher(&world).fetch(&secure).await.outcome.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.tls, TlsStatus::Verified);
    assert_eq!(response.kind, BodyKind::Html);
    assert_eq!(response.http_version, HttpVersion::Http2, "ALPN offers h2");

    // Plain HTTP to the HTTPS site redirects there.
    let plain = url::Url::parse(&format!("http://{host}:{}/", world.http_port())).unwrap();
    let fetch = fetcher(&world).fetch(&plain).await;
    assert_eq!(fetch.redirects.len(), 1);
    assert_eq!(fetch.outcome.unwrap().final_url, secure);

    // Without the CA the certificate is refused, with a typed error.
    let mut untrusting = config(&world);
    untrusting.tls.extra_roots_pem.clear();
    let fetch = Fetcher::new(untrusting.clone())
        .unwrap()
        .fetch(&secure)
        .await;
    assert!(
        matches!(fetch.outcome, Err(FetchError::Certificate { .. })),
        "{:?}",
        fetch.outcome
    );

    // Unless the host is configured to accept certificate problems: then it is recorded.
    untrusting.tls.accept_invalid_certs_for = vec![host.to_owned()];
    let response = Fetcher::new(untrusting)
        .unwrap()
        .fetch(&secure)
        .await
        .outcome
        .unwrap();
    assert_eq!(response.status, 200);
    assert!(
        matches!(response.tls, TlsStatus::AcceptedInvalid { .. }),
        "{:?}",
        response.tls
    );
}

#[tokio::test]
async fn a_rate_limited_host_answers_429_and_its_retry_after_is_recorded() {
    let world = world();
    let fetcher = fetcher(&world);
    let host = "harbor-pics.sim"; // its provider answers 429 above 40 requests a second
    let page = url(&world, host, "/");
    let mut limited = None;
    for _ in 0..120 {
        let response = fetcher.fetch(&page).await.outcome.unwrap();
        assert_eq!(response.http_version, HttpVersion::Http1);
        if response.status == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the provider's rate limit was never hit");
    assert_eq!(limited.retry_after_seconds(), Some(2));
    assert!(!limited.is_success());
}
