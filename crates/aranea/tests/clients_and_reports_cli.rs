//! `aranea client list`, `aranea report add` and `aranea report show` in each `--format`, through the built binary
//! against a real SQLite data directory: what an integrator scripting intake parses. And a
//! report crawled by `aranea crawl` through redirects on a loopback web server, shown with
//! the URLs it was followed to, on SQLite and on PostgreSQL (`ARANEA_TEST_POSTGRES`).

#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
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

    assert!(shield["hotline"].is_null(), "a platform client: {shield}");

    let text = ok(data, &["client", "list"]);
    assert!(
        text.contains("shield-a\tactive\t[shield]\t5/s\tall hotlines"),
        "{text}"
    );
    assert!(
        text.contains("intake-b\trevoked\t[intake,read]\tunlimited"),
        "{text}"
    );
    refuses_bad_format(data, &["client", "list"]);
}

#[test]
fn a_client_bound_to_a_hotline_names_a_registered_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let args = ["client", "add", "se-partner", "--scope", "intake"];
    let refused = aranea(data, &[&args[..], &["--hotline", "se-hl"]].concat());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("se-hl"), "{stderr}");
    assert_eq!(
        ok(data, &["client", "list", "--format", "json"]).trim(),
        "[]"
    );

    ok(
        data,
        &[
            "hotline",
            "add",
            "se-hl",
            "--name",
            "Hotline SE",
            "--country",
            "SE",
        ],
    );
    let added = ok(data, &[&args[..], &["--hotline", "se-hl"]].concat());
    assert!(added.contains("for hotline se-hl"), "{added}");
    let clients: Vec<Value> =
        serde_json::from_str(&ok(data, &["client", "list", "--format", "json"])).unwrap();
    assert_eq!(clients[0]["hotline"], "se-hl", "{clients:?}");
    let text = ok(data, &["client", "list"]);
    assert!(
        text.contains("se-partner\tactive\t[intake]\tunlimited\tse-hl"),
        "{text}"
    );

    // The banks are every hotline's: a bound client is not given the scope to change them.
    let banker = [
        "client",
        "add",
        "se-banker",
        "--scope",
        "banks",
        "--hotline",
        "se-hl",
    ];
    let refused = aranea(data, &banker);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("banks scope"), "{stderr}");
    let everything = [
        "client",
        "add",
        "se-tool",
        "--all-scopes",
        "--hotline",
        "se-hl",
    ];
    let added = ok(data, &everything);
    assert!(
        added.contains("with scopes [shield, intake, read] for hotline se-hl"),
        "{added}"
    );
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
    // A line break the URL parser would drop: refused, so no stored URL forges a line of
    // `report show`, and nothing recorded (the next report takes the next id).
    let forged = aranea(
        data,
        &["report", "add", "https://example.org/a\nstatus: crawled"],
    );
    assert_ne!(forged.status.code(), Some(0));
    assert!(forged.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&forged.stderr).contains("control character U+000A"),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );
    let next = json_lines(&ok(
        data,
        &[
            "report",
            "add",
            "https://example.org/5.jpg",
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        next[0]["report"].as_i64(),
        rows[3]["report"].as_i64().map(|id| id + 1)
    );
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

/// A web server on 127.0.0.1, on a thread of its own for the rest of the test process: each
/// `(path, location)` of `redirects` answers 301 to `location` (a path on the same server,
/// sent as given, bytes and all); `/robots.txt` is 404 and every other path a small page.
fn redirecting_site(redirects: Vec<(&'static str, Vec<u8>)>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else {
                continue;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("");
            let mut answer: Vec<u8> = Vec::new();
            if let Some((_, location)) = redirects.iter().find(|(from, _)| *from == path) {
                answer.extend_from_slice(b"HTTP/1.1 301 Moved Permanently\r\nlocation: ");
                answer.extend_from_slice(location);
                answer.extend_from_slice(b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            } else if path == "/robots.txt" {
                answer.extend_from_slice(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            } else {
                let body = "<html><body>a page</body></html>";
                answer.extend_from_slice(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
            let _ = socket.write_all(&answer);
        }
    });
    addr
}

/// `/short` redirects twice (301 to `/middle`, which redirects to `/page`); `/hostile`
/// redirects to a Location holding a space, quotes, angle brackets, a non-ASCII letter and
/// an encoded line break followed by a forged `status:` line. Both are reported, crawled by
/// `aranea crawl` (a config allowing loopback), then shown: each with the URLs followed, in
/// order, with their redirect counts, and `crawled`; the hostile target's URL printed
/// percent-encoded, so the text output keeps one line per field.
fn a_redirected_report_shows_the_urls_it_was_followed_to(data: &Path, db: &[&str]) {
    let site = redirecting_site(vec![
        ("/short", b"/middle".to_vec()),
        ("/middle", b"/page".to_vec()),
        (
            "/hostile",
            "/a b\"<\u{e9}>%0Astatus: rejected (after 0 redirects)"
                .as_bytes()
                .to_vec(),
        ),
    ]);
    let config = data.join("aranea.toml");
    std::fs::write(
        &config,
        "[crawl]\nallow_cidrs = [\"127.0.0.1/32\"]\nsystem_roots = false\n\
         connect_timeout_ms = 2000\nread_timeout_ms = 2000\ntotal_timeout_ms = 4000\n\
         claim_interval_ms = 100\n[crawl.politeness]\nmin_delay_ms = 0\nmax_delay_ms = 100\n\
         crawl_delay_cap_ms = 0\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = db.to_vec();
        all.extend(["--config", config]);
        all.extend(args);
        ok(data, &all)
    };
    let report = |path: &str| {
        let added: Value = serde_json::from_str(&run(&[
            "report",
            "add",
            &format!("http://{site}{path}"),
            "--hotline",
            "nl",
        ]))
        .unwrap();
        added["report"].as_i64().unwrap().to_string()
    };
    let (short, hostile) = (report("/short"), report("/hostile"));
    let summary: Value =
        serde_json::from_str(&run(&["crawl", "--until-idle", "--format", "json"])).unwrap();
    assert_eq!(summary["errors"], 0, "{summary}");

    let shown: Value =
        serde_json::from_str(&run(&["report", "show", &short, "--format", "json"])).unwrap();
    assert_eq!(shown["status"], "crawled", "{shown}");
    assert_eq!(shown["reason"], Value::Null, "{shown}");
    assert_eq!(
        shown["followed"],
        json!([
            {"url": format!("http://{site}/middle"), "redirects": 1},
            {"url": format!("http://{site}/page"), "redirects": 2},
        ]),
        "{shown}"
    );
    let text = run(&["report", "show", &short]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"status: crawled"), "{text}");
    let followed: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("followed:"))
        .collect();
    assert_eq!(
        followed,
        [
            format!("followed: http://{site}/middle (after 1 redirects)"),
            format!("followed: http://{site}/page (after 2 redirects)"),
        ],
        "{text}"
    );

    let shown: Value =
        serde_json::from_str(&run(&["report", "show", &hostile, "--format", "json"])).unwrap();
    assert_eq!(shown["status"], "crawled", "{shown}");
    let target = shown["followed"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(shown["followed"][0]["redirects"], 1, "{shown}");
    assert!(
        target.starts_with(&format!(
            "http://{site}/a%20b%22%3C%C3%A9%3E%0Astatus:%20rejected"
        )),
        "the target as the crawler fetched it: {target}"
    );
    let text = run(&["report", "show", &hostile]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("status:"))
            .collect::<Vec<_>>(),
        [&"status: crawled"],
        "no line forged by the target's URL: {text}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("followed:"))
            .collect::<Vec<_>>(),
        [&format!("followed: {target} (after 1 redirects)").as_str()],
        "{text}"
    );
    assert!(
        text.chars()
            .all(|c| c == '\n' || (c.is_ascii() && !c.is_ascii_control())),
        "only printable ASCII: {text:?}"
    );
}

#[test]
fn on_sqlite_a_redirected_report_shows_the_urls_it_was_followed_to() {
    let dir = tempfile::tempdir().unwrap();
    a_redirected_report_shows_the_urls_it_was_followed_to(dir.path(), &[]);
}

#[test]
fn on_postgres_a_redirected_report_shows_the_urls_it_was_followed_to() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres::fresh_database(&format!(
        "aranea_cli_report_followed_{}",
        std::process::id()
    ));
    a_redirected_report_shows_the_urls_it_was_followed_to(dir.path(), &["--db", &db]);
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    postgres::block_on(future)
}
