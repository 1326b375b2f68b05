//! `aranea notices`: one worker pass against the simulated internet sends a notice for a
//! recorded match; `list --format json|jsonl`, `show --format xarf|json`, `resend` and
//! `stats --format csv` read it back. `stats` of a database written on a clock ahead of the
//! real one (the demo's) shows no negative age.

#[path = "common/notices.rs"]
mod notices;

use std::process::Command;

use aranea_simweb::{SimWeb, scenario};
use aranea_store::Store;

fn aranea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_pass_sends_and_the_commands_show_it_as_sent() {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());

    // One known image on the ignoring provider's forum, recorded as the crawler would.
    let image_url = notices::record_a_match(&world, &db).await;

    let config = dir.path().join("aranea.toml");
    std::fs::write(&config, notices::notice_section(&world, Some("s"))).unwrap();
    let config = config.display().to_string();
    let (ok, _, err) = aranea(&["--db", &db, "--config", &config, "notices", "run", "--once"]);
    assert!(ok, "{err}");
    assert!(err.contains("1 sent"), "{err}");
    assert_eq!(world.notices().len(), 1);

    let (ok, out, err) = aranea(&["--db", &db, "notices", "list", "--format", "json"]);
    assert!(ok, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["state"], "sent");
    assert_eq!(list[0]["recipient"], "abuse@slowpoke-hosting.sim");
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let (ok, out, _) = aranea(&["--db", &db, "notices", "list", "--format", "jsonl"]);
    assert!(ok && out.lines().count() == 1);

    let (ok, xarf, _) = aranea(&["--db", &db, "notices", "show", &id, "--format", "xarf"]);
    assert!(ok);
    let reports: serde_json::Value = serde_json::from_str(&xarf).unwrap();
    assert_eq!(reports[0]["url"], image_url.as_str());
    assert_eq!(reports[0]["type"], "csam");
    let received = &world.notices()[0].raw;
    assert!(
        received.contains(reports[0]["report_id"].as_str().unwrap())
            || received.contains("xarf-reports.json")
    );

    let (ok, shown, _) = aranea(&["--db", &db, "notices", "show", &id, "--format", "json"]);
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["items"][0]["url"], image_url.as_str());
    assert!(
        shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "sent")
    );

    let (ok, out, _) = aranea(&["--db", &db, "notices", "resend", &id]);
    assert!(ok && out.contains("resend"));
    // Two notices now: one per page, newest first; the cursor leads to the older one.
    let page = |cursor: Option<&str>| {
        let mut args = vec![
            "--db", &db, "notices", "list", "--limit", "1", "--format", "jsonl",
        ];
        if let Some(cursor) = cursor {
            args.extend(["--cursor", cursor]);
        }
        let (ok, out, err) = aranea(&args);
        assert!(ok, "{err}");
        let ids: Vec<i64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let next = err
            .lines()
            .find_map(|l| l.strip_prefix("more: --cursor "))
            .map(str::to_owned);
        (ids, next)
    };
    let (newest, next) = page(None);
    let (older, last) = page(next.as_deref());
    assert_eq!(older, [id.parse::<i64>().unwrap()]);
    assert!(newest[0] > older[0]);
    assert_eq!(page(last.as_deref()), (vec![], None));
    let (ok, csv, _) = aranea(&["--db", &db, "notices", "stats", "--format", "csv"]);
    assert!(ok);
    assert!(csv.starts_with("dimension,key,items"));
    assert!(csv.contains("provider,Slowpoke Hosting,1,1,0"), "{csv}");

    let (ok, _, err) = aranea(&["--db", &db, "notices", "show", "999999"]);
    assert!(!ok && err.contains("no notice"));
}

/// A database written on a clock that ran ahead of the real one, as `aranea demo` leaves
/// it (its notice engine runs on the simulated world's accelerated clock): `notices stats`
/// measures ages to the newest recorded event, never to a "now" earlier than the items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_of_a_database_ahead_of_the_real_clock_show_no_negative_age() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    let store = Store::open(&db).await.unwrap();
    let real_now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    // Two days ahead: the item is opened, noticed an hour later and reminded ten hours
    // after it was opened, still not removed.
    let opened = real_now + 48 * HOUR_MS;
    let item = store
        .notices()
        .open_item(&new_item("http://oak-forum.sim/a.jpg", opened), opened)
        .await
        .unwrap()
        .unwrap();
    send(&store, "initial", item, opened + HOUR_MS).await;
    send(&store, "renotice", item, opened + 10 * HOUR_MS).await;
    store.close().await;

    let (ok, out, err) = aranea(&["--db", &db, "notices", "stats", "--format", "json"]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{out}");
    for row in rows {
        let age = row["oldest_outstanding_hours"].as_f64().unwrap();
        // As of the reminder, the newest event: ten hours (a little more only if the real
        // clock overtook it meanwhile, which it cannot in a test's time).
        assert!((10.0..10.1).contains(&age), "{row}");
    }
    let (ok, text, err) = aranea(&["--db", &db, "notices", "stats"]);
    assert!(ok, "{err}");
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().all(|line| line.contains("oldest  10.0 h")),
        "{text}"
    );
}

fn new_item(url: &str, at: i64) -> aranea_store::NewItem {
    aranea_store::NewItem {
        sighting_id: None,
        url: url.into(),
        host: "oak-forum.sim".into(),
        sha256: "aa".repeat(32),
        md5: "bb".repeat(16),
        sha1: "cc".repeat(20),
        pdq: None,
        media_kind: "jpeg".into(),
        classification: "A1".into(),
        first_seen_at: at,
        provider_key: "asn:64501".into(),
        provider_name: "Slowpoke Hosting".into(),
        asn: Some(64501),
        prefix: None,
        country: Some("NL".into()),
        hotline: "own".into(),
        via_cdn: None,
        method: "rdap_abuse".into(),
        confidence_pct: 90,
        contacts: "[]".into(),
        upstream_contact: None,
        notice_due_at: at,
        reupload_of: None,
    }
}

/// A notice of `kind` about `item`, composed and delivered at `at` as the worker records it.
async fn send(store: &Store, kind: &str, item: aranea_store::ItemId, at: i64) {
    let notice = aranea_store::NewNotice {
        report_id: format!("r-{kind}"),
        idempotency_key: format!("k-{kind}"),
        provider_key: "asn:64501".into(),
        provider_name: "Slowpoke Hosting".into(),
        hotline: "own".into(),
        kind: kind.into(),
        escalation_step: None,
        via_cdn: None,
        channel: "smtp".into(),
        recipient: "abuse@slowpoke-hosting.sim".into(),
        contacts: "[]".into(),
        contact_index: 0,
        language: "en".into(),
        subject: "s".into(),
        body_text: "t".into(),
        body_html: "<p>t</p>".into(),
        xarf: "[]".into(),
        parent_id: None,
        test: false,
    };
    let notices = store.notices();
    let (id, _) = notices.create_notice(&notice, &[item], at).await.unwrap();
    let claimed = notices.claim_notice("w", at, at + 1000).await.unwrap();
    assert_eq!(claimed.map(|n| n.id), Some(id.0));
    assert!(notices.mark_committing(id, "w").await.unwrap());
    assert!(
        notices
            .mark_sent(id, "w", at, "250 ok", HOUR_MS)
            .await
            .unwrap()
    );
}

const HOUR_MS: i64 = 3_600_000;

/// Hostile ids, limits, cursors and formats are refused with an error naming what was wrong,
/// exit non-zero and write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_arguments_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    let store = Store::open(&db).await.unwrap();
    let item = store
        .notices()
        .open_item(&new_item("http://oak-forum.sim/a.jpg", 1_000), 1_000)
        .await
        .unwrap()
        .unwrap();
    send(&store, "initial", item, 2_000).await;
    let notices_now = || async {
        let store = Store::open(&db).await.unwrap();
        let page = store
            .notices()
            .list_notices_page(&aranea_store::NoticeFilter::default(), None)
            .await
            .unwrap()
            .0;
        store.close().await;
        page.len()
    };
    store.close().await;
    assert_eq!(notices_now().await, 1);
    let cases: &[(&[&str], &str)] = &[
        (&["show", "999999"], "no notice 999999"),
        (&["show", "0"], "no notice 0"),
        (&["show", "--", "-1"], "no notice -1"),
        (&["show", "99999999999999999999"], "number too large"),
        (&["show", "abc"], "invalid digit"),
        (
            &["show", "1", "--format", "xml"],
            "possible values: text, json, xarf, email",
        ),
        (&["resend", "999999"], "not found"),
        (&["resend", "--", "-5"], "not found"),
        (&["resend", "1x"], "invalid digit"),
        (&["list", "--limit", "0"], "--limit"),
        (&["list", "--limit=-1"], "--limit"),
        (&["list", "--cursor", "0"], "--cursor"),
        (&["list", "--cursor=-1"], "--cursor"),
        (&["list", "--cursor", "abc"], "--cursor"),
        (&["list", "--state", "bogus"], "unknown notice state"),
        (
            &["list", "--format", "xml"],
            "possible values: text, json, jsonl",
        ),
        (
            &["stats", "--format", "xml"],
            "possible values: text, json, csv",
        ),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["--db", &db, "notices"];
        argv.extend_from_slice(args);
        let (ok, out, err) = aranea(&argv);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(notices_now().await, 1, "a refused command wrote a notice");
}
