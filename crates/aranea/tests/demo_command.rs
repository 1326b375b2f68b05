//! `aranea demo --for SECONDS` end to end: the simulated web, the known bank, the crawl and the
//! server in one process; it must serve while it runs, find matches, then exit cleanly and leave
//! its database behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_crawls_matches_serves_and_exits_cleanly() {
    let dir = std::env::temp_dir().join(format!("aranea-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(&dir)
        .args(["demo", "--listen", "127.0.0.1:0", "--for", "40"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let mut addr = None;
    while addr.is_none() {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "demo ended early:\n{printed}"
        );
        printed.push_str(&line);
        addr = line
            .trim()
            .strip_prefix("serving on http://")
            .map(str::to_owned);
    }
    let addr = addr.unwrap();
    // While it runs, the server answers.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "demo did not exit after --for"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    stdout.read_to_string(&mut printed).unwrap();
    assert!(status.success(), "{printed}");
    assert!(printed.contains("bank simweb-known:"), "{printed}");
    for hotline in ["demo-ca", "demo-nl"] {
        for n in 1..=3 {
            let account = format!("hotline {hotline}: analyst {hotline}-analyst{n} password ");
            assert!(printed.contains(&account), "no {account:?} in:\n{printed}");
        }
    }
    let summary = printed
        .lines()
        .find(|l| l.starts_with("stopped after"))
        .unwrap_or_else(|| panic!("{printed}"));
    let number = |label: &str| -> u64 {
        summary
            .split(", ")
            .find(|part| part.ends_with(label) || part.contains(&format!(" {label}")))
            .and_then(|part| part.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or_else(|| panic!("no {label} in {summary}"))
    };
    assert!(number("media hashed") > 0, "{summary}");
    assert!(
        number("matches") > 0,
        "the demo found no known image: {summary}"
    );
    assert!(
        dir.join("aranea.db").exists(),
        "the database stays for inspection"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
