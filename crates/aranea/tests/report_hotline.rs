//! A report names a registered hotline: once the platform has any hotline, `aranea report add
//! --hotline X` and `POST /api/v1/reports` refuse one that is not registered, naming it, and
//! record nothing (the check is the store's, shared by both).

#[path = "common/process.rs"]
mod process;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use aranea_store::{ReportStatus, Store};
use process::{BIN, aranea_ok, serve};

/// The URLs of the reports recorded and not yet queued.
fn received(db: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(db).await.unwrap();
        let reports = store
            .reports()
            .with_status(ReportStatus::Received, 100)
            .await
            .unwrap();
        store.close().await;
        reports.into_iter().map(|r| r.url).collect()
    })
}

fn report_add(data: &Path, db: &str, url: &str, hotline: &str) -> std::process::Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["--db", db, "report", "add", url, "--hotline", hotline])
        .output()
        .unwrap()
}

/// `POST /api/v1/reports` with `body`; returns the status code and the body.
fn post_report(base: &str, credentials: &str, body: &str) -> (u16, String) {
    let authority = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    let request = format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {credentials}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn a_report_naming_an_unregistered_hotline_is_refused_by_the_cli_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    aranea_ok(
        &data,
        &db,
        &[
            "hotline",
            "add",
            "nl",
            "--name",
            "Hotline NL",
            "--country",
            "NL",
        ],
    );

    let refused = report_add(&data, &db, "https://example.org/a", "nosuch");
    assert_eq!(
        refused.status.code(),
        Some(2),
        "an unregistered hotline was taken"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("hotline \"nosuch\" is not registered"),
        "{stderr}"
    );
    let taken = report_add(&data, &db, "https://example.org/b", "nl");
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    assert_eq!(
        received(&db),
        ["https://example.org/b"],
        "only the report of nl"
    );

    let added = aranea_ok(&data, &db, &["client", "add", "intake", "--all-scopes"]);
    let credentials = added.lines().last().unwrap().to_owned();
    let config = dir.path().join("aranea.toml");
    std::fs::write(&config, "").unwrap();
    let (mut server, base) = serve(&data, &db, &config);
    let (status, body) = post_report(
        &base,
        &credentials,
        r#"{"url": "https://example.org/c", "hotline": "nosuch"}"#,
    );
    let (default_status, default_body) =
        post_report(&base, &credentials, r#"{"url": "https://example.org/d"}"#);
    let (nl_status, _) = post_report(
        &base,
        &credentials,
        r#"{"url": "https://example.org/e", "hotline": "nl"}"#,
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 400, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["detail"], "hotline: hotline \"nosuch\" is not registered.",
        "the API's error body names the hotline"
    );
    assert_eq!(
        default_status, 400,
        "no hotline given is hotline \"default\", which is not registered: {default_body}"
    );
    assert_eq!(nl_status, 201);
    assert_eq!(
        received(&db),
        ["https://example.org/b", "https://example.org/e"],
        "nothing recorded for the refused ones"
    );
}

/// Before any hotline is registered, nothing reads a report's hotline: the name is kept.
#[test]
fn before_any_hotline_is_registered_a_report_keeps_the_name_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    let taken = report_add(&data, &db, "https://example.org/a", "nl");
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    assert_eq!(received(&db), ["https://example.org/a"]);
}
