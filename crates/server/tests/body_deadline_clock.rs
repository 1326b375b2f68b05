//! When the body deadline's clock starts: when the server first waits for the body, which for
//! a client that sent `Expect: 100-continue` is when it answers `100 Continue`, not when the
//! request's head arrived. What a handler does before it reads the body (here a signed-in
//! form's session lookup, held up by another transaction writing the same session row in
//! PostgreSQL, as a concurrent request of the same session would) is the server's time, and is
//! not taken from the client's. Needs `ARANEA_TEST_POSTGRES` (and `psql`, to hold the row).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aranea_server::ServerConfig;

const DEADLINE: Duration = Duration::from_secs(1);
/// How long the other transaction holds the session row: longer than the deadline.
const HELD: Duration = Duration::from_secs(2);

/// Runs `sql` with psql on `url`, returning its unaligned output.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A new database on the `ARANEA_TEST_POSTGRES` server; returns its URL.
fn new_database() -> String {
    let server = std::env::var("ARANEA_TEST_POSTGRES")
        .expect("ARANEA_TEST_POSTGRES must name a PostgreSQL server (scripts/test starts one)");
    let name = format!("aranea_body_clock_{}", std::process::id());
    psql(
        &server,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    psql(&server, &format!("CREATE DATABASE {name}"));
    let (scheme, rest) = server.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    format!("{scheme}://{authority}/{name}")
}

/// Reads from `stream` until `answer` holds `wanted` (or the server closes).
fn read_until(stream: &mut TcpStream, answer: &mut Vec<u8>, wanted: &str) {
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(answer).contains(wanted) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn the_time_the_server_takes_before_it_asks_for_the_body_is_not_the_clients() {
    let database = new_database();
    common::install_review_ui(&database);
    let server = common::start(
        "body-deadline-clock",
        ServerConfig {
            body_read_timeout_secs: DEADLINE.as_secs(),
            ..ServerConfig::default()
        },
    );
    let session = common::sign_in(server.addr);

    // Another transaction writes the session's row and keeps it for HELD: the form's session
    // lookup (an UPDATE of that row) waits for it before the handler reads the body.
    let mut holder = Command::new("psql")
        .args([
            database.as_str(),
            "-XAtq",
            "-c",
            &format!(
                "BEGIN; UPDATE sessions SET last_seen_at = last_seen_at; SELECT pg_sleep({}); COMMIT;",
                HELD.as_secs_f64()
            ),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("psql");
    let waited = Instant::now();
    while psql(
        &database,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
    ) != "1"
    {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the row is not held"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let body = "csrf=not-the-token&classification=A1";
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /ui/items/1/vote HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nCookie: aranea_session={session}\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let sent = Instant::now();
    let mut answer = Vec::new();
    read_until(&mut stream, &mut answer, "\r\n\r\n");
    let asked_after = sent.elapsed();
    let first = String::from_utf8_lossy(&answer).into_owned();
    assert!(first.starts_with("HTTP/1.1 100"), "{first:?}");
    // The server asked for the body only once the lookup was done, past the deadline counted
    // from the head.
    assert!(
        asked_after > DEADLINE + Duration::from_millis(300),
        "asked for the body after {asked_after:?}: the row was not held long enough"
    );
    // Within the deadline counted from the server's asking, not from the head.
    std::thread::sleep(DEADLINE / 2);
    stream.write_all(body.as_bytes()).unwrap();
    read_until(&mut stream, &mut answer, "form token");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let last = answer.split("HTTP/1.1 ").last().unwrap_or_default();
    // The handler read the whole body and judged it: a wrong form token, not a late body.
    assert!(
        last.starts_with("403") && answer.contains("missing or wrong form token"),
        "{answer:?}"
    );
    assert!(holder.wait().unwrap().success());
    drop_database(&database);
}

/// Removes the test's database (closing the review service's connections to it).
fn drop_database(url: &str) {
    let (server, name) = url.rsplit_once('/').unwrap();
    psql(
        &format!("{server}/postgres"),
        &format!("DROP DATABASE {name} WITH (FORCE)"),
    );
}
