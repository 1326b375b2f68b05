//! Hostile RDAP answers (garbage JSON, huge bodies, loops in links, no abuse contact) and
//! SMTP failures (unknown mailbox, relay down) end in recorded, retried states, never a
//! crash; the XARF reports pass the PyPI `xarf` validator; the signed respond link works.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aranea_crawl::fetch::Fetcher;
use aranea_notice::config::OverrideConfig;
use aranea_notice::rdap::{RdapClient, RdapError};
use aranea_notice::{Clock, NoticeEngine};
use aranea_store::{NoticeFilter, NoticeId, NoticeState, ProviderResponse, Store};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An RDAP server that misbehaves by path prefix, on 127.0.54.1.
async fn hostile_rdap() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.54.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let me = base.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let me = me.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let body: Vec<u8> = if path.starts_with("/garbage/") {
                    b"{\"objectClassName\": \"ip network\", \"entities\": [".to_vec()
                } else if path.starts_with("/huge/") {
                    let mut v = b"{\"objectClassName\":\"ip network\",\"name\":\"".to_vec();
                    v.extend(std::iter::repeat_n(b'a', 8 * 1024 * 1024));
                    v.extend(b"\"}");
                    v
                } else if path.starts_with("/loop/") {
                    format!(
                        "{{\"objectClassName\":\"ip network\",\"links\":[{{\"rel\":\"related\",\
                         \"type\":\"application/rdap+json\",\"href\":\"{me}/loop2{path}\"}}]}}"
                    )
                    .into_bytes()
                } else if path.starts_with("/loop2/") {
                    let back = path.trim_start_matches("/loop2");
                    format!(
                        "{{\"objectClassName\":\"ip network\",\"links\":[{{\"rel\":\"related\",\
                         \"type\":\"application/rdap+json\",\"href\":\"{me}{back}\"}}]}}"
                    )
                    .into_bytes()
                } else {
                    br#"{"objectClassName":"ip network","handle":"NET-X","entities":[{"roles":["registrant"],"vcardArray":["vcard",[["fn",{},"text","No Abuse Desk Ltd"]]]}]}"#.to_vec()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/rdap+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    base
}

fn hostile_fetch_config(addrs: &Addrs) -> aranea_crawl::fetch::FetchConfig {
    let mut config = fetch_config(addrs);
    config
        .guard
        .allow_cidrs
        .push("127.0.54.0/24".parse().unwrap());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rdap_answers_are_typed_errors_and_attribution_falls_back() {
    let world = world(3);
    let addrs = Addrs::of(&world);
    let base = hostile_rdap().await;
    let fetcher = Fetcher::new(hostile_fetch_config(&addrs)).unwrap();
    let ip = "127.10.1.1".parse().unwrap();
    let ask = |prefix: &str| {
        RdapClient::new(
            fetcher.clone(),
            vec![format!("{base}/{prefix}/")],
            60,
            3,
            64 * 1024,
        )
    };
    let started = std::time::Instant::now();
    assert!(matches!(
        ask("garbage").network(ip, 0).await,
        Err(RdapError::Malformed { .. })
    ));
    assert!(matches!(
        ask("huge").network(ip, 0).await,
        Err(RdapError::Malformed { .. })
    ));
    assert!(matches!(
        ask("loop").network(ip, 0).await,
        Ok(network) if network.contacts.is_empty()
    ));
    let quiet = ask("quiet").network(ip, 0).await.unwrap();
    assert!(quiet.contacts.is_empty());
    assert_eq!(quiet.organisation.as_deref(), Some("No Abuse Desk Ltd"));
    assert!(started.elapsed() < Duration::from_secs(20));

    // Garbage first, then the real registry: attribution still finds the abuse desk.
    let (db, dir) = temp_sqlite("hostile-rdap");
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let mut config = notice_config(&addrs);
    config.rdap_base_urls = vec![format!("{base}/garbage/"), addrs.rdap.clone()];
    let engine = NoticeEngine::new(
        store.clone(),
        config,
        hostile_fetch_config(&addrs),
        clock.clone(),
        "w",
    )
    .unwrap();
    CrawlStandIn::new(&world)
        .crawl(&world, &store, clock.now())
        .await;
    let pass = engine.run_once().await.unwrap();
    assert!(pass.sent > 0 && pass.failed == 0, "{pass:?}");
    let items = store.notices().list_items(None, 1000).await.unwrap();
    assert!(
        items
            .iter()
            .filter(|i| i.via_cdn.is_none())
            .all(|i| i.method == "rdap_abuse")
    );

    // Only registries without an abuse contact: items wait with a recorded reason.
    let (db2, dir2) = temp_sqlite("hostile-rdap-2");
    let store2 = Store::open(&db2).await.unwrap();
    let mut config = notice_config(&addrs);
    config.rdap_base_urls = vec![format!("{base}/quiet/")];
    config.webhooks.clear();
    let engine = NoticeEngine::new(
        store2.clone(),
        config,
        hostile_fetch_config(&addrs),
        clock.clone(),
        "w",
    )
    .unwrap();
    CrawlStandIn::new(&world)
        .crawl(&world, &store2, clock.now())
        .await;
    let pass = engine.run_once().await.unwrap();
    assert_eq!(pass.sent, 0);
    let items = store2.notices().list_items(None, 1000).await.unwrap();
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .filter(|i| i.via_cdn.is_none())
            .all(|i| i.method == "rdap_fallback" && i.confidence_pct == 30)
    );
    assert!(
        items.iter().all(|i| i.notice_due_at.is_some()),
        "retried later"
    );
    let _ = (std::fs::remove_dir_all(dir), std::fs::remove_dir_all(dir2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_failures_are_recorded_retried_and_fall_back_to_the_next_contact() {
    let world = world(5);
    let addrs = Addrs::of(&world);
    let (db, dir) = temp_sqlite("smtp");
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    CrawlStandIn::new(&world)
        .crawl(&world, &store, clock.now())
        .await;

    // The relay is down: every email is retried with back-off, nothing is lost.
    let mut down = notice_config(&addrs);
    down.smtp.port = {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        closed.local_addr().unwrap().port()
    };
    down.retry_base_secs = 3600;
    let engine = NoticeEngine::new(
        store.clone(),
        down,
        fetch_config(&addrs),
        clock.clone(),
        "w",
    )
    .unwrap();
    let pass = engine.run_once().await.unwrap();
    assert!(pass.retried > 0, "{pass:?}");
    let queued = store
        .notices()
        .list_notices(&NoticeFilter {
            state: Some(NoticeState::Queued),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!queued.is_empty());
    assert!(
        queued
            .iter()
            .all(|n| n.channel == "smtp" && n.attempts == 1 && n.last_error.is_some())
    );
    assert!(
        queued.iter().all(|n| n.next_attempt_at > clock.now()),
        "backing off"
    );

    // The relay is back; Slowpoke's first listed address does not exist (550 at RCPT).
    let mut up = notice_config(&addrs);
    up.overrides.insert(
        "asn:64502".into(),
        OverrideConfig {
            provider: None,
            emails: vec![
                "nobody@slowpoke-hosting.sim".into(),
                "abuse@slowpoke-hosting.sim".into(),
            ],
            webhook: None,
        },
    );
    world.advance(Duration::from_secs(2 * 3600));
    let engine =
        NoticeEngine::new(store.clone(), up, fetch_config(&addrs), clock.clone(), "w").unwrap();
    engine.run_once().await.unwrap();
    let notices = store
        .notices()
        .list_notices(&NoticeFilter::default())
        .await
        .unwrap();
    assert!(
        notices.iter().all(|n| n.state == NoticeState::Sent),
        "{notices:#?}"
    );
    // The retried notices were composed before the override; new items would use it. Show
    // the fallback on a fresh notice to Slowpoke.
    let received = world.notices();
    assert_eq!(received.len(), notices.len());
    let timeline: Vec<_> = {
        let mut all = Vec::new();
        for n in &notices {
            all.extend(store.notices().timeline(NoticeId(n.id)).await.unwrap());
        }
        all
    };
    assert!(timeline.iter().any(|e| e.kind == "retry"));

    let (db2, dir2) = temp_sqlite("smtp-bounce");
    let store2 = Store::open(&db2).await.unwrap();
    let mut bouncy = notice_config(&addrs);
    bouncy.overrides.insert(
        "asn:64502".into(),
        OverrideConfig {
            provider: None,
            emails: vec![
                "nobody@slowpoke-hosting.sim".into(),
                "abuse@slowpoke-hosting.sim".into(),
            ],
            webhook: None,
        },
    );
    CrawlStandIn::new(&world)
        .crawl(&world, &store2, clock.now())
        .await;
    let engine = NoticeEngine::new(
        store2.clone(),
        bouncy,
        fetch_config(&addrs),
        clock.clone(),
        "w",
    )
    .unwrap();
    engine.run_once().await.unwrap();
    let slow: Vec<_> = store2
        .notices()
        .list_notices(&NoticeFilter {
            provider_key: Some("asn:64502".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0].state, NoticeState::Sent);
    assert_eq!(
        (slow[0].recipient.as_str(), slow[0].contact_index),
        ("abuse@slowpoke-hosting.sim", 1)
    );
    assert_eq!(
        slow[0].attempts, 1,
        "the next contact counts its own attempts"
    );
    let events = store2
        .notices()
        .timeline(NoticeId(slow[0].id))
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"retry") && kinds.contains(&"next_contact") && kinds.contains(&"sent"),
        "{kinds:?}"
    );
    assert_eq!(
        store2.notices().dead_contacts(clock.now()).await.unwrap(),
        ["nobody@slowpoke-hosting.sim"]
    );
    let _ = (std::fs::remove_dir_all(dir), std::fs::remove_dir_all(dir2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xarf_reports_validate_and_the_signed_link_records_an_answer() {
    let world = world(9);
    let addrs = Addrs::of(&world);
    let (db, dir) = temp_sqlite("xarf");
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let mut config = notice_config(&addrs);
    config.test = true;
    // Germany's hotline handles its country itself: notices for German hosting go to it.
    if let Some(de) = config.hotlines.get_mut("de") {
        de.mode = "forward".into();
        de.email = "noc@harbor-networks.sim".into();
    }
    CrawlStandIn::new(&world)
        .crawl(&world, &store, clock.now())
        .await;
    let engine = NoticeEngine::new(
        store.clone(),
        config,
        fetch_config(&addrs),
        clock.clone(),
        "w",
    )
    .unwrap();
    engine.run_once().await.unwrap();
    let notices = store
        .notices()
        .list_notices(&NoticeFilter::default())
        .await
        .unwrap();
    assert!(!notices.is_empty());

    // Every report through the PyPI xarf validator (scripts/test installs it).
    let reports: Vec<serde_json::Value> = notices
        .iter()
        .flat_map(|n| serde_json::from_str::<Vec<serde_json::Value>>(&n.xarf).unwrap())
        .collect();
    assert!(
        reports
            .iter()
            .all(|r| r["test"] == true && r["type"] == "csam")
    );
    assert!(
        reports
            .iter()
            .all(|r| !r.to_string().contains("base64") && r.get("evidence").is_none())
    );
    let file = dir.join("reports.json");
    std::fs::write(&file, serde_json::to_string(&reports).unwrap()).unwrap();
    let script = "import json, sys, xarf\n\
        bad = 0\n\
        for r in json.load(open(sys.argv[1])):\n\
        \x20   res = xarf.parse(r)\n\
        \x20   if res.errors or res.report is None:\n\
        \x20       bad += 1; print(res.errors)\n\
        print('validated', flush=True)\n\
        sys.exit(1 if bad else 0)\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3 with the xarf package (scripts/test installs it)");
    assert!(
        out.status.success(),
        "xarf validation failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A broken report is refused by the same validator (the check can fail).
    let mut broken = reports[0].clone();
    broken["classification"] = serde_json::json!("Z9");
    std::fs::write(&file, serde_json::to_string(&[broken]).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());

    let german: Vec<_> = notices
        .iter()
        .filter(|n| n.provider_key == "asn:64502")
        .collect();
    assert!(!german.is_empty());
    assert!(
        german
            .iter()
            .all(|n| n.recipient == "noc@harbor-networks.sim" && n.hotline == "de")
    );

    // French for a French-speaking country is available; English here (NL, DE, US…).
    let email = notices.iter().find(|n| n.channel == "smtp").unwrap();
    assert!(email.subject.starts_with("[TEST]"));
    assert!(email.body_html.contains("<table>") && !email.body_html.contains("<script"));

    // The provider answers through the link in its notice, without an account.
    let token = email
        .body_text
        .split("?t=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let answered = engine
        .respond(&token, ProviderResponse::Acknowledged, "on it")
        .await
        .unwrap();
    assert_eq!(answered.notice.id, email.id);
    let after = store
        .notices()
        .notice(NoticeId(email.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.response.as_deref(), Some("acknowledged"));
    let forged = format!("{}0", token);
    assert!(
        engine
            .respond(&forged, ProviderResponse::Disputed, "")
            .await
            .is_err()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rdap_bootstrap_sends_each_address_to_its_registry_by_longest_prefix() {
    let world = world(5);
    let addrs = Addrs::of(&world);
    let hostile = hostile_rdap().await;
    let (_, dir) = temp_sqlite("rdap-bootstrap");
    let _dir = RemoveOnDrop(dir.clone());
    // An IANA-format file: the simulated providers' space at simweb's registry, one /24 of
    // it delegated to a registry that answers garbage, and a hostile entry among them.
    let bootstrap = dir.join("ipv4.json");
    std::fs::write(
        &bootstrap,
        serde_json::json!({
            "version": "1.0",
            "publication": "2026-11-01T00:00:00Z",
            "services": [
                [["127.10.0.0/16"], [addrs.rdap]],
                [["127.10.2.0/24"], [format!("{hostile}/garbage/")]],
                [["127.10.3.0/24", "not-a-prefix"], ["file:///etc/passwd"]],
            ]
        })
        .to_string(),
    )
    .unwrap();
    let fetcher = Fetcher::new(hostile_fetch_config(&addrs)).unwrap();
    // The configured base URL is a registry that never answers: only addresses outside
    // the bootstrap go there.
    let rdap = RdapClient::new(fetcher, vec![format!("{hostile}/quiet/")], 60, 3, 64 * 1024)
        .with_bootstrap(
            aranea_notice::rdap_bootstrap::Bootstrap::open(std::slice::from_ref(&bootstrap))
                .unwrap(),
        );
    let quickhost = world.world().provider_by_name("Quickhost").unwrap();
    let found = rdap
        .network("127.10.1.1".parse().unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(found.best_role(), Some("abuse"));
    assert_eq!(found.contacts[0].1, quickhost.abuse_email);
    assert!(found.source.starts_with(&addrs.rdap), "{}", found.source);
    // The /24 entry beats the /16 one; the entry with no usable URL is skipped, so its
    // addresses fall under the /16.
    assert!(matches!(
        rdap.network("127.10.2.1".parse().unwrap(), 0).await,
        Err(RdapError::Malformed { .. })
    ));
    let third = rdap
        .network("127.10.3.1".parse().unwrap(), 0)
        .await
        .unwrap();
    assert!(third.source.starts_with(&addrs.rdap), "{}", third.source);
    let outside = rdap
        .network("127.0.54.9".parse().unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(outside.organisation.as_deref(), Some("No Abuse Desk Ltd"));

    // Through the engine: configured by path, and a hostile file refuses to start it.
    let mut config = notice_config(&addrs);
    config.rdap_base_urls = vec![format!("{hostile}/garbage/")];
    config.rdap_bootstrap_files = vec![bootstrap];
    let (db, engine_dir) = temp_sqlite("rdap-bootstrap-engine");
    let _engine_dir = RemoveOnDrop(engine_dir);
    let store = Store::open(&db).await.unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    CrawlStandIn::new(&world)
        .crawl(&world, &store, clock.now())
        .await;
    let engine = NoticeEngine::new(
        store.clone(),
        config.clone(),
        hostile_fetch_config(&addrs),
        clock.clone(),
        "w",
    )
    .unwrap();
    let pass = engine.run_once().await.unwrap();
    assert!(pass.ingested > 0 && pass.unattributed == 0, "{pass:?}");
    for (name, text) in [
        ("garbage.json", "{\"services\": ["),
        ("empty.json", "{\"services\": []}"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        config.rdap_bootstrap_files = vec![path];
        let refused = NoticeEngine::new(
            store.clone(),
            config.clone(),
            hostile_fetch_config(&addrs),
            clock.clone(),
            "w",
        );
        assert!(
            matches!(&refused, Err(aranea_notice::NoticeError::Setup { message }) if message.contains("bootstrap")),
            "{name}"
        );
    }
}
