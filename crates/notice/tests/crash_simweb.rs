//! `kill -9` during sending, at every step: a worker process aborts (SIGABRT, no unwinding,
//! no clean-up) right after claiming a notice, after connecting, after marking it committing,
//! after the server accepted it, and after recording it; a new worker then finishes the job.
//! The simulated SMTP server's and webhook receiver's logs prove that no notice reached a
//! provider twice, and that every notice reached it exactly once unless the crash fell inside
//! the send itself, where it is recorded `uncertain` (at most once; the item's next re-notice
//! follows its schedule).
//!
//! A custom harness (`harness = false`): the same binary is the worker child when
//! `NOTICE_CHILD` is set.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aranea_notice::{Clock, NoticeEngine, UnixMillis};
use aranea_store::{NoticeFilter, NoticeState, Store};
use common::*;

#[derive(serde::Serialize, serde::Deserialize)]
struct ChildSpec {
    db: String,
    addrs: Addrs,
    now: UnixMillis,
}

struct FixedClock(UnixMillis);

impl Clock for FixedClock {
    fn now(&self) -> UnixMillis {
        self.0
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(spec) = std::env::var("NOTICE_CHILD") {
        let spec: ChildSpec = serde_json::from_str(&spec).unwrap();
        runtime.block_on(child(spec));
        return;
    }
    let started = Instant::now();
    for step in ["claimed", "connected", "committing", "accepted", "recorded"] {
        runtime.block_on(crash_at(step));
        println!("crash at {step}: ok");
    }
    println!("crash_simweb: 5 steps passed in {:?}", started.elapsed());
}

async fn child(spec: ChildSpec) {
    let store = Store::open(&spec.db).await.unwrap();
    let engine = NoticeEngine::new(
        store,
        notice_config(&spec.addrs),
        fetch_config(&spec.addrs),
        Arc::new(FixedClock(spec.now)),
        "doomed-worker",
    )
    .unwrap();
    engine.run_once().await.unwrap();
}

async fn crash_at(step: &str) {
    let world = world(11);
    let (db, dir) = temp_sqlite(&format!("crash-{step}"));
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let mut crawler = CrawlStandIn::new(&world);
    assert!(crawler.crawl(&world, &store, clock.now()).await > 0);

    let spec = ChildSpec {
        db: db.clone(),
        addrs: Addrs::of(&world),
        now: clock.now(),
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("NOTICE_CHILD", serde_json::to_string(&spec).unwrap())
        .env("ARANEA_NOTICE_CRASH_AT", step)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "worker did not reach step {step}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !status.success(),
        "the worker must have died at {step}: {status:?}"
    );

    // A new worker, once the dead one's lease has expired.
    world.advance(Duration::from_secs(3600));
    let engine = NoticeEngine::new(
        store.clone(),
        notice_config(&Addrs::of(&world)),
        fetch_config(&Addrs::of(&world)),
        clock.clone(),
        "worker-2",
    )
    .unwrap();
    let report = engine.run_once().await.unwrap();
    let leased_when_killed = u64::from(step != "recorded");
    assert_eq!(
        report.recovered, leased_when_killed,
        "{step}: recovered leases"
    );
    engine.run_once().await.unwrap();

    let notices = store
        .notices()
        .list_notices(&NoticeFilter::default())
        .await
        .unwrap();
    assert!(notices.len() >= 3, "several providers were noticed");
    let received = world.notices();
    let mut uncertain = 0;
    let mut delivered = 0;
    for notice in &notices {
        let copies = received
            .iter()
            .filter(|r| r.raw.contains(&notice.idempotency_key))
            .count();
        assert!(
            copies <= 1,
            "{step}: notice {} delivered {copies} times",
            notice.id
        );
        match notice.state {
            NoticeState::Sent => {
                assert_eq!(copies, 1, "{step}: sent notice {} not received", notice.id)
            }
            NoticeState::Uncertain => uncertain += 1,
            other => panic!("{step}: notice {} left {other:?}", notice.id),
        }
        delivered += copies;
    }
    assert_eq!(
        received.len(),
        delivered,
        "{step}: nothing but our notices arrived"
    );
    let expected_uncertain = usize::from(matches!(step, "committing" | "accepted"));
    assert_eq!(uncertain, expected_uncertain, "{step}: uncertain notices");
    // The crash inside the send: before DATA/POST nothing left (0 copies); after the
    // server's answer it arrived once. Either way it is never sent again.
    let missing = notices.len() - delivered;
    assert_eq!(
        missing,
        usize::from(step == "committing"),
        "{step}: notices never delivered"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
