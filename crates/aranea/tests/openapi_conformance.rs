//! Schemathesis (PyPI `schemathesis`, installed by scripts/test) against a real `aranea serve`:
//! it reads `/api/v1/openapi.json` and sends every operation hundreds of generated requests,
//! valid and hostile (wrong types, out-of-range numbers, over-long strings, missing fields,
//! no or wrong credentials, unsupported methods, sequences of calls linked by their ids),
//! and checks each answer: never a 5xx; only status codes, content types, headers and bodies
//! the document declares; a request the document forbids is refused; a resource just created
//! can be read back. So the document cannot promise what the server does not do, and no
//! endpoint fails on input it should refuse.
//!
//! Left out: the check that every request the document allows is accepted, since whether
//! one is depends on data no schema states (a URL that resolves, a hash list with a header
//! line, a bank that exists).

use std::io::Read;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aranea");
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn aranea(data: &Path, db: &str, args: &[&str]) -> String {
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

/// Runs `command` to completion, killing it after `limit`; returns (success, its output).
fn run_bounded(command: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test installs schemathesis)");
    // Read both pipes while it runs, so a full pipe cannot stall it.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
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
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) => (status.success(), text),
        None => (false, format!("{text}\nkilled after {limit:?}")),
    }
}

struct Served {
    server: Child,
    dir: std::path::PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server with a bank of two entries, a report and an API client of every scope; returns
/// it, its base URL and the client's `NAME:SECRET`.
fn serve_with_data() -> (Served, String, String) {
    let dir = std::env::temp_dir().join(format!("aranea-openapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let db = format!("sqlite://{}", dir.join("aranea.db").display());
    aranea(
        &data,
        &db,
        &[
            "bank",
            "create",
            "known",
            "--source",
            "test",
            "--classification",
            "csam",
        ],
    );
    let photos = [1, 2].map(|n| Path::new(CORPUS).join(format!("img-{n:04}.jpg")));
    let list: String = photos
        .iter()
        .map(|photo| {
            let bytes = std::fs::read(photo).unwrap();
            let hashes = aranea_hash::hash_media(&bytes, &Default::default()).unwrap();
            format!(
                "{{\"signal_type\":\"pdq\",\"signal_value\":\"{}\"}}\n",
                hashes.pdq.unwrap().hash.to_hex()
            )
        })
        .collect();
    let list_file = dir.join("known.jsonl");
    std::fs::write(&list_file, list).unwrap();
    aranea(
        &data,
        &db,
        &[
            "bank",
            "import",
            "known",
            list_file.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
    );
    aranea(
        &data,
        &db,
        &["report", "add", "http://reported.example/page.html"],
    );
    let added = aranea(
        &data,
        &db,
        &["client", "add", "schemathesis", "--all-scopes"],
    );
    let credentials = added.lines().last().unwrap().to_owned();
    let config = dir.join("aranea.toml");
    // Generated URLs are fetched: a short timeout bounds the ones whose names do not resolve.
    std::fs::write(
        &config,
        "[server]\nmax_media_bytes = 1000000\nurl_timeout_secs = 2\n",
    )
    .unwrap();
    let mut server = Command::new(BIN)
        .arg("--data")
        .arg(&data)
        .args(["--db", &db, "--config", config.to_str().unwrap()])
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
    (Served { server, dir }, url, credentials)
}

#[test]
fn schemathesis_finds_no_answer_the_openapi_document_does_not_allow() {
    let (served, url, credentials) = serve_with_data();
    let started = Instant::now();
    let mut schemathesis = Command::new("python3");
    schemathesis
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{url}/api/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {credentials}")])
        .args(["--checks", "all"])
        .args(["--exclude-checks", "positive_data_acceptance"])
        // A fixed seed: a failure can be replayed, and a run passes or fails the same way.
        .args(["--seed", "1", "--max-examples", "40"])
        // Not --max-time: with it, fuzzing goes on until the time is up.
        .args(["--request-timeout", "20"])
        .args(["--generation-database", "none", "--no-color"])
        .current_dir(&served.dir);
    let (passed, text) = run_bounded(&mut schemathesis, Duration::from_secs(300));
    println!("{text}");
    assert!(
        passed,
        "schemathesis found answers the OpenAPI document does not allow (scripts/test installs schemathesis):\n{text}"
    );
    // A run that tested nothing would also exit 0.
    let tested = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert!(
        tested.is_some_and(|n| n >= 16),
        "schemathesis tested fewer operations than the document has:\n{text}"
    );
    assert!(
        text.contains("generated") && !text.contains(" 0 generated"),
        "no test cases generated:\n{text}"
    );
    println!("schemathesis ran in {:?}", started.elapsed());
}
