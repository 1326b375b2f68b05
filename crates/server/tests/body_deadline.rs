//! The body deadline over real sockets: a client that sends its headers and then dribbles its
//! body, one byte at a time faster than any idle timeout would notice, is answered 408 in the
//! surface's own error format and disconnected once `body_read_timeout_secs` have passed; a
//! slow but honest client within the deadline is served.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aranea_server::ServerConfig;
use serde_json::json;

/// The body deadline of the dribbling test's server.
const DEADLINE: Duration = Duration::from_secs(1);
/// How often the dribbling client sends one byte: well inside any per-frame idle timeout.
const DRIP: Duration = Duration::from_millis(150);
/// How long the dribbling client keeps going at most (the test stays bounded if the server
/// never answers).
const DRIP_FOR: Duration = Duration::from_secs(8);

fn start(name: &str, deadline: Duration) -> common::Server {
    install_ui(name);
    common::start(
        name,
        ServerConfig {
            body_read_timeout_secs: deadline.as_secs(),
            ..ServerConfig::default()
        },
    )
}

/// The web UI (a process-wide setting, read when a server builds its routes), with a review
/// service on a database of its own, holding one hotline and its analyst [`common::ANALYST`].
fn install_ui(name: &str) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // The review service lives as long as the process, so its database cannot be
        // removed when a test ends: it goes under the target directory's scratch space,
        // not the system's temporary directory, which it would otherwise litter.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "aranea-server-{name}-review-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        common::install_review_ui(&format!("sqlite://{}", dir.join("review.db").display()));
    });
}

/// What the dribbling client saw: the answer's bytes, whether the server closed the
/// connection, and when (from the end of the headers).
struct Dribbled {
    answer: String,
    closed_by_server: bool,
    after: Duration,
}

/// Sends `head` (which declares a body of 1,000 bytes), then one byte of the body every
/// [`DRIP`] until the server answers and closes, or [`DRIP_FOR`] has passed.
fn dribble(addr: SocketAddr, head: &str) -> Dribbled {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let answered = Arc::new(AtomicBool::new(false));
    let mut writer = stream.try_clone().unwrap();
    let stop = Arc::clone(&answered);
    let dripping = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) && started.elapsed() < DRIP_FOR {
            if writer.write_all(b" ").is_err() {
                break;
            }
            std::thread::sleep(DRIP);
        }
    });
    stream
        .set_read_timeout(Some(DRIP_FOR + Duration::from_secs(2)))
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    // Ends at the server's close (EOF, or a reset), not at the read timeout.
    let closed_by_server = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let after = started.elapsed();
    answered.store(true, Ordering::Relaxed);
    dripping.join().unwrap();
    Dribbled {
        answer: String::from_utf8_lossy(&answer).into_owned(),
        closed_by_server,
        after,
    }
}

fn head(path: &str, authorization: Option<&str>, content_type: &str) -> String {
    use base64::Engine;
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n");
    if let Some(credentials) = authorization {
        let token = base64::engine::general_purpose::STANDARD.encode(credentials);
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    head.push_str("Content-Length: 1000\r\n\r\n");
    head
}

/// The head of a signed-in form's POST (a browser's, with the session cookie; the CSRF token
/// would be in the body, which never arrives whole).
fn form_head(path: &str, session: &str) -> String {
    head(path, None, "application/x-www-form-urlencoded").replace(
        "Content-Length:",
        &format!("Cookie: aranea_session={session}\r\nContent-Length:"),
    )
}

/// Every POST route of the web UI's router (read from its source, so a form added there is
/// tested here too), with a path parameter filled in: a review item or hotline id, a media
/// hash. None needs to exist: the body is read before the handler looks anything up.
fn ui_post_routes() -> Vec<String> {
    let source = include_str!("../src/ui/mod.rs");
    let routes: Vec<String> = source
        .lines()
        .filter(|line| line.contains(".route(\"/ui/") && line.contains("post("))
        .filter_map(|line| line.split('"').nth(1))
        .map(|path| path.replace("{id}", "1").replace("{sha}", &"0".repeat(64)))
        .collect();
    assert!(routes.len() >= 13, "{routes:?}");
    routes
}

/// Sends `head` (which declares a body of 1,000 bytes) and `part` of the body, then nothing,
/// keeping the connection open, until the server answers and closes or [`DRIP_FOR`] passes.
fn stall(addr: SocketAddr, head: &str, part: &[u8]) -> Dribbled {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(part).unwrap();
    let started = Instant::now();
    stream.set_read_timeout(Some(DRIP_FOR)).unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed_by_server = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    Dribbled {
        answer: String::from_utf8_lossy(&answer).into_owned(),
        closed_by_server,
        after: started.elapsed(),
    }
}

fn assert_timed_out(what: &str, seen: &Dribbled) {
    assert!(
        seen.answer.starts_with("HTTP/1.1 408"),
        "{what}: no 408 after {:?}: {:?}",
        seen.after,
        seen.answer
    );
    assert!(
        seen.answer
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{what}: the 408 does not say the connection closes: {:?}",
        seen.answer
    );
    assert!(
        seen.closed_by_server && seen.after < DEADLINE + Duration::from_secs(3),
        "{what}: the connection was not closed in time ({:?})",
        seen.after
    );
    assert!(
        seen.after >= DEADLINE - Duration::from_millis(100),
        "{what}: answered before the deadline ({:?})",
        seen.after
    );
}

/// The JSON body of an answer (after the blank line ending its headers).
fn json_body(answer: &str) -> serde_json::Value {
    let (_, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no body: {answer:?}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[test]
fn a_client_dribbling_its_body_is_answered_408_and_disconnected_on_every_surface() {
    let server = start("body-deadline-dribble", DEADLINE);
    let shield = server.client("dribbler", &["shield"], None);
    let banks = server.client("bank-dribbler", &["banks"], None);

    let pdq = dribble(
        server.addr,
        &head("/v1/pdq/", Some(&shield), "application/json"),
    );
    assert_timed_out("/v1/pdq/", &pdq);
    let detail = json_body(&pdq.answer)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("did not arrive within 1 s"), "{detail}");

    let media = dribble(
        server.addr,
        &head("/v1/media/", Some(&shield), "image/jpeg"),
    );
    assert_timed_out("/v1/media/", &media);
    assert!(json_body(&media.answer)["detail"].is_string());

    let api = dribble(
        server.addr,
        &head("/api/v1/banks", Some(&banks), "application/json"),
    );
    assert_timed_out("/api/v1/banks", &api);
    assert!(json_body(&api.answer)["detail"].is_string());

    let login = dribble(
        server.addr,
        &head("/ui/login", None, "application/x-www-form-urlencoded"),
    );
    assert_timed_out("/ui/login", &login);
    assert!(
        login.answer.contains("did not arrive within 1 s"),
        "{:?}",
        login.answer
    );

    // The server still serves everyone else.
    let health = common::get(server.addr, "/healthz", None);
    assert_eq!(health.status, 200, "{health:?}");
}

/// Every form an analyst posts once signed in (the review and classification forms, reveal,
/// the account's and the operator's forms, logout) reads its body within the deadline: a
/// dribbled one is answered 408, in plain text, and the connection closed.
#[test]
fn every_signed_in_ui_form_dribbled_is_answered_408_and_disconnected() {
    let server = start("body-deadline-ui-forms", DEADLINE);
    let session = common::sign_in(server.addr);
    for path in ui_post_routes() {
        let seen = dribble(server.addr, &form_head(&path, &session));
        assert_timed_out(&path, &seen);
        assert!(
            seen.answer.contains("the form did not arrive within 1 s"),
            "{path}: {:?}",
            seen.answer
        );
    }
    // The session survived: the analyst's queue is served.
    let queue = common::raw(
        server.addr,
        format!(
            "GET /ui/ HTTP/1.1\r\nHost: test\r\nConnection: close\r\nCookie: aranea_session={session}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(queue.status, 200, "{queue:?}");
}

/// A body that stops mid-way (the client sends part of it and then nothing, its connection
/// open) is answered 408 and disconnected as a dribbled one is: a signed-in form, the login
/// form and an upload of media bytes.
#[test]
fn a_body_that_stops_mid_way_is_answered_408_and_disconnected() {
    let server = start("body-deadline-stalled", DEADLINE);
    let shield = server.client("staller", &["shield"], None);
    let session = common::sign_in(server.addr);

    let vote = stall(
        server.addr,
        &form_head("/ui/items/1/vote", &session),
        b"csrf=0123456789abcdef&classification=A1&",
    );
    assert_timed_out("/ui/items/1/vote", &vote);
    assert!(
        vote.answer.contains("the form did not arrive within 1 s"),
        "{:?}",
        vote.answer
    );

    let login = stall(
        server.addr,
        &head("/ui/login", None, "application/x-www-form-urlencoded"),
        b"username=ana&password=correct+hor",
    );
    assert_timed_out("/ui/login", &login);

    let photo = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/img-0001.jpg"
    ))
    .unwrap();
    let media = stall(
        server.addr,
        &head("/v1/media/", Some(&shield), "image/jpeg"),
        &photo[..500],
    );
    assert_timed_out("/v1/media/", &media);
    let detail = json_body(&media.answer)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("did not arrive within 1 s"), "{detail}");
}

/// A client that sends its body in pieces, slowly but within the deadline, is answered as
/// usual, and its connection is kept for the next request.
#[test]
fn a_slow_client_within_the_deadline_is_served() {
    // Longer than the dribbling test's, so a loaded machine cannot make this one fail.
    let deadline = Duration::from_secs(3);
    let server = start("body-deadline-honest", deadline);
    let shield = server.client("patient", &["shield"], None);
    let body = json!({ "hashes": [] }).to_string();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = head("/v1/pdq/", Some(&shield), "application/json").replace(
        "Content-Length: 1000",
        &format!("Content-Length: {}", body.len()),
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Four pieces over ~1.2 s (longer than the other test's whole deadline), within this one.
    for piece in body.as_bytes().chunks(body.len().div_ceil(4)) {
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(piece).unwrap();
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("scanned_hashes") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // The same connection takes another request, sent whole once the first is older than the
    // deadline: each body has its own deadline, not the connection.
    std::thread::sleep(deadline);
    let second = format!(
        "{}{body}",
        head.replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n")
    );
    stream.write_all(second.as_bytes()).unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest:?}");
}
