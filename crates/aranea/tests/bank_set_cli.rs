//! `aranea bank set` end to end: the built binary changes a bank's settings in a temporary data
//! directory, refuses bad values (and hostile arguments) leaving the bank as it was, and a
//! running `aranea serve` matches with the new settings without a restart.

#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn aranea(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(data)
        .arg("bank")
        .args(args)
        .output()
        .expect("run aranea")
}

fn ok(data: &Path, args: &[&str]) -> String {
    let output = aranea(data, args);
    assert!(
        output.status.success(),
        "aranea bank {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `aranea bank ARGS`, which must fail with exit code 2; returns its standard error.
fn refused(data: &Path, args: &[&str]) -> String {
    let output = aranea(data, args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "aranea bank {args:?} was not refused: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(output.stdout.is_empty(), "{args:?} printed a bank");
    String::from_utf8(output.stderr).unwrap()
}

fn show(data: &Path, bank: &str) -> Value {
    serde_json::from_str(&ok(data, &["show", bank, "--format", "json"])).unwrap()
}

/// The PDQ of a corpus photo, as 64 hex digits.
fn pdq_hex(photo: &str) -> String {
    let bytes = std::fs::read(Path::new(CORPUS).join(photo)).unwrap();
    aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default())
        .unwrap()
        .pdq
        .unwrap()
        .hash
        .to_hex()
}

/// `hex` with all the bits of its first `digits` hex digits flipped: at distance 4 × `digits`.
fn flipped(hex: &str, digits: usize) -> String {
    hex.chars()
        .enumerate()
        .map(|(i, c)| {
            let value = c.to_digit(16).unwrap();
            let value = if i < digits { value ^ 0xf } else { value };
            char::from_digit(value, 16).unwrap()
        })
        .collect()
}

/// Hits of `bank match BANK --pdq HASH`.
fn pdq_hits(data: &Path, bank: &str, hash: &str) -> Vec<Value> {
    let line = ok(data, &["match", bank, "--pdq", hash]);
    let result: Value = serde_json::from_str(&line).unwrap();
    result["hits"].as_array().unwrap().clone()
}

#[test]
fn set_changes_only_the_settings_given_and_matching_follows_them() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(
        d,
        &[
            "create",
            "hotline",
            "--source",
            "hotline:ca",
            "--classification",
            "csam",
            "--description",
            "Shared weekly.",
        ],
    );
    let entry = "0123456789abcdef".repeat(4);
    let list = d.join("list.txt");
    std::fs::write(&list, format!("{entry}\n")).unwrap();
    ok(
        d,
        &[
            "import",
            "hotline",
            list.to_str().unwrap(),
            "--format",
            "hex",
            "--signal-type",
            "pdq",
        ],
    );
    // 12 bits from the entry: a hit at the default threshold (31).
    let near = flipped(&entry, 3);
    assert_eq!(pdq_hits(d, "hotline", &near)[0]["distance"], 12);

    let printed: Value = serde_json::from_str(&ok(
        d,
        &["set", "hotline", "--threshold", "11", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(printed["pdq_threshold"], 11);
    assert_eq!(printed["classification"], "csam");
    assert_eq!(printed["source"], "hotline:ca");
    assert_eq!(printed["description"], "Shared weekly.");
    assert_eq!(printed["kind"], "ordinary");
    assert_eq!(printed["enabled"], true);
    assert_eq!(printed["entries"]["enabled"], 1);
    assert_eq!(
        printed,
        show(d, "hotline"),
        "set prints the bank as show does"
    );
    assert!(
        pdq_hits(d, "hotline", &near).is_empty(),
        "threshold 11 still matched at distance 12"
    );

    // Text, as `show` prints it; several settings at once.
    let text = ok(
        d,
        &[
            "set",
            "hotline",
            "--threshold",
            "12",
            "--classification",
            "sexual-exploitation",
            "--source",
            "iwf",
            "--description",
            "Two\nlines.",
        ],
    );
    for line in [
        "pdq_threshold: 12",
        "classification: sexual-exploitation",
        "source: iwf",
        "description: Two\n  lines.",
        "kind: ordinary",
    ] {
        assert!(text.contains(line), "{line:?} not in {text}");
    }
    let hits = pdq_hits(d, "hotline", &near);
    assert_eq!(hits.len(), 1, "threshold 12 did not match at distance 12");
    assert_eq!(hits[0]["classification"], "sexual-exploitation");

    // An allow-list bank's hits suppress instead of being reported.
    let allowing = ok(
        d,
        &[
            "set",
            "hotline",
            "--allow-list",
            "true",
            "--format",
            "jsonl",
        ],
    );
    let allowing: Value = serde_json::from_str(&allowing).unwrap();
    assert_eq!(allowing["kind"], "allow-list");
    assert_eq!(allowing["pdq_threshold"], 12, "other settings stay");
    let line = ok(d, &["match", "hotline", "--pdq", &near]);
    let result: Value = serde_json::from_str(&line).unwrap();
    assert!(result["hits"].as_array().unwrap().is_empty(), "{result}");
    assert_eq!(result["allowed_by"][0]["distance"], 12, "{result}");
    let back = ok(d, &["set", "hotline", "--allow-list", "false"]);
    assert!(back.contains("kind: ordinary"), "{back}");
    assert_eq!(pdq_hits(d, "hotline", &near).len(), 1);
}

#[test]
fn bad_values_and_hostile_arguments_are_refused_and_change_nothing() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(
        d,
        &[
            "create",
            "hotline",
            "--classification",
            "csam",
            "--threshold",
            "40",
        ],
    );
    let before = show(d, "hotline");

    let nothing = refused(d, &["set", "hotline"]);
    assert!(
        nothing.contains("--threshold") && nothing.contains("--allow-list"),
        "{nothing}"
    );
    let format_only = refused(d, &["set", "hotline", "--format", "json"]);
    assert!(format_only.contains("--threshold"), "{format_only}");

    for name in ["nosuch", "all", "../hotline", "hotline\n", "-", ""] {
        let error = refused(d, &["set", "--threshold", "5", "--", name]);
        assert!(
            error.contains("no bank") || error.contains("No bank") || error.contains(name),
            "{name:?}: {error}"
        );
    }

    let too_high = refused(d, &["set", "hotline", "--threshold", "129"]);
    assert!(too_high.contains("129"), "{too_high}");
    for threshold in ["-1", "4294967296", "12.5", "", "0x10"] {
        refused(d, &["set", "hotline", "--threshold", threshold]);
    }
    for allow in ["maybe", "1", "yes", ""] {
        refused(d, &["set", "hotline", "--allow-list", allow]);
    }
    refused(d, &["set", "hotline", "--allow-list"]);
    refused(d, &["set", "hotline", "--name", "renamed"]);
    refused(d, &["set", "hotline", "--enabled", "false"]);

    let long_source = "s".repeat(501);
    let error = refused(d, &["set", "hotline", "--source", &long_source]);
    assert!(error.contains("source"), "{error}");
    for hostile in ["a\nb", "a\rb", "\u{1b}[2Jcleared", "a\u{85}b"] {
        let error = refused(d, &["set", "hotline", "--source", hostile]);
        assert!(error.contains("source"), "{hostile:?}: {error}");
    }
    let error = refused(
        d,
        &["set", "hotline", "--description", "\u{1b}]0;title\u{7}"],
    );
    assert!(error.contains("description"), "{error}");
    // One bad setting among good ones: none of them is taken.
    let error = refused(
        d,
        &[
            "set",
            "hotline",
            "--threshold",
            "10",
            "--classification",
            "other",
            "--source",
            "bad\u{7f}",
        ],
    );
    assert!(error.contains("source"), "{error}");

    assert_eq!(
        show(d, "hotline"),
        before,
        "a refused change changed the bank"
    );
}

/// Standard base64 (the Shield API's Basic credentials).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `POST /v1/media/` with `body`; the answer's JSON.
fn scan(addr: &str, credential: &str, body: &[u8]) -> Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /v1/media/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        base64(credential.as_bytes()),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let (_, json) = reply.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// Scans `photo` until `done` holds of the answer or 20 s pass; returns the last answer.
fn scan_until(addr: &str, credential: &str, photo: &[u8], done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = scan(addr, credential, photo);
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the server when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_running_server_matches_with_the_settings_set_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    let photo = std::fs::read(Path::new(CORPUS).join("img-0003.jpg")).unwrap();
    // The bank holds the photo's PDQ 12 bits away: a near match at the default threshold.
    let list = dir.path().join("list.txt");
    std::fs::write(&list, format!("{}\n", flipped(&pdq_hex("img-0003.jpg"), 3))).unwrap();
    let cli = |args: &[&str]| process::aranea_ok(&data, &db, args);
    cli(&["bank", "create", "partner", "--classification", "csam"]);
    cli(&[
        "bank",
        "import",
        "partner",
        list.to_str().unwrap(),
        "--format",
        "hex",
        "--signal-type",
        "pdq",
    ]);
    let credential = cli(&["client", "add", "scanner"])
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let config = dir.path().join("aranea.toml");
    std::fs::write(&config, "[server]\nbank_poll_ms = 200\n").unwrap();
    let (server, url) = process::serve(&data, &db, &config);
    let _server = Killed(server);
    let addr = url.trim_start_matches("http://").to_owned();

    let first = scan(&addr, &credential, &photo);
    assert_eq!(first["classification"], "csam", "{first}");
    assert_eq!(first["near_match_details"][0]["distance"], 12, "{first}");

    cli(&["bank", "set", "partner", "--threshold", "11"]);
    let started = Instant::now();
    let lowered = scan_until(&addr, &credential, &photo, |a| {
        a["classification"] == "no-known-match"
    });
    assert_eq!(lowered["classification"], "no-known-match", "{lowered}");
    eprintln!("threshold change seen after {:?}", started.elapsed());

    cli(&[
        "bank",
        "set",
        "partner",
        "--threshold",
        "12",
        "--classification",
        "sexual-exploitation",
    ]);
    let relabelled = scan_until(&addr, &credential, &photo, |a| {
        a["classification"] != "no-known-match"
    });
    assert_eq!(
        relabelled["classification"], "harmful-abusive-material",
        "{relabelled}"
    );
    assert_eq!(
        relabelled["near_match_details"][0]["classification"],
        "harmful-abusive-material"
    );
}
