//! `aranea client list`, `aranea report add` and `aranea report show` in each `--format`, through the built binary
//! against a real SQLite data directory: what an integrator scripting intake parses.

#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use sqlx::{Connection, Row};

fn aranea(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("ARANEA_DB")
        .env_remove("ARANEA_CONFIG")
        .output()
        .expect("run aranea")
}

fn ok(data: &Path, args: &[&str]) -> String {
    let output = aranea(data, args);
    assert!(
        output.status.success(),
        "aranea {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn refuses_bad_format(data: &Path, args: &[&str]) {
    process::assert_bad_format_refused(args, |args| aranea(data, args));
}

#[test]
fn clients_list_as_one_json_array_or_as_json_lines_without_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let added = ok(
        data,
        &[
            "client", "add", "shield-a", "--scope", "shield", "--rate", "5",
        ],
    );
    let secret = added
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("shield-a:"))
        .unwrap()
        .to_owned();
    ok(
        data,
        &[
            "client", "add", "intake-b", "--scope", "intake", "--scope", "read",
        ],
    );
    ok(data, &["client", "revoke", "intake-b"]);

    let json_out = ok(data, &["client", "list", "--format", "json"]);
    let jsonl_out = ok(data, &["client", "list", "--format", "jsonl"]);
    assert!(!json_out.contains(&secret) && !jsonl_out.contains(&secret));
    let clients: Vec<Value> = serde_json::from_str(&json_out).unwrap();
    assert_eq!(json_lines(&jsonl_out), clients);
    assert_eq!(clients.len(), 2, "{clients:?}");
    let by_name = |name: &str| clients.iter().find(|c| c["name"] == name).unwrap();
    let shield = by_name("shield-a");
    assert_eq!(shield["scopes"], json!(["shield"]));
    assert_eq!(shield["rate_per_second"], 5);
    assert!(
        shield["created_at"].is_i64() && shield["revoked_at"].is_null(),
        "{shield}"
    );
    let intake = by_name("intake-b");
    assert_eq!(intake["scopes"], json!(["intake", "read"]));
    assert!(
        intake["rate_per_second"].is_null() && intake["revoked_at"].is_i64(),
        "{intake}"
    );
    for client in &clients {
        assert!(
            client
                .as_object()
                .unwrap()
                .keys()
                .all(|k| !k.contains("secret")),
            "{client}"
        );
    }

    let text = ok(data, &["client", "list"]);
    assert!(text.contains("shield-a\tactive\t[shield]\t5/s"), "{text}");
    assert!(
        text.contains("intake-b\trevoked\t[intake,read]\tunlimited"),
        "{text}"
    );
    refuses_bad_format(data, &["client", "list"]);
}

#[test]
fn a_report_added_prints_its_id_and_status_as_one_json_object_or_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let add = |url: &str, format: Option<&str>| {
        let mut args = vec![
            "report",
            "add",
            url,
            "--reporter",
            "web-form",
            "--hotline",
            "nl",
        ];
        if let Some(format) = format {
            args.extend(["--format", format]);
        }
        ok(data, &args)
    };
    let mut printed = Vec::new();
    for (n, format) in [None, Some("json"), Some("jsonl")].into_iter().enumerate() {
        let out = add(&format!("https://example.org/{n}.jpg"), format);
        assert_eq!(out.lines().count(), 1, "{format:?}: {out}");
        printed.push(serde_json::from_str::<Value>(&out).unwrap());
    }
    let text = add("https://example.org/3.jpg", Some("text"));

    let rows = block_on(async {
        let url = format!("sqlite://{}", data.join("aranea.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let rows =
            sqlx::query("SELECT id, url, status, reporter, hotline FROM reports ORDER BY id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        rows.iter()
            .map(|r| {
                json!({
                    "report": r.get::<i64, _>("id"),
                    "url": r.get::<String, _>("url"),
                    "status": r.get::<String, _>("status"),
                    "reporter": r.get::<String, _>("reporter"),
                    "hotline": r.get::<String, _>("hotline"),
                })
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(rows.len(), 4);
    assert_eq!(printed, rows[..3], "what was printed is what was recorded");
    assert_eq!(
        text.trim_end(),
        format!(
            "report {} received: https://example.org/3.jpg",
            rows[3]["report"]
        )
    );

    refuses_bad_format(data, &["report", "add", "https://example.org/4.jpg"]);
    // A refused URL is an error on stderr whatever the format.
    let refused = aranea(
        data,
        &["report", "add", "ftp://example.org/x", "--format", "json"],
    );
    assert_ne!(refused.status.code(), Some(0));
    assert!(refused.stdout.is_empty());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only http and https"));
}

#[test]
fn a_report_shows_its_status_and_why_it_was_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let added: Value = serde_json::from_str(&ok(
        data,
        &[
            "report",
            "add",
            "https://example.org/gallery",
            "--hotline",
            "nl",
            "--notes",
            "line one\nstatus: crawled",
        ],
    ))
    .unwrap();
    let id = added["report"].as_i64().unwrap().to_string();

    let shown: Value =
        serde_json::from_str(&ok(data, &["report", "show", &id, "--format", "json"])).unwrap();
    assert_eq!(shown["report"], added["report"]);
    assert_eq!(shown["url"], "https://example.org/gallery");
    assert_eq!(shown["status"], "received");
    assert_eq!(shown["reason"], Value::Null);
    assert_eq!(shown["notes"], "line one\nstatus: crawled");
    assert_eq!(shown["followed"], json!([]));

    // Rejected, as a crawler does when the URL cannot be crawled: the reason is shown.
    block_on(async {
        let url = format!("sqlite://{}", data.join("aranea.db").display());
        let store = aranea_store::Store::open(&url).await.unwrap();
        let rejected = store
            .reports()
            .reject_received(
                aranea_store::ReportId::from_raw(added["report"].as_i64().unwrap()),
                "the host is deny-listed",
            )
            .await
            .unwrap();
        assert!(rejected);
        store.close().await;
    });
    let text = ok(data, &["report", "show", &id]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("report: {id}"));
    assert!(lines.contains(&"status: rejected"), "{text}");
    assert!(
        lines.contains(&"reason: \"the host is deny-listed\""),
        "{text}"
    );
    // The notes' line break cannot forge a `status:` line.
    assert!(
        lines.contains(&"notes: \"line one\\nstatus: crawled\""),
        "{text}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("status:")).count(),
        1,
        "{text}"
    );
    let jsonl: Value =
        serde_json::from_str(&ok(data, &["report", "show", &id, "--format", "jsonl"])).unwrap();
    assert_eq!(jsonl["reason"], "the host is deny-listed");

    for bad in [
        "999999",
        "-1",
        "0",
        "abc",
        "",
        "1e3",
        "99999999999999999999",
    ] {
        let refused = aranea(data, &["report", "show", bad]);
        assert_ne!(refused.status.code(), Some(0), "{bad:?}");
        assert!(refused.stdout.is_empty(), "{bad:?}");
        assert!(!refused.stderr.is_empty(), "{bad:?}");
    }
    let unknown = aranea(data, &["report", "show", "999999"]);
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no report 999999"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    refuses_bad_format(data, &["report", "show", &id]);
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}
