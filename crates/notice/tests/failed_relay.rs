//! A relay that keeps refusing us: each notice ends `failed` after its attempts, and an
//! operator can see it — an ERROR log line naming the notice (the worker's log, captured
//! here through the same `tracing` JSON subscriber the binary installs), the pass report,
//! the `failed` list and the notice's timeline. Once the relay is fixed, the items are
//! noticed again after the re-notify interval instead of staying stuck behind the failed
//! notice.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aranea_notice::{Clock, NoticeEngine, PassReport};
use aranea_simweb::{SMTP_PASSWORD, SMTP_USERNAME};
use aranea_store::{NoticeFilter, NoticeId, NoticeState, Store};
use common::*;

/// The log as written, one JSON object a line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_the_relay_keeps_refusing_fails_loudly_and_its_items_are_noticed_later() {
    let log = Captured::default();
    tracing_subscriber::fmt()
        .json()
        .with_writer(log.clone())
        .with_max_level(tracing::Level::WARN)
        .init();
    let world = world(47);
    let (db, dir) = temp_sqlite("failed-relay");
    let _dir = RemoveOnDrop(dir.clone());
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    assert!(
        CrawlStandIn::new(&world)
            .crawl(&world, &store, clock.now())
            .await
            > 0
    );
    let addrs = Addrs::of(&world);
    let mut config = notice_config(&addrs);
    config.webhooks.clear();
    config.smtp.username = Some(SMTP_USERNAME.into());
    config.smtp.password = Some("not-the-password".into());
    config.smtp.tls = "starttls".into();
    config.smtp.system_roots = false;
    let ca = dir.join("relay-ca.pem");
    std::fs::write(&ca, world.smtp_ca_cert_pem()).unwrap();
    config.smtp.ca_files = vec![ca];
    config.max_attempts = 2;
    config.retry_base_secs = 60;
    let engine = |config: &aranea_notice::NoticeConfig| {
        NoticeEngine::new(
            store.clone(),
            config.clone(),
            fetch_config(&addrs),
            clock.clone(),
            "worker-1",
        )
        .unwrap()
    };
    let broken = engine(&config);
    let mut total = PassReport::default();
    for _ in 0..5 {
        let pass = tokio::time::timeout(Duration::from_secs(60), broken.run_once())
            .await
            .expect("a pass finishes within a minute")
            .unwrap();
        total.failed_notices.extend(pass.failed_notices);
        world.advance(Duration::from_secs(120));
    }
    assert!(world.notices().is_empty(), "the relay took nothing");

    let n = store.notices();
    let failed = n
        .list_notices(&NoticeFilter {
            state: Some(NoticeState::Failed),
            ..NoticeFilter::default()
        })
        .await
        .unwrap();
    assert!(!failed.is_empty());
    let all = n.list_notices(&NoticeFilter::default()).await.unwrap();
    assert_eq!(failed.len(), all.len(), "every notice failed: {all:#?}");
    let mut listed: Vec<i64> = failed.iter().map(|f| f.id).collect();
    listed.sort_unstable();
    total.failed_notices.sort_unstable();
    assert_eq!(total.failed_notices, listed, "the pass reports name them");
    let errors: Vec<serde_json::Value> = log
        .lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect();
    for notice in &failed {
        let line = errors
            .iter()
            .find(|l| l["fields"]["notice_id"] == notice.id)
            .unwrap_or_else(|| panic!("no ERROR line for notice {}: {errors:#?}", notice.id));
        assert_eq!(line["fields"]["recipient"], notice.recipient.as_str());
        assert_eq!(line["fields"]["reference"], notice.report_id.as_str());
        let message = line["fields"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("resend {}", notice.id)),
            "{message}"
        );
        assert!(
            line["fields"]["reason"]
                .as_str()
                .unwrap()
                .contains("relay kept failing"),
            "{line}"
        );
        let timeline = n.timeline(NoticeId(notice.id)).await.unwrap();
        assert!(timeline.iter().any(|e| e.kind == "failed"), "{timeline:?}");
    }
    assert_eq!(
        errors.len(),
        failed.len(),
        "one ERROR line per failed notice"
    );

    // The operator fixes the relay password and restarts the worker: after the re-notify
    // interval every item is noticed again, in new notices.
    config.smtp.password = Some(SMTP_PASSWORD.into());
    let fixed = engine(&config);
    for _ in 0..10 {
        world.advance(Duration::from_secs(3 * 3600));
        tokio::time::timeout(Duration::from_secs(60), fixed.run_once())
            .await
            .expect("a pass finishes within a minute")
            .unwrap();
    }
    let received = world.notices();
    for notice in &failed {
        for item in n.items_of_notice(NoticeId(notice.id)).await.unwrap() {
            assert!(
                received.iter().any(|r| r.urls.contains(&item.url)),
                "{} was never noticed after the relay came back",
                item.url
            );
            let sent = n
                .notices_of_item(aranea_store::ItemId(item.id))
                .await
                .unwrap();
            assert!(sent.iter().any(|x| x.state == NoticeState::Sent));
        }
    }
    drop(store);
}
