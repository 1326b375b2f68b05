//! Robots policies from the simulated internet's robots.txt variants.

mod common;

use std::time::Duration;

use aranea_crawl::fetch::{FetchConfig, FetchError, Fetcher};
use aranea_crawl::robots::{Robots, RobotsConfig, RobotsSource, robots_url};
use common::{HOSTILE, config, fetcher, url, world};

async fn robots_of(world: &aranea_simweb::RunningWorld, host: &str) -> Robots {
    let robots = robots_url(&url(world, host, "/some/page")).unwrap();
    assert_eq!(robots.path(), "/robots.txt");
    let fetch = fetcher(world)
        .fetch_prefix(&robots, RobotsConfig::default().max_bytes as u64)
        .await;
    Robots::from_fetch(&fetch, &RobotsConfig::default())
}

#[tokio::test]
async fn each_robots_variant_becomes_the_right_policy() {
    let world = world();
    let allow = robots_of(&world, "sunny-gallery.sim").await;
    assert!(allow.allows(&url(&world, "sunny-gallery.sim", "/anything")));
    assert_eq!(allow.source(), &RobotsSource::Parsed { truncated: false });

    let none = robots_of(&world, "members-only.test").await;
    assert!(!none.allows(&url(&world, "members-only.test", "/")));

    let private = robots_of(&world, "harbor-pics.sim").await;
    assert!(!private.allows(&url(&world, "harbor-pics.sim", "/private/x")));
    assert!(!private.allows(&url(&world, "harbor-pics.sim", "/files/a.jpg")));
    assert!(private.allows(&url(&world, "harbor-pics.sim", "/")));

    let delayed = robots_of(&world, "oak-forum.sim").await;
    assert_eq!(delayed.crawl_delay(), Some(Duration::from_secs(2)));
    assert!(!delayed.allows(&url(&world, "oak-forum.sim", "/private/")));

    let garbage = robots_of(&world, "garden-notes.sim").await;
    assert!(garbage.allows(&url(&world, "garden-notes.sim", "/")));
    assert_eq!(garbage.crawl_delay(), None);

    let missing = robots_of(&world, "odd-corner.sim").await;
    assert_eq!(missing.source(), &RobotsSource::NoFile { status: 404 });
    assert!(missing.allows(&url(&world, "odd-corner.sim", "/calendar/2026/01/")));
}

#[tokio::test]
async fn an_unreachable_robots_txt_disallows_for_now() {
    let world = world();
    let unreachable = robots_of(&world, "no-such-site.sim").await;
    assert!(matches!(
        unreachable.source(),
        RobotsSource::Unreachable { .. }
    ));
    assert!(!unreachable.allows(&url(&world, "no-such-site.sim", "/")));
}

#[tokio::test]
async fn an_endless_robots_body_is_cut_at_the_size_limit_not_refused() {
    let world = world();
    let config = RobotsConfig::default();
    // The hostile site's endless body stands in for a robots.txt that never ends.
    let endless = url(&world, "odd-corner.sim", "/quirks/endless.html");
    let fetch = fetcher(&world)
        .fetch_prefix(&endless, config.max_bytes as u64)
        .await;
    let response = fetch.outcome.as_ref().unwrap();
    assert!(response.truncated);
    assert_eq!(response.body.len(), config.max_bytes);
    let robots = Robots::from_fetch(&fetch, &config);
    assert_eq!(robots.source(), &RobotsSource::Parsed { truncated: true });
    assert!(robots.allows(&url(&world, "odd-corner.sim", "/")));
}

/// A robots.txt behind redirects (http to https, or to a `www.` host: common) is read where
/// they lead, by the crawl's fetcher too, which hands every other redirect back to the
/// frontier (RFC 9309 asks for at least five); each hop still passes the SSRF guard.
#[tokio::test]
async fn a_redirected_robots_txt_is_followed_through_the_guard() {
    let world = world();
    let crawl = Fetcher::new(FetchConfig {
        redirects_to_caller: true,
        ..config(&world)
    })
    .unwrap();
    let limit = RobotsConfig::default().max_bytes as u64;
    let chain = url(&world, HOSTILE, "/quirks/redirect/chain/5");
    let fetch = crawl.fetch_prefix(&chain, limit).await;
    assert_eq!(fetch.redirects.len(), 6, "{:?}", fetch.outcome);
    assert_eq!(fetch.outcome.as_ref().unwrap().final_url.path(), "/");
    let robots = Robots::from_fetch(&fetch, &RobotsConfig::default());
    assert_eq!(robots.source(), &RobotsSource::Parsed { truncated: false });
    assert!(robots.allows(&url(&world, HOSTILE, "/anything")));

    for hostile in ["/quirks/redirect/loopback", "/quirks/redirect/metadata"] {
        let fetch = crawl
            .fetch_prefix(&url(&world, HOSTILE, hostile), limit)
            .await;
        assert!(
            matches!(fetch.outcome, Err(FetchError::Refused(_))),
            "{hostile}: {:?}",
            fetch.outcome
        );
    }
    // The crawl's page fetches still hand their redirects to the frontier.
    assert!(matches!(
        crawl.fetch(&chain).await.outcome,
        Err(FetchError::Redirected { .. })
    ));
}
