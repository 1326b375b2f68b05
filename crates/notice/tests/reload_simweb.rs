//! Data files replaced while the worker runs: a new iptoasn table is used from the next
//! pass on, and a corrupt replacement is refused (recorded, logged) while the table loaded
//! before stays in use; the same for the RDAP bootstrap files.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use aranea_crawl::fetch::Fetcher;
use aranea_notice::rdap::RdapClient;
use aranea_notice::rdap_bootstrap::Bootstrap;
use aranea_notice::reload::{Reload, Reloading};
use aranea_notice::{Clock, NoticeEngine};
use aranea_store::Store;
use common::*;

/// Writes beside `path` and renames over it, as an operator's refresh job should.
fn replace(path: &Path, text: &str) {
    let fresh = path.with_extension("next");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

/// The URLs of the world's live known images at `provider` (no CDN in front).
fn urls_of(world: &aranea_simweb::RunningWorld, provider: &str) -> HashSet<String> {
    world
        .images_at(world.sim_now())
        .into_iter()
        .filter(|i| i.known && i.status == aranea_simweb::ItemStatus::Live)
        .filter(|i| i.origin_provider == provider && i.cdn.is_none())
        .map(|i| i.url)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_asn_table_is_used_and_a_corrupt_one_keeps_the_old_table() {
    let world = world(61);
    let (db, dir) = temp_sqlite("reload-asn");
    let _dir = RemoveOnDrop(dir.clone());
    let table = dir.join("ip2asn.tsv");
    let original = std::fs::read_to_string(world.ip_to_asn_path()).unwrap();
    std::fs::write(&table, &original).unwrap();
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let addrs = Addrs::of(&world);
    let mut config = notice_config(&addrs);
    config.ip_to_asn_path = Some(table.clone());
    let engine = NoticeEngine::new(
        store.clone(),
        config,
        fetch_config(&addrs),
        clock.clone(),
        "worker-1",
    )
    .unwrap();
    let slowpoke = urls_of(&world, "Slowpoke Hosting");
    let bouncer = urls_of(&world, "Bouncer Cloud");
    assert!(!slowpoke.is_empty() && !bouncer.is_empty());
    // First only the other providers' images, then Slowpoke's, then Bouncer's.
    let mut crawler = CrawlStandIn::new(&world);
    crawler.seen.extend(slowpoke.iter().cloned());
    crawler.seen.extend(bouncer.iter().cloned());
    let asn_of = |url: &str, items: &[aranea_store::NoticeItem]| {
        items.iter().find(|i| i.url == url).map(|i| i.asn)
    };
    assert!(crawler.crawl(&world, &store, clock.now()).await > 0);
    engine.run_once().await.unwrap();

    // Slowpoke's block moves to AS64598 in the new table.
    let renumbered = original.replace("\t64502\t", "\t64598\t");
    assert_ne!(renumbered, original);
    replace(&table, &renumbered);
    for url in &slowpoke {
        crawler.seen.remove(url);
    }
    assert!(crawler.crawl(&world, &store, clock.now()).await > 0);
    let pass = engine.run_once().await.unwrap();
    assert_eq!(pass.unattributed, 0, "{pass:?}");
    let items = store.notices().list_items(None, 10_000).await.unwrap();
    for url in &slowpoke {
        assert_eq!(asn_of(url, &items), Some(Some(64598)), "{url}");
    }
    assert!(engine.data_errors().is_empty());

    // A corrupt replacement (a truncated download) is refused; the renumbered table stays.
    replace(&table, "<html><body>502 Bad Gateway</body></html>\n");
    for url in &bouncer {
        crawler.seen.remove(url);
    }
    assert!(crawler.crawl(&world, &store, clock.now()).await > 0);
    let pass = engine.run_once().await.unwrap();
    assert_eq!(pass.unattributed, 0, "{pass:?}");
    let items = store.notices().list_items(None, 10_000).await.unwrap();
    for url in &bouncer {
        assert_eq!(asn_of(url, &items), Some(Some(64503)), "{url}");
    }
    let errors = engine.data_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("ip2asn.tsv") && errors[0].contains("iptoasn"),
        "{errors:?}"
    );
    // Repaired: the error clears.
    replace(&table, &original);
    engine.run_once().await.unwrap();
    assert!(engine.data_errors().is_empty());
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_rdap_bootstrap_files_are_used_and_a_corrupt_one_keeps_the_old_ones() {
    let world = world(62);
    let addrs = Addrs::of(&world);
    let (_, dir) = temp_sqlite("reload-bootstrap");
    let _dir = RemoveOnDrop(dir.clone());
    let file = dir.join("ipv4.json");
    let services = |base: &str| {
        serde_json::json!({ "version": "1.0", "services": [[["127.10.0.0/16"], [base]]] })
            .to_string()
    };
    // At first the simulated providers' space is served by a registry that is not there.
    std::fs::write(&file, services("http://127.10.250.250:9/rdap/")).unwrap();
    let files = Reloading::open("RDAP bootstrap", vec![file.clone()], Bootstrap::load).unwrap();
    let rdap = RdapClient::new(
        Fetcher::new(fetch_config(&addrs)).unwrap(),
        Vec::new(),
        60,
        3,
        64 * 1024,
    )
    .with_bootstrap_files(files);
    assert!(
        rdap.network("127.10.1.1".parse().unwrap(), 0)
            .await
            .is_err()
    );

    replace(&file, &services(&addrs.rdap));
    assert_eq!(rdap.reload_bootstrap(), Reload::Reloaded);
    let found = rdap
        .network("127.10.1.2".parse().unwrap(), 0)
        .await
        .unwrap();
    assert!(found.source.starts_with(&addrs.rdap), "{}", found.source);

    for corrupt in ["{\"services\": [", "{\"services\": []}", ""] {
        replace(&file, corrupt);
        assert!(
            matches!(rdap.reload_bootstrap(), Reload::Refused(e) if e.contains("ipv4.json")),
            "{corrupt:?}"
        );
        assert!(rdap.bootstrap_error().is_some());
        let still = rdap
            .network("127.10.1.3".parse().unwrap(), 0)
            .await
            .unwrap();
        assert!(still.source.starts_with(&addrs.rdap), "{corrupt:?}");
    }
}
