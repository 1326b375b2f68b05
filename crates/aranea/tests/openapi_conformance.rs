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

#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use process::{aranea_ok as aranea, run_bounded, serve};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

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
    let (server, url) = serve(&data, &db, &config);
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
