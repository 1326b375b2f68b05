//! SMTP delivery the way real relays want it: STARTTLS and implicit TLS with the relay's CA
//! trusted by configuration (and refused without it), AUTH with the right login (and a wrong
//! password refused, recorded and retried without blaming the provider's contact), and a
//! DKIM signature that the independent `dkimpy` verifier (PyPI; scripts/test installs it)
//! accepts with the published key, and rejects once the message is altered.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use aranea_notice::config::DkimConfig;
use aranea_notice::{Clock, NoticeConfig, NoticeEngine};
use aranea_simweb::{Channel, RunningWorld, SMTP_PASSWORD, SMTP_USERNAME};
use aranea_store::{Notice, NoticeFilter, NoticeState, Store};
use common::*;

const DKIM_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dkim-test-key.pem");
const DKIM_TXT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dkim-test-key.txt");

struct Run {
    world: Arc<RunningWorld>,
    store: Store,
    dir: PathBuf,
}

/// A world whose known images were crawled, and one worker pass with `config`.
async fn one_pass(name: &str, seed: u64, adjust: impl FnOnce(&mut NoticeConfig, &Run)) -> Run {
    let world = world(seed);
    let (db, dir) = temp_sqlite(name);
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let mut crawler = CrawlStandIn::new(&world);
    assert!(crawler.crawl(&world, &store, clock.now()).await > 0);
    let run = Run { world, store, dir };
    let addrs = Addrs::of(&run.world);
    let mut config = notice_config(&addrs);
    // Only email, so every notice goes through the relay under test.
    config.webhooks.clear();
    adjust(&mut config, &run);
    let engine = NoticeEngine::new(
        run.store.clone(),
        config,
        fetch_config(&addrs),
        clock,
        "worker-1",
    )
    .unwrap();
    engine.run_once().await.unwrap();
    run
}

impl Run {
    async fn notices(&self) -> Vec<Notice> {
        self.store
            .notices()
            .list_notices(&NoticeFilter::default())
            .await
            .unwrap()
    }

    fn ca_file(&self) -> PathBuf {
        let path = self.dir.join("relay-ca.pem");
        std::fs::write(&path, self.world.smtp_ca_cert_pem()).unwrap();
        path
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn secure_relay(config: &mut NoticeConfig, run: &Run, tls: &str) {
    let addr = match tls {
        "tls" => run.world.smtps_addr(),
        _ => run.world.smtp_addr(),
    };
    config.smtp.port = addr.port();
    config.smtp.tls = tls.into();
    config.smtp.system_roots = false;
    config.smtp.ca_files = vec![run.ca_file()];
    config.smtp.username = Some(SMTP_USERNAME.into());
    config.smtp.password = Some(SMTP_PASSWORD.into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_go_over_starttls_and_implicit_tls_with_the_configured_ca_and_login() {
    for (seed, tls) in [(41, "starttls"), (42, "tls")] {
        let run = one_pass(&format!("smtp-{tls}"), seed, |config, run| {
            secure_relay(config, run, tls)
        })
        .await;
        let notices = run.notices().await;
        assert!(notices.len() >= 3, "{tls}: several providers were noticed");
        for notice in &notices {
            assert_eq!(notice.state, NoticeState::Sent, "{tls}: {notice:?}");
        }
        let received = run.world.notices();
        assert_eq!(received.len(), notices.len(), "{tls}");
        for arrival in &received {
            assert_eq!(arrival.channel, Channel::Smtp);
            assert!(arrival.tls, "{tls}: a notice arrived in clear text");
            assert_eq!(
                arrival.authenticated.as_deref(),
                Some(SMTP_USERNAME),
                "{tls}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_certificate_from_an_untrusted_ca_is_refused_and_nothing_is_sent() {
    for (seed, tls) in [(43, "starttls"), (44, "tls")] {
        let run = one_pass(&format!("smtp-untrusted-{tls}"), seed, |config, run| {
            secure_relay(config, run, tls);
            // No system roots and no CA file: the simulated CA is trusted by nobody.
            config.smtp.ca_files.clear();
            config.retry_base_secs = 3600;
        })
        .await;
        assert!(run.world.notices().is_empty(), "{tls}: something was sent");
        let notices = run.notices().await;
        assert!(!notices.is_empty());
        for notice in &notices {
            assert_eq!(notice.state, NoticeState::Queued, "{tls}: retried later");
            let error = notice.last_error.as_deref().unwrap_or_default();
            assert!(
                error.to_lowercase().contains("certificate"),
                "{tls}: {error}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_relay_password_is_refused_recorded_and_blames_no_contact() {
    let run = one_pass("smtp-wrong-password", 45, |config, run| {
        secure_relay(config, run, "starttls");
        config.smtp.password = Some("not-the-password".into());
        config.retry_base_secs = 3600;
    })
    .await;
    assert!(run.world.notices().is_empty());
    let notices = run.notices().await;
    assert!(!notices.is_empty());
    for notice in &notices {
        assert_eq!(notice.state, NoticeState::Queued, "retried with back-off");
        assert_eq!(notice.contact_index, 0, "still the first contact");
        let error = notice.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("refused authentication") && error.contains("535"),
            "{error}"
        );
        let timeline = run
            .store
            .notices()
            .timeline(aranea_store::NoticeId(notice.id))
            .await
            .unwrap();
        assert!(
            timeline
                .iter()
                .any(|e| e.kind == "retry" && e.detail.contains("authentication")),
            "{timeline:?}"
        );
    }
    let now = WorldClock(run.world.clone()).now();
    let dead = run.store.notices().dead_contacts(now).await.unwrap();
    assert!(
        dead.is_empty(),
        "our relay's refusal killed contacts: {dead:?}"
    );
}

/// Runs dkimpy's verifier on `message`, answering its DNS query with the published key.
fn dkimpy_verifies(message: &str) -> bool {
    use std::io::Write;
    let script = r#"
import sys, dkim
record = open(sys.argv[1], 'rb').read().strip()
def dns(name, timeout=5):
    return record if name.rstrip(b'.') == b'aranea._domainkey.hotline.example' else None
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=dns)
print('verified' if ok else 'failed')
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, DKIM_TXT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test installs dkimpy)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        stdout == "verified" || stdout == "failed",
        "dkimpy did not run: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout == "verified"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dkim_signed_notice_verifies_with_the_published_key_and_fails_once_altered() {
    let run = one_pass("smtp-dkim", 46, |config, run| {
        secure_relay(config, run, "starttls");
        config.smtp.dkim = Some(DkimConfig {
            selector: "aranea".into(),
            domain: "hotline.example".into(),
            private_key_path: DKIM_KEY.into(),
        });
    })
    .await;
    let received = run.world.notices();
    assert!(!received.is_empty());
    for arrival in &received {
        assert!(arrival.raw.contains("DKIM-Signature:"), "unsigned");
        assert!(dkimpy_verifies(&arrival.raw), "signature does not verify");
    }
    // The verifier is not a rubber stamp: one changed byte of a signed body fails it.
    let raw = &received[0].raw;
    let body = raw.find("\r\n\r\n").unwrap() + 4;
    let (at, c) = raw
        .char_indices()
        .skip_while(|(i, _)| *i < body + (raw.len() - body) / 2)
        .find(|(_, c)| c.is_ascii_alphanumeric())
        .unwrap();
    let swapped = if c == 'x' { 'y' } else { 'x' };
    let altered = format!("{}{swapped}{}", &raw[..at], &raw[at + 1..]);
    assert!(!dkimpy_verifies(&altered), "an altered message verified");
}
