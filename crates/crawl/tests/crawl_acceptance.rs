//! The crawler against a simulated internet of 55 sites: everything the rules reach is
//! found, known photos are matched, unknown photos beside them are queued for review, the
//! SSRF guard holds, politeness holds per host, and traps stay within their budgets.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aranea_crawl::{Crawler, ReviewMediaSink};
use aranea_simweb::{SimWeb, scenario};
use aranea_store::{ReviewState, UrlState};

/// Remembers which media reached the review sink.
#[derive(Default)]
struct Kept(Mutex<BTreeSet<[u8; 32]>>);

impl ReviewMediaSink for Kept {
    fn keep(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<(), String> {
        assert!(!bytes.is_empty());
        self.0.lock().unwrap().insert(*sha256);
        Ok(())
    }
}

const DELAY_MS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reachable_known_image_is_found_and_matched_politely_and_safely() {
    let world = SimWeb::new(scenario::parse(support::BIG).unwrap())
        .seed(11)
        .start()
        .unwrap();
    let w = world.world();
    let pages: usize = w.sites.iter().map(|s| s.pages.len()).sum();
    assert!(
        w.sites.len() >= 50 && pages >= 2_000 && w.items.len() >= 3_000,
        "scenario too small: {} sites, {pages} pages, {} images",
        w.sites.len(),
        w.items.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    let banks = support::banks(&world, &dir.path().join("banks"));
    // The default PDQ quality floor: the ground truth applies it too.
    let config = support::config(&world, DELAY_MS);
    let min_pdq_quality = config.min_pdq_quality;
    assert_eq!(
        min_pdq_quality,
        aranea_crawl::CrawlConfig::default().min_pdq_quality
    );
    let budget = config.budgets.max_fetches_per_path_prefix;
    let kept = Arc::new(Kept::default());
    let crawler =
        Crawler::with_worker_name(store.clone(), banks, config, kept.clone(), "w1").unwrap();
    crawler
        .enqueue_seeds(&support::home_pages(&world))
        .await
        .unwrap();
    let progress = tokio::time::timeout(Duration::from_secs(240), crawler.run_until_idle())
        .await
        .expect("crawl did not finish in time")
        .unwrap();
    eprintln!("{progress:?}");

    // The crawl's requests, before the ground truth fetches every image once more.
    let requests = world.requests();
    let expected = support::reach(&world, 20, min_pdq_quality).await;
    eprintln!(
        "expected: {} pages, {} images, {} matching, {} unknown on matching pages, {} close \
         to a known photo but below the PDQ quality floor",
        expected.pages.len(),
        expected.images.len(),
        expected.matching.len(),
        expected.unknown_on_matching.len(),
        expected.below_quality.len()
    );
    assert!(
        expected.matching.len() >= 20,
        "too few known images reachable to mean much"
    );

    // Every reachable image was fetched and recorded; every matching one has a match.
    let facts = store.crawl_facts();
    let mut missing = Vec::new();
    let mut unmatched = Vec::new();
    let mut not_reviewed = Vec::new();
    for url in &expected.images {
        let Some(id) = store.frontier().url_id(url).await.unwrap() else {
            if missing.len() < 3 {
                let page = expected.page_of.get(url).unwrap();
                let pid = store.frontier().url_id(page).await.unwrap();
                let rec = match pid {
                    Some(p) => store.frontier().url(p).await.unwrap(),
                    None => None,
                };
                let from = expected.linked_from.get(page).unwrap();
                let fid = store.frontier().url_id(from).await.unwrap().unwrap();
                let frec = store.frontier().url(fid).await.unwrap();
                eprintln!("missing {url} (never queued) on {page}: {rec:?} linked from {frec:?}");
            }
            missing.push(url.clone());
            continue;
        };
        let media = facts.media_at_url(id).await.unwrap();
        let Some(sha) = media.first() else {
            if missing.len() < 5 {
                let record = store.frontier().url(id).await.unwrap();
                let fetches = store.frontier().fetches(id).await.unwrap();
                eprintln!("missing {url}: {record:?} {fetches:?}");
            }
            missing.push(url.clone());
            continue;
        };
        let sightings = store.media().sightings_of(sha).await.unwrap();
        let mut matched = false;
        for s in &sightings {
            matched |= !store.media().matches_of(s.id).await.unwrap().is_empty();
        }
        if expected.matching.contains(url) && !matched {
            unmatched.push(url.clone());
        }
        if expected.unknown_on_matching.contains(url) && !matched {
            let entry = store.review().get(sha).await.unwrap();
            match entry {
                Some(e) if e.state == ReviewState::Pending => {
                    assert!(
                        kept.0.lock().unwrap().contains(sha),
                        "{url}: queued without bytes"
                    )
                }
                _ => not_reviewed.push(url.clone()),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} reachable images not recorded, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        unmatched.is_empty(),
        "{} known images not matched, e.g. {:?}",
        unmatched.len(),
        &unmatched[..unmatched.len().min(5)]
    );
    assert!(
        not_reviewed.is_empty(),
        "{} unknown images on matching pages not queued, e.g. {:?}",
        not_reviewed.len(),
        &not_reviewed[..not_reviewed.len().min(5)]
    );
    for page in &expected.pages {
        let id = store
            .frontier()
            .url_id(page)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{page} never queued"));
        let record = store.frontier().url(id).await.unwrap().unwrap();
        assert_eq!(record.state, UrlState::Done, "{page}");
    }

    // Only the provider blocks were ever reached, never the world's own infrastructure.
    let blocks = support::provider_blocks(&world);
    assert!(requests.len() as u64 >= progress.fetched / 2);
    for r in &requests {
        assert!(
            blocks.iter().any(|b| b.contains(&r.local.ip())),
            "request to {}",
            r.local
        );
    }

    // Politeness: per host (origin: name and port), consecutive requests never closer than
    // the delay.
    let mut by_host: BTreeMap<(&str, u16), Vec<u64>> = BTreeMap::new();
    for r in &requests {
        by_host
            .entry((r.host.as_str(), r.local.port()))
            .or_default()
            .push(r.unix_millis);
    }
    for (host, mut times) in by_host {
        times.sort_unstable();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            if gap + 1 < DELAY_MS {
                for r in requests.iter().filter(|r| {
                    r.host == host.0
                        && r.unix_millis + 2000 >= pair[0]
                        && r.unix_millis <= pair[1] + 500
                }) {
                    eprintln!(
                        "{} {} {} {} {}",
                        r.unix_millis, r.local, r.peer, r.target, r.status
                    );
                }
            }
            assert!(gap + 1 >= DELAY_MS, "{host:?}: two requests {gap} ms apart");
        }
    }

    // Traps: no path prefix of any host got more page requests than its budget.
    let mut per_prefix: BTreeMap<(String, String), i64> = BTreeMap::new();
    let media = [".jpg", ".png", ".gif", ".webp"];
    for r in requests
        .iter()
        .filter(|r| !media.iter().any(|m| r.target.ends_with(m)))
    {
        let first = r.target.split('/').nth(1).unwrap_or("");
        if r.target.matches('/').count() > 1 {
            *per_prefix
                .entry((r.host.clone(), first.to_owned()))
                .or_default() += 1;
        }
    }
    for ((host, prefix), n) in per_prefix {
        assert!(
            n <= budget,
            "{host}/{prefix}/: {n} requests, budget {budget}"
        );
    }
}
