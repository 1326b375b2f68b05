//! A re-upload under a new URL on the page the removed photo was taken from is found by the
//! real crawler and noticed as a re-upload: the notice worker's watch of the removed item
//! queues the page again, the crawler fetches it again, matches the copy, and the next pass
//! opens an item linked to the removed one. The crawler fetches a page once otherwise, so
//! without the revisit the copy is never seen.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aranea_crawl::config::PolitenessConfig;
use aranea_crawl::{CrawlConfig, Crawler, DiscardMedia};
use aranea_index::import::{ImportInto, ImportOptions, ListFormat};
use aranea_index::{BankSpec, BankStore, LiveIndex, Origin, Provenance};
use aranea_notice::NoticeEngine;
use aranea_simweb::{RunningWorld, SimWeb, scenario};
use aranea_store::Store;
use common::*;

/// The `small` world on a clock that only the test moves, plus a provider that takes a
/// noticed photo down and puts a re-encoded copy back under a new URL on the same page (its
/// one site has one page of photos, all known).
fn world_with_boomerang(seed: u64) -> Arc<RunningWorld> {
    let small = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simweb/scenarios/small.toml"
    ))
    .unwrap()
    .replace("time_scale = 3600.0", "time_scale = 1.0");
    let text = format!(
        "{small}\n[[provider]]\nname = \"Boomerang Hosting\"\ncountry = \"US\"\nasn = 64508\n\
         blocks = [\"127.10.8.0/24\"]\n\
         on_notice = {{ action = \"reupload\", delay_hours = 2.0, \
         reupload_after_hours = 12.0, reencode = true }}\n\n\
         [[site]]\nhost = \"boomerang-pics.sim\"\nprovider = \"Boomerang Hosting\"\n\
         kind = \"gallery\"\npages = 2\nimages_per_page = 1\nknown_share = 1.0\n"
    );
    Arc::new(SimWeb::start_with(scenario::parse(&text).unwrap(), seed).unwrap())
}

fn crawl_config(world: &RunningWorld) -> CrawlConfig {
    CrawlConfig {
        allow_cidrs: vec!["127.10.0.0/16".parse().unwrap()],
        name_servers: vec![world.dns_addr()],
        system_roots: false,
        ca_files: world
            .ca_cert_path()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        politeness: PolitenessConfig {
            min_delay_ms: 10,
            max_delay_ms: 200,
            crawl_delay_cap_ms: 10,
            ..PolitenessConfig::default()
        },
        connect_timeout_ms: 3_000,
        read_timeout_ms: 3_000,
        total_timeout_ms: 5_000,
        lease_ms: 20_000,
        claim_interval_ms: 50,
        ..CrawlConfig::default()
    }
}

/// A bank `known` holding the world's known photos, in `dir`.
fn banks(world: &RunningWorld, dir: &Path) -> Arc<LiveIndex> {
    let mut store = BankStore::open(dir).unwrap();
    let provenance = Provenance {
        added_by: "test".into(),
        added_at: 0,
        origin: Origin::Manual,
    };
    store
        .import_list(
            ImportInto::NewBank(BankSpec::new("known", "simweb", "csam")),
            &mut || std::fs::File::open(world.bank_path()),
            &ImportOptions::new(ListFormat::HmaCsv),
            provenance,
        )
        .unwrap();
    store.publish().unwrap();
    store.live()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_put_back_on_the_page_of_a_removed_photo_is_crawled_and_noticed_as_a_reupload() {
    let world = world_with_boomerang(11);
    let (db, dir) = temp_sqlite("revisit");
    let _cleanup = RemoveOnDrop(dir.clone());
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let mut config = notice_config(&Addrs::of(&world));
    // Watch removed items every 6 simulated hours instead of 24, to keep the test short.
    config.watch_every_secs = 6 * 3600;
    let engine = NoticeEngine::new(
        store.clone(),
        config,
        fetch_config(&Addrs::of(&world)),
        clock.clone(),
        "worker-1",
    )
    .unwrap();
    let crawler = Crawler::with_worker_name(
        store.clone(),
        banks(&world, &dir.join("banks")),
        crawl_config(&world),
        Arc::new(DiscardMedia),
        "crawler-1",
    )
    .unwrap();
    let home = url::Url::parse(&world.url("boomerang-pics.sim", "/")).unwrap();
    crawler.enqueue_seeds(&[home]).await.unwrap();

    let mut revisits = 0;
    let mut found = None;
    while world.sim_now() < Duration::from_secs(4 * 24 * 3600) {
        tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle())
            .await
            .expect("the crawl goes idle within a minute")
            .unwrap();
        let pass = tokio::time::timeout(Duration::from_secs(60), engine.run_once())
            .await
            .expect("a pass finishes within a minute")
            .unwrap();
        revisits += pass.revisits;
        let items = store.notices().list_items(None, 1_000).await.unwrap();
        found = items
            .into_iter()
            .find(|i| i.host == "boomerang-pics.sim" && i.reupload_of.is_some());
        if found.is_some() {
            break;
        }
        world.advance(Duration::from_secs(3600));
    }

    let items = store.notices().list_items(None, 1_000).await.unwrap();
    let boomerang: Vec<_> = items
        .iter()
        .filter(|i| i.host == "boomerang-pics.sim")
        .map(|i| (i.id, i.url.as_str(), i.state.as_str(), i.reupload_of))
        .collect();
    let copy = found.unwrap_or_else(|| {
        panic!(
            "no re-upload item after {:?} simulated ({revisits} pages queued again); items \
             {boomerang:?}; re-uploads in the world {:?}",
            world.sim_now(),
            world
                .images_at(world.sim_now())
                .iter()
                .filter(|i| i.reupload_of.is_some())
                .map(|i| &i.url)
                .collect::<Vec<_>>()
        )
    });
    eprintln!(
        "re-upload {} found at {:?} simulated, {revisits} pages queued again",
        copy.url,
        world.sim_now()
    );
    assert!(revisits > 0, "{boomerang:?}");
    assert!(copy.url.contains("/uploads/"), "{boomerang:?}");
    let original = store
        .notices()
        .item(aranea_store::ItemId(copy.reupload_of.unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(original.state, "removed", "{boomerang:?}");
    assert_eq!(original.host, "boomerang-pics.sim");
    // Noticed as a re-upload naming the earlier notice, once the batch window passes.
    for _ in 0..3 {
        engine.run_once().await.unwrap();
        world.advance(Duration::from_secs(3600));
    }
    let notices = store
        .notices()
        .notices_of_item(aranea_store::ItemId(copy.id))
        .await
        .unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n.kind == "reupload" && n.parent_id.is_some()),
        "{notices:#?}"
    );
}

/// The `small` world on a clock that only the test moves, plus a provider with two sites in
/// its one block: a gallery of known photos (noticed), and a blog whose photos are all
/// unknown (nothing there is ever matched or noticed). Noticed, the provider takes the
/// photo down and puts a re-encoded copy up on the blog, under a new URL on one of its pages.
fn world_with_a_second_boomerang_site(seed: u64) -> Arc<RunningWorld> {
    let small = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simweb/scenarios/small.toml"
    ))
    .unwrap()
    .replace("time_scale = 3600.0", "time_scale = 1.0");
    let text = format!(
        "{small}\n[[provider]]\nname = \"Boomerang Hosting\"\ncountry = \"US\"\nasn = 64508\n\
         blocks = [\"127.10.8.0/24\"]\n\
         on_notice = {{ action = \"reupload\", delay_hours = 2.0, \
         reupload_after_hours = 12.0, reencode = true }}\n\n\
         [[site]]\nhost = \"boomerang-pics.sim\"\nprovider = \"Boomerang Hosting\"\n\
         kind = \"gallery\"\npages = 2\nimages_per_page = 1\nknown_share = 1.0\n\n\
         [[site]]\nhost = \"boomerang-blog.sim\"\nprovider = \"Boomerang Hosting\"\n\
         kind = \"gallery\"\npages = 3\nimages_per_page = 1\nknown_share = 0.0\n"
    );
    Arc::new(SimWeb::start_with(scenario::parse(&text).unwrap(), seed).unwrap())
}

/// A re-upload on another site the crawler knows, of the same provider, on a page where
/// nothing was ever noticed: the watch of the removed photo sends the crawler back to the
/// provider's known sites around its server, and the copy is matched and noticed as a
/// re-upload. Without the revisit of nearby hosts the blog's pages, fetched once before the
/// copy appeared, are never fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_put_up_on_another_known_site_of_the_provider_is_found_and_noticed() {
    let world = world_with_a_second_boomerang_site(11);
    let (db, dir) = temp_sqlite("revisit-nearby");
    let _cleanup = RemoveOnDrop(dir.clone());
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let mut config = notice_config(&Addrs::of(&world));
    config.watch_every_secs = 6 * 3600;
    config.revisit_host_every_secs = 6 * 3600;
    let engine = NoticeEngine::new(
        store.clone(),
        config,
        fetch_config(&Addrs::of(&world)),
        clock.clone(),
        "worker-1",
    )
    .unwrap();
    let crawler = Crawler::with_worker_name(
        store.clone(),
        banks(&world, &dir.join("banks")),
        crawl_config(&world),
        Arc::new(DiscardMedia),
        "crawler-1",
    )
    .unwrap();
    let seeds: Vec<url::Url> = ["boomerang-pics.sim", "boomerang-blog.sim"]
        .iter()
        .map(|host| url::Url::parse(&world.url(host, "/")).unwrap())
        .collect();
    crawler.enqueue_seeds(&seeds).await.unwrap();

    let mut revisited_hosts = 0;
    let mut found = None;
    while world.sim_now() < Duration::from_secs(4 * 24 * 3600) {
        tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle())
            .await
            .expect("the crawl goes idle within a minute")
            .unwrap();
        let pass = tokio::time::timeout(Duration::from_secs(60), engine.run_once())
            .await
            .expect("a pass finishes within a minute")
            .unwrap();
        revisited_hosts += pass.revisited_hosts;
        let items = store.notices().list_items(None, 1_000).await.unwrap();
        // Nothing on the blog is noticed but the copy.
        let on_blog: Vec<_> = items
            .iter()
            .filter(|i| i.host == "boomerang-blog.sim")
            .collect();
        assert!(
            on_blog.iter().all(|i| i.reupload_of.is_some()),
            "{on_blog:?}"
        );
        found = on_blog.first().map(|i| (*i).clone());
        if found.is_some() {
            break;
        }
        world.advance(Duration::from_secs(3600));
    }

    let reuploads: Vec<String> = world
        .images_at(world.sim_now())
        .iter()
        .filter(|i| i.reupload_of.is_some())
        .map(|i| i.url.clone())
        .collect();
    assert!(
        reuploads.iter().all(|u| u.contains("boomerang-blog.sim")),
        "the world puts the copy on the other site: {reuploads:?}"
    );
    let copy = found.unwrap_or_else(|| {
        panic!(
            "no re-upload item on the blog after {:?} simulated ({revisited_hosts} hosts \
             revisited); re-uploads in the world {reuploads:?}",
            world.sim_now(),
        )
    });
    eprintln!(
        "re-upload {} found at {:?} simulated, {revisited_hosts} hosts revisited",
        copy.url,
        world.sim_now()
    );
    assert!(revisited_hosts > 0);
    assert!(copy.url.contains("/uploads/"), "{copy:?}");
    let original = store
        .notices()
        .item(aranea_store::ItemId(copy.reupload_of.unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(original.state, "removed", "{original:?}");
    assert_eq!(original.host, "boomerang-pics.sim");
    assert_eq!(copy.provider_key, original.provider_key);
    for _ in 0..3 {
        engine.run_once().await.unwrap();
        world.advance(Duration::from_secs(3600));
    }
    let notices = store
        .notices()
        .notices_of_item(aranea_store::ItemId(copy.id))
        .await
        .unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n.kind == "reupload" && n.parent_id.is_some()),
        "{notices:#?}"
    );
}
