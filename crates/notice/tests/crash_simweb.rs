//! `kill -9` during sending, at every step: a worker process is killed with SIGKILL (no
//! unwinding, no clean-up) right after claiming a notice, after connecting, after marking it
//! committing, after the SMTP server said "go ahead" to DATA (the message half on the wire),
//! after the server accepted it, and after recording it; a new worker then finishes the job.
//! The simulated SMTP server's and webhook receiver's logs prove that every notice reached
//! its provider exactly once by idempotency key: a notice whose send was cut is sent again
//! under the same key, and a copy the provider already held is recorded as a duplicate and
//! not acted on (as a receiver deduplicating by Message-ID or Idempotency-Key does).
//!
//! A custom harness (`harness = false`): the same binary is the worker child when
//! `NOTICE_CHILD` is set; the worker announces each crash point on stderr and waits there.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aranea_notice::deliver::CRASH_POINT_MARK;
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
    let steps = [
        "claimed",
        "connected",
        "committing",
        "data",
        "accepted",
        "recorded",
    ];
    for step in steps {
        runtime.block_on(crash_at(step));
        println!("crash at {step}: ok");
    }
    println!(
        "crash_simweb: {} steps passed in {:?}",
        steps.len(),
        started.elapsed()
    );
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
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (reached, at_step) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if let Some(step) = line.strip_prefix(CRASH_POINT_MARK) {
                let _ = reached.send(step.to_owned());
            } else {
                eprintln!("worker: {line}");
            }
        }
    });
    let waited = at_step.recv_timeout(Duration::from_secs(60));
    // SIGKILL, as `kill -9`: the worker is parked at the step, mid-exchange.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        waited.as_deref(),
        Ok(step),
        "worker did not reach step {step}"
    );
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
    let mut resent = 0;
    for notice in &notices {
        assert_eq!(
            notice.state,
            NoticeState::Sent,
            "{step}: notice {} left {:?}",
            notice.id,
            notice.state
        );
        let by_key: Vec<_> = received
            .iter()
            .filter(|r| {
                r.key
                    .as_deref()
                    .is_some_and(|k| k.contains(&notice.idempotency_key))
            })
            .collect();
        let distinct = by_key.iter().filter(|r| r.duplicate_of.is_none()).count();
        assert_eq!(
            distinct, 1,
            "{step}: notice {} delivered {distinct} times by key",
            notice.id
        );
        assert!(
            by_key.len() <= 2,
            "{step}: notice {} sent {} times",
            notice.id,
            by_key.len()
        );
        resent += by_key.len() - 1;
    }
    let distinct_keys: std::collections::BTreeSet<_> =
        received.iter().filter_map(|r| r.key.as_deref()).collect();
    assert_eq!(
        distinct_keys.len(),
        notices.len(),
        "{step}: one key per notice, and nothing but our notices arrived"
    );
    assert_eq!(
        received.len(),
        notices.len() + resent,
        "{step}: every arrival carried a notice's key"
    );
    // Only a crash after the server accepted the copy makes the resend a duplicate; cut
    // earlier (before DATA, or half-way through the message), the provider held nothing.
    assert_eq!(
        resent,
        usize::from(step == "accepted"),
        "{step}: duplicates"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
