//! The official Arachnid Shield SDKs (PyPI `arachnid-shield-sdk`, crate `arachnid-shield`)
//! against a real `aranea serve` over a socket: every endpoint, known, near, unknown,
//! allow-listed and per-threshold media, URLs (allowed and refused), bad credentials,
//! oversized and malformed bodies; then a bank change and a revocation made by other
//! processes while the server runs, which must take effect within seconds.
//!
//! The SDK scripts live in tests/shield_sdk/ (check.py; rust/, a separate workspace).

#[path = "common/process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use process::{aranea_ok as aranea, run_bounded, serve};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/shield_sdk");
/// Largest media body the test server accepts: BIG is over it.
const MAX_MEDIA: usize = 400_000;

fn photo(n: usize) -> PathBuf {
    Path::new(CORPUS).join(format!("img-{n:04}.jpg"))
}

/// A re-encoded, slightly smaller copy: different bytes, nearby PDQ.
fn near_copy(source: &Path, out: &Path) {
    let image = image::open(source).unwrap();
    let (w, h) = (image.width() * 9 / 10, image.height() * 9 / 10);
    let smaller = image.resize_exact(w, h, image::imageops::FilterType::Triangle);
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 70);
    smaller.to_rgb8().write_with_encoder(encoder).unwrap();
    std::fs::write(out, bytes).unwrap();
}

fn hashes(path: &Path) -> aranea_hash::MediaHashes {
    aranea_hash::hash_media(&std::fs::read(path).unwrap(), &Default::default()).unwrap()
}

fn jsonl_rows(rows: &[(&str, String)]) -> String {
    rows.iter()
        .map(|(t, v)| format!("{{\"signal_type\":\"{t}\",\"signal_value\":\"{v}\"}}\n"))
        .collect()
}

/// Serves one file over plain HTTP on loopback, forever (a thread per test).
fn serve_file(bytes: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&bytes);
        }
    });
    format!("http://{addr}/photo.jpg")
}

/// A running `aranea serve` with banks, a client and the SDKs' inputs.
struct Fixture {
    dir: PathBuf,
    server: Child,
    url: String,
    user: String,
    pass: String,
    env: Vec<(String, String)>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    fn start(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("aranea-shield-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = |n: &str| dir.join(n);
        let (known, allowed, harmful, strict, unknown, late) =
            (photo(1), photo(2), photo(3), photo(4), photo(5), photo(6));
        near_copy(&known, &file("near.jpg"));
        near_copy(&strict, &file("strict-near.jpg"));
        let known_bytes = std::fs::read(&known).unwrap();
        // Cut inside the headers: the JPEG decoder tolerates a missing tail of scan data (gray
        // fill), so only a cut before any image data is certain to be refused.
        std::fs::write(file("truncated.jpg"), &known_bytes[..300]).unwrap();
        let big: Vec<u8> = known_bytes
            .iter()
            .copied()
            .cycle()
            .take(MAX_MEDIA + 100_000)
            .collect();
        std::fs::write(file("big.jpg"), big).unwrap();

        let pdq = |p: &Path| hashes(p).pdq.unwrap().hash.to_hex();
        let md5 = |p: &Path| hashes(p).md5_hex();
        std::fs::write(
            file("known.jsonl"),
            jsonl_rows(&[
                ("pdq", pdq(&known)),
                ("md5", md5(&known)),
                ("pdq", pdq(&allowed)),
            ]),
        )
        .unwrap();
        std::fs::write(file("harmful.jsonl"), jsonl_rows(&[("md5", md5(&harmful))])).unwrap();
        std::fs::write(file("strict.jsonl"), jsonl_rows(&[("pdq", pdq(&strict))])).unwrap();
        std::fs::write(file("stock.jsonl"), jsonl_rows(&[("pdq", pdq(&allowed))])).unwrap();
        std::fs::write(file("late.jsonl"), jsonl_rows(&[("md5", md5(&late))])).unwrap();

        let data = file("data");
        let db = format!("sqlite://{}", file("aranea.db").display());
        let cli = |args: &[&str]| aranea(&data, &db, args);
        cli(&[
            "bank",
            "create",
            "known",
            "--source",
            "test",
            "--classification",
            "csam",
        ]);
        cli(&[
            "bank",
            "create",
            "harmful",
            "--source",
            "test",
            "--classification",
            "harmful-abusive-material",
        ]);
        cli(&[
            "bank",
            "create",
            "strict",
            "--source",
            "test",
            "--classification",
            "csam",
            "--threshold",
            "0",
        ]);
        cli(&[
            "bank",
            "create",
            "stock",
            "--source",
            "test",
            "--classification",
            "benign",
            "--allow-list",
        ]);
        for bank in ["known", "harmful", "strict", "stock"] {
            let list = file(&format!("{bank}.jsonl"));
            cli(&[
                "bank",
                "import",
                bank,
                list.to_str().unwrap(),
                "--format",
                "jsonl",
            ]);
        }
        let added = cli(&["client", "add", "sdk-tester"]);
        let (user, pass) = added.lines().last().unwrap().split_once(':').unwrap();
        let config = file("aranea.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nmax_media_bytes = {MAX_MEDIA}\nbank_poll_ms = 200\nclient_refresh_ms = 300\n\
                 url_allow_cidrs = [\"127.0.0.1/32\"]\nurl_timeout_secs = 5\n"
            ),
        )
        .unwrap();
        let (server, url) = serve(&data, &db, &config);
        let path = |p: &Path| p.to_str().unwrap().to_owned();
        let env = vec![
            ("ARACHNID_SHIELD_URL".to_owned(), format!("{url}/")),
            ("SHIELD_USER".to_owned(), user.to_owned()),
            ("SHIELD_PASS".to_owned(), pass.to_owned()),
            ("KNOWN".to_owned(), path(&known)),
            ("NEAR".to_owned(), path(&file("near.jpg"))),
            ("UNKNOWN".to_owned(), path(&unknown)),
            ("ALLOWED".to_owned(), path(&allowed)),
            ("HARMFUL".to_owned(), path(&harmful)),
            ("STRICT".to_owned(), path(&strict)),
            ("STRICT_NEAR".to_owned(), path(&file("strict-near.jpg"))),
            ("BIG".to_owned(), path(&file("big.jpg"))),
            ("TRUNCATED".to_owned(), path(&file("truncated.jpg"))),
            ("KNOWN_PDQ_HEX".to_owned(), pdq(&known)),
            ("KNOWN_URL".to_owned(), serve_file(known_bytes)),
            (
                "FORBIDDEN_URL".to_owned(),
                "http://169.254.169.254/latest/meta-data".to_owned(),
            ),
            ("LATE".to_owned(), path(&late)),
        ];
        Fixture {
            dir,
            server,
            url,
            user: user.to_owned(),
            pass: pass.to_owned(),
            env,
        }
    }

    fn python(&self, args: &[&str]) {
        let mut command = Command::new("python3");
        command
            .arg(format!("{SDK_DIR}/check.py"))
            .args(args)
            .envs(self.env.iter().cloned());
        let (ok, output) = run_bounded(&mut command, Duration::from_secs(60));
        assert!(
            ok,
            "the Python SDK check {args:?} failed (scripts/test installs arachnid-shield-sdk):\n{output}"
        );
        println!("{output}");
    }
}

#[test]
fn python_sdk_passes_against_a_real_server_and_sees_changes_within_seconds() {
    let fixture = Fixture::start("python");
    assert!(fixture.url.starts_with("http://127.0.0.1:"));
    fixture.python(&["all"]);

    // Another process changes a bank while the server runs.
    let late = fixture
        .env
        .iter()
        .find(|(k, _)| k == "LATE")
        .unwrap()
        .1
        .clone();
    let before = Instant::now();
    let db = format!("sqlite://{}", fixture.dir.join("aranea.db").display());
    let list = fixture.dir.join("late.jsonl");
    aranea(
        &fixture.dir.join("data"),
        &db,
        &[
            "bank",
            "import",
            "known",
            list.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
    );
    fixture.python(&["wait-match", &late]);
    println!("bank change visible after {:?}", before.elapsed());

    aranea(
        &fixture.dir.join("data"),
        &db,
        &["client", "revoke", &fixture.user],
    );
    fixture.python(&["wait-refused"]);
    assert!(!fixture.pass.is_empty());
}

#[test]
fn rust_sdk_passes_against_a_real_server() {
    let fixture = Fixture::start("rust");
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/shield-sdk-rust");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The SDK reads ARACHNID_SHIELD_URL at compile time: only it and the checker rebuild.
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(format!("{SDK_DIR}/rust/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target)
        .env("ARACHNID_SHIELD_URL", &fixture.url);
    let (built, output) = run_bounded(&mut build, Duration::from_secs(900));
    assert!(built, "building the Rust SDK checker failed:\n{output}");
    let mut check = Command::new(format!("{target}/debug/shield-sdk-check"));
    check.envs(fixture.env.iter().cloned());
    let (ok, output) = run_bounded(&mut check, Duration::from_secs(60));
    assert!(ok, "the Rust SDK check failed:\n{output}");
    assert!(output.contains("all checks passed"), "{output}");
    println!("{output}");
}
