//! The `aranea` binary and other programs run as child processes by the tests that drive a
//! real `aranea serve` (Shield SDKs, Schemathesis). Included with
//! `#[path = "common/process.rs"] mod process;`, so a test takes only this.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_aranea");

/// Runs `aranea --data DATA --db DB ARGS…`, which must succeed; returns its stdout.
pub fn aranea_ok(data: &Path, db: &str, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["--db", db])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "aranea {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Starts `aranea serve` on a free loopback port with `config`; returns the child and the
/// base URL it printed (`http://127.0.0.1:PORT`).
pub fn serve(data: &Path, db: &str, config: &Path) -> (Child, String) {
    let mut server = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["--db", db, "--config", config.to_str().unwrap()])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (server, url)
}

/// Runs `command` to completion, killing it after `limit`; returns (success, its stdout then
/// its stderr).
pub fn run_bounded(command: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    // Read both pipes while it runs: a child writing more than a pipe holds would otherwise
    // wait for a reader until it is killed.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = format!("{}{}", stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(status) => (status.success(), text),
        None => (false, format!("{text}\nkilled after {limit:?}")),
    }
}

/// `ARGS --format xml`, run by `run`, must be refused by the argument parser (exit status 2,
/// naming the value and the three formats) and print nothing on stdout.
pub fn assert_bad_format_refused(args: &[&str], run: impl FnOnce(&[&str]) -> Output) {
    let args: Vec<&str> = args.iter().copied().chain(["--format", "xml"]).collect();
    let refused = run(&args);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains("invalid value 'xml' for '--format <FORMAT>'")
            && stderr.contains("[possible values: text, json, jsonl]"),
        "{args:?}: {stderr}"
    );
    assert!(refused.stdout.is_empty(), "{args:?}");
}

/// One HTTP/1.1 request (`METHOD PATH`, a form body when not empty): status and whole answer.
pub fn http_request(addr: &str, line: &str, form: &str) -> (u16, String) {
    http_call(addr, line, "", "application/x-www-form-urlencoded", form)
}

/// One HTTP/1.1 request (`METHOD PATH`), with `headers` (each line ending in `\r\n`) and a
/// body of `content_type` when not empty: status and whole answer.
pub fn http_call(
    addr: &str,
    line: &str,
    headers: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let content = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    write!(
        stream,
        "{line} HTTP/1.1\r\nHost: aranea\r\nConnection: close\r\n{headers}{content}\r\n{body}"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}
