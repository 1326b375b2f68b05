//! Robots policies from the simulated internet's robots.txt variants.

mod common;

use std::time::Duration;

use aranea_crawl::robots::{Robots, RobotsConfig, RobotsSource, robots_url};
use common::{fetcher, url, world};

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
