//! Acceptance on the simulated internet with its accelerated clock: fast, slow, ignoring,
//! re-uploading, moving, placeholder and CDN-fronted providers each end with the right notice
//! history, escalations and statistics; every notice reaches the world exactly once; measured
//! times to removal agree with the world's ground truth within one re-check interval.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aranea_notice::{NoticeEngine, stats};
use aranea_store::{NoticeFilter, NoticeId, NoticeState, Store};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_of_takedowns_matches_the_ground_truth() {
    let world = world_with_slow_provider(7);
    let (db, dir) = temp_sqlite("week");
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let engine = NoticeEngine::new(
        store.clone(),
        notice_config(&Addrs::of(&world)),
        fetch_config(&Addrs::of(&world)),
        clock.clone(),
        "worker-1",
    )
    .unwrap();
    let mut crawler = CrawlStandIn::new(&world);
    let started = std::time::Instant::now();
    let mut passes = 0;
    while world.sim_now() < Duration::from_secs(6 * 24 * 3600) {
        let now = aranea_notice::Clock::now(clock.as_ref());
        crawler.crawl(&world, &store, now).await;
        tokio::time::timeout(Duration::from_secs(60), engine.run_once())
            .await
            .expect("a pass finishes within a minute")
            .unwrap();
        world.advance(Duration::from_secs(3600));
        passes += 1;
    }
    eprintln!("{passes} passes in {:?}", started.elapsed());

    let n = store.notices();
    let notices = n.list_notices(&NoticeFilter::default()).await.unwrap();
    let received = world.notices();
    // Exactly once: every notice sent was received once, and nothing else was received.
    let sent: Vec<_> = notices
        .iter()
        .filter(|x| x.state == NoticeState::Sent)
        .collect();
    assert!(!sent.is_empty());
    for notice in &sent {
        let copies = received
            .iter()
            .filter(|r| r.raw.contains(&notice.idempotency_key))
            .count();
        assert_eq!(
            copies, 1,
            "notice {} ({}) received {copies} times",
            notice.id, notice.recipient
        );
    }
    assert_eq!(
        received.len(),
        sent.len(),
        "the world received only our notices"
    );

    let items = n.list_items(None, 10_000).await.unwrap();
    let by_provider = |name: &str| {
        items
            .iter()
            .filter(|i| i.provider_name == name)
            .collect::<Vec<_>>()
    };
    let notices_to = |name: &str| {
        notices
            .iter()
            .filter(|x| x.provider_name.starts_with(name))
            .collect::<Vec<_>>()
    };

    // Fast provider (webhook): removed, one notice each, by webhook.
    let quick = by_provider("Quickhost");
    assert!(!quick.is_empty());
    assert!(quick.iter().all(|i| i.state == "removed"), "{quick:#?}");
    assert!(
        notices_to("Quickhost")
            .iter()
            .all(|x| x.channel == "webhook" && x.kind == "initial")
    );

    // Slow provider (France): noticed in French, reminded after 24 h, removed after a day or
    // two.
    let tortoise = by_provider("Tortoise Hosting");
    assert!(!tortoise.is_empty());
    assert!(
        tortoise
            .iter()
            .all(|i| i.state == "removed" && i.notices_sent >= 2),
        "{tortoise:#?}"
    );
    let tortoise_notices = notices_to("Tortoise Hosting");
    assert!(tortoise_notices.iter().all(|x| x.language == "fr"));
    assert!(
        tortoise_notices
            .iter()
            .any(|x| x.kind == "renotice" && x.subject.contains("Rappel"))
    );

    // Ignoring provider: re-notified every 24 h, then escalated to its upstream.
    let slow = by_provider("Slowpoke Hosting");
    assert!(!slow.is_empty());
    assert!(
        slow.iter()
            .all(|i| i.state == "open" && i.notices_sent >= 4),
        "{slow:#?}"
    );
    let slow_notices = notices_to("Slowpoke Hosting");
    assert!(slow_notices.iter().any(|x| x.kind == "renotice"));
    assert!(slow_notices.iter().any(|x| x.kind == "escalation"
        && x.recipient == "noc@harbor-networks.sim"
        && x.escalation_step.as_deref() == Some("upstream")));

    // CDN-fronted: noticed to the CDN, marked as such, removed after it passed it on.
    let fronted: Vec<_> = items
        .iter()
        .filter(|i| i.host == "shielded-pics.sim")
        .collect();
    assert!(!fronted.is_empty());
    assert!(
        fronted
            .iter()
            .all(|i| i.via_cdn.as_deref() == Some("EdgeShield") && i.method == "cdn")
    );
    assert!(fronted.iter().all(|i| i.state == "removed"), "{fronted:#?}");

    // Placeholder provider: removed, recorded as placeholders.
    let harbor: Vec<_> = items
        .iter()
        .filter(|i| i.host == "harbor-pics.sim")
        .collect();
    assert!(!harbor.is_empty());
    assert!(
        harbor
            .iter()
            .all(|i| i.removal_kind.as_deref() == Some("placeholder")),
        "{harbor:#?}"
    );

    // Moving provider: the site moved to Harbor, which was noticed and replaced the images.
    let nomad: Vec<_> = items
        .iter()
        .filter(|i| i.host == "nomad-files.sim")
        .collect();
    assert!(!nomad.is_empty());
    let summary: Vec<_> = nomad
        .iter()
        .map(|i| {
            (
                i.id,
                &i.provider_name,
                &i.state,
                &i.removal_kind,
                i.notices_sent,
                i.reupload_of,
            )
        })
        .collect();
    assert!(
        nomad
            .iter()
            .all(|i| i.provider_name == "Harbor Networks" && i.state == "removed"),
        "{summary:?} moves {:?}",
        world.site_moves()
    );

    // Re-uploading provider: removed, then the copy found elsewhere opened a linked notice.
    let reuploads: Vec<_> = items.iter().filter(|i| i.reupload_of.is_some()).collect();
    assert!(!reuploads.is_empty(), "re-uploads detected");
    assert!(
        notices
            .iter()
            .any(|x| x.kind == "reupload" && x.parent_id.is_some())
    );

    // Times to removal agree with the ground truth within one re-check interval.
    let truth: BTreeMap<String, Duration> = world
        .removals()
        .into_iter()
        .map(|r| (r.url, r.at))
        .collect();
    let mut compared = 0;
    for item in items.iter().filter(|i| i.state == "removed") {
        let measured = sim_of(item.removed_at.unwrap());
        let actual = truth
            .get(&item.url)
            .copied()
            .unwrap_or_else(|| panic!("no removal of {}", item.url));
        assert!(
            measured >= actual,
            "{}: seen removed before it was",
            item.url
        );
        // One re-check interval (24 h), plus this loop's one-hour step and the world's clock
        // running on while a pass works.
        let tolerance = Duration::from_secs(26 * 3600);
        assert!(
            measured - actual <= tolerance,
            "{}: {:?} late",
            item.url,
            measured - actual
        );
        compared += 1;
    }
    assert!(compared >= 5);

    // Statistics agree with the items.
    let rows = stats::compute(
        &n.item_facts().await.unwrap(),
        aranea_notice::Clock::now(clock.as_ref()),
    );
    let quick_row = rows
        .iter()
        .find(|r| r.dimension == "provider" && r.key == "Quickhost")
        .unwrap();
    assert_eq!(quick_row.removed, quick.len());
    assert_eq!(quick_row.share_removed_within_24h, Some(1.0));
    let slow_row = rows
        .iter()
        .find(|r| r.dimension == "provider" && r.key == "Slowpoke Hosting")
        .unwrap();
    assert_eq!((slow_row.removed, slow_row.outstanding), (0, slow.len()));
    assert!(
        rows.iter()
            .any(|r| r.dimension == "hotline" && r.key == "de")
    );

    // A per-notice timeline exists.
    let first = NoticeId(sent[sent.len() - 1].id);
    let timeline = n.timeline(first).await.unwrap();
    assert!(timeline.iter().any(|e| e.kind == "sent"));
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// The `small` world plus two mailboxes that are not hosting providers: the police unit and
/// the German hotline's desk (the simulated SMTP server takes mail for world addresses only).
fn world_with_authorities(seed: u64) -> Arc<aranea_simweb::RunningWorld> {
    let small = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simweb/scenarios/small.toml"
    ))
    .unwrap();
    let text = format!(
        "{small}\n[[provider]]\nname = \"Police Cybercrime Unit\"\ncountry = \"NL\"\n\
         asn = 64520\nblocks = [\"127.10.20.0/24\"]\nabuse_email = \"cybercrime@police.sim\"\n\
         on_notice = {{ action = \"ignore\" }}\n\n\
         [[provider]]\nname = \"DE Hotline Desk\"\ncountry = \"DE\"\nasn = 64521\n\
         blocks = [\"127.10.21.0/24\"]\nabuse_email = \"meldung@de-hotline.sim\"\n\
         on_notice = {{ action = \"ignore\" }}\n"
    );
    Arc::new(
        aranea_simweb::SimWeb::start_with(aranea_simweb::scenario::parse(&text).unwrap(), seed)
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_escalation_ladder_takes_each_step_once_up_to_the_police_then_reminds() {
    let world = world_with_authorities(8);
    let (db, dir) = temp_sqlite("ladder");
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let addrs = Addrs::of(&world);
    let mut config = notice_config(&addrs);
    config.escalate_after = 1;
    config.escalation_ladder = ["second_contact", "upstream", "country_hotline", "police"]
        .map(String::from)
        .to_vec();
    config.police_contact = Some("cybercrime@police.sim".into());
    config.hotlines.get_mut("de").unwrap().email = "meldung@de-hotline.sim".into();
    let engine = NoticeEngine::new(
        store.clone(),
        config,
        fetch_config(&addrs),
        clock.clone(),
        "worker-1",
    )
    .unwrap();
    let mut crawler = CrawlStandIn::new(&world);
    let now = aranea_notice::Clock::now(clock.as_ref());
    assert!(crawler.crawl(&world, &store, now).await > 0);
    // Seven days in three-hour steps: with a reminder or escalation every 24 h the ignoring
    // provider's items climb the whole ladder and are then reminded.
    while world.sim_now() < Duration::from_secs(7 * 24 * 3600) {
        tokio::time::timeout(Duration::from_secs(60), engine.run_once())
            .await
            .expect("a pass finishes within a minute")
            .unwrap();
        world.advance(Duration::from_secs(3 * 3600));
    }

    let n = store.notices();
    let items = n.list_items(None, 10_000).await.unwrap();
    let slow: Vec<_> = items
        .iter()
        .filter(|i| i.provider_name == "Slowpoke Hosting")
        .collect();
    assert!(!slow.is_empty());
    let received = world.notices();
    for item in &slow {
        let notices = n
            .notices_of_item(aranea_store::ItemId(item.id))
            .await
            .unwrap();
        let history: Vec<(&str, Option<&str>)> = notices
            .iter()
            .map(|x| (x.kind.as_str(), x.escalation_step.as_deref()))
            .collect();
        let steps: Vec<&str> = notices
            .iter()
            .filter(|x| x.kind == "escalation")
            .filter_map(|x| x.escalation_step.as_deref())
            .collect();
        // Slowpoke has one contact, so `second_contact` has no target and is skipped.
        assert_eq!(
            steps,
            ["upstream", "country_hotline", "police"],
            "{history:?}"
        );
        assert_eq!(history.first(), Some(&("initial", None)), "{history:?}");
        let police = notices
            .iter()
            .position(|x| x.escalation_step.as_deref() == Some("police"))
            .unwrap();
        let after: Vec<_> = history.get(police + 1..).unwrap().to_vec();
        assert!(
            !after.is_empty() && after.iter().all(|(kind, _)| *kind == "renotice"),
            "after the ladder, reminders only: {history:?}"
        );
        assert!(notices.iter().all(|x| x.state == NoticeState::Sent));
    }
    // The police unit really got it, naming the provider's URLs, once per key.
    let to_police: Vec<_> = received
        .iter()
        .filter(|r| r.to.iter().any(|t| t == "cybercrime@police.sim"))
        .collect();
    assert!(!to_police.is_empty());
    for item in &slow {
        assert!(
            to_police.iter().any(|r| r.urls.contains(&item.url)),
            "{} not reported to the police",
            item.url
        );
    }
    assert!(to_police.iter().all(|r| r.duplicate_of.is_none()));
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
