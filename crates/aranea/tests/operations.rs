//! The operations surface of a real `aranea serve`, checked from the outside:
//!
//! - `/metrics` after known traffic, read by an independent parser (PyPI `prometheus_client`,
//!   installed by scripts/test; a missing Python or package fails the test): every family
//!   with its HELP and TYPE, no sample twice, request counts per route and status class
//!   exactly as sent, histograms cumulative with `+Inf` equal to `_count`, match outcomes and
//!   the store's values as seeded.
//! - `/readyz` while the database is unreachable (PostgreSQL behind a loopback proxy that the
//!   test cuts, then restores; the shared cluster is never touched) and after it is dropped:
//!   503 within the server's deadline, `/healthz` 200, `/metrics` answering with
//!   `aranea_store_up 0`; ready again once the database is back.
//!
//! The logs are checked in serve_logs.rs.

#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/process.rs"]
mod process;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aranea_store::{
    BankMatch, MediaRecord, NewItem, NewNotice, NewSighting, NewUrl, Priority, ReviewReason, Store,
    UrlSource,
};
use process::{aranea_ok, serve};
use serde_json::Value;

const NOW: i64 = 1_750_000_000_000;

/// A temporary directory and the server running on it, stopped and removed on drop.
struct Served {
    server: Child,
    dir: std::path::PathBuf,
    addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aranea-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(dir: std::path::PathBuf, db: &str) -> Served {
    let config = dir.join("aranea.toml");
    std::fs::write(&config, "").unwrap();
    let (server, url) = serve(&dir.join("data"), db, &config);
    let addr = url.trim_start_matches("http://").parse().unwrap();
    Served { server, dir, addr }
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (one request per connection).

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

fn request(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>, body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n");
    if let Some(credentials) = auth {
        head.push_str(&format!("Authorization: Bearer {credentials}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (headers, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {answer:?}"));
    assert!(
        !headers.to_ascii_lowercase().contains("transfer-encoding"),
        "this client reads only Content-Length bodies: {headers}"
    );
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        headers: headers.to_owned(),
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, None, "")
}

// ---------------------------------------------------------------------------------------
// The Prometheus text, as `prometheus_client` parses it.

#[derive(Debug)]
struct Family {
    name: String,
    kind: String,
    help: String,
    samples: Vec<Sample>,
}

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Prints the families as JSON; values as `repr` text, so `+Inf` survives JSON.
const PARSER: &str = r#"
import json, sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as error:
    sys.exit("prometheus_client is not installed (scripts/test installs it): %s" % error)
families = [
    {"name": f.name, "type": f.type, "help": f.documentation,
     "samples": [{"name": s.name, "labels": s.labels, "value": repr(s.value)} for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
]
json.dump(families, sys.stdout)
"#;

fn parse_exposition(text: &str) -> Vec<Family> {
    let mut python = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("python3 is needed to parse /metrics with prometheus_client: {e}")
        });
    python
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client refused the exposition text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
    parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|family| Family {
            name: family["name"].as_str().unwrap().to_owned(),
            kind: family["type"].as_str().unwrap().to_owned(),
            help: family["help"].as_str().unwrap().to_owned(),
            samples: family["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sample| Sample {
                    name: sample["name"].as_str().unwrap().to_owned(),
                    labels: sample["labels"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect(),
                    value: sample["value"].as_str().unwrap().parse().unwrap(),
                })
                .collect(),
        })
        .collect()
}

/// The families of a scrape, checked for what every scrape must satisfy: each family once,
/// with HELP and a TYPE, no sample twice, every histogram consistent.
struct Scrape {
    families: Vec<Family>,
    text: String,
}

impl Scrape {
    fn of(addr: SocketAddr) -> Scrape {
        let reply = get(addr, "/metrics");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            reply
                .headers
                .to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
            "{}",
            reply.headers
        );
        let families = parse_exposition(&reply.body);
        let scrape = Scrape {
            families,
            text: reply.body,
        };
        scrape.check_conventions();
        scrape
    }

    fn check_conventions(&self) {
        let text = &self.text;
        let mut names = HashSet::new();
        let mut series = HashSet::new();
        for family in &self.families {
            assert!(
                names.insert(&family.name),
                "family {} appears twice (its lines are not together):\n{text}",
                family.name
            );
            assert!(
                !family.help.is_empty(),
                "{} has no HELP:\n{text}",
                family.name
            );
            assert!(
                ["counter", "gauge", "histogram"].contains(&family.kind.as_str()),
                "{} has type {:?}:\n{text}",
                family.name,
                family.kind
            );
            for sample in &family.samples {
                assert!(
                    series.insert((sample.name.clone(), sample.labels.clone())),
                    "sample {} {:?} appears twice:\n{text}",
                    sample.name,
                    sample.labels
                );
                assert!(
                    sample.value.is_finite() || sample.labels.contains_key("le"),
                    "{} {:?} = {}",
                    sample.name,
                    sample.labels,
                    sample.value
                );
                assert!(sample.value >= 0.0, "{} is negative:\n{text}", sample.name);
            }
            if family.kind == "counter" {
                assert!(
                    family
                        .samples
                        .iter()
                        .all(|s| s.name == format!("{}_total", family.name)),
                    "counter {} has samples not named {0}_total:\n{text}",
                    family.name
                );
            }
            if family.kind == "histogram" {
                self.check_histogram(family);
            }
        }
    }

    /// Per label set: buckets cumulative in `le` order, ending with `+Inf` equal to `_count`.
    fn check_histogram(&self, family: &Family) {
        let text = &self.text;
        let mut by_series: BTreeMap<BTreeMap<String, String>, Vec<&Sample>> = BTreeMap::new();
        for sample in &family.samples {
            let mut labels = sample.labels.clone();
            labels.remove("le");
            by_series.entry(labels).or_default().push(sample);
        }
        for (labels, samples) in by_series {
            let value_of = |suffix: &str| {
                let name = format!("{}{suffix}", family.name);
                let found: Vec<f64> = samples
                    .iter()
                    .filter(|s| s.name == name)
                    .map(|s| s.value)
                    .collect();
                assert_eq!(found.len(), 1, "{name} {labels:?}:\n{text}");
                found[0]
            };
            let count = value_of("_count");
            let sum = value_of("_sum");
            let mut buckets: Vec<(f64, f64)> = samples
                .iter()
                .filter(|s| s.name.ends_with("_bucket"))
                .map(|s| (s.labels["le"].parse::<f64>().unwrap(), s.value))
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.len() >= 2,
                "{labels:?} has too few buckets:\n{text}"
            );
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{labels:?}: buckets not cumulative {buckets:?}"
            );
            let last = buckets.last().unwrap();
            assert!(last.0.is_infinite(), "{labels:?}: no +Inf bucket");
            assert_eq!(last.1, count, "{labels:?}: +Inf bucket != _count");
            assert!(
                count > 0.0 && sum >= 0.0,
                "{labels:?}: count {count}, sum {sum}"
            );
        }
    }

    fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name} in:\n{}", self.text))
    }

    fn has(&self, name: &str) -> bool {
        self.families.iter().any(|f| f.name == name)
    }

    /// The one sample of `sample_name` whose labels include `labels` (absent: 0, as for a
    /// counter that has not counted yet).
    fn value(&self, sample_name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(|s| s.name == sample_name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .collect();
        assert!(
            found.len() <= 1,
            "{sample_name} {labels:?} matches {found:?}"
        );
        found.first().copied().unwrap_or(0.0)
    }

    /// Answered requests of a method and route, all status classes.
    fn requests(&self, method: &str, route: &str, class: &str) -> f64 {
        self.value(
            "aranea_http_requests_total",
            &[("method", method), ("route", route), ("status", class)],
        )
    }

    fn assert_kind(&self, name: &str, kind: &str) {
        assert_eq!(self.family(name).kind, kind, "{name}:\n{}", self.text);
    }
}

// ---------------------------------------------------------------------------------------
// Seeding: rows as the crawler and the notice room write them.

/// Two PDQ hashes, far apart, and their base64 (what `/v1/pdq/` takes).
fn known_pdq(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Two media (one sighting matched, both waiting for review), two URLs queued, one notice
/// queued for one open item.
async fn seed_store(store: &Store) {
    let url = |path: &str| {
        NewUrl::new(
            &format!("https://files.example{path}"),
            "https://files.example",
            "files.example",
            UrlSource::Link,
            Priority::Ordinary,
            NOW,
        )
    };
    let urls = store
        .frontier()
        .enqueue_urls(&[url("/a.jpg"), url("/gallery.html")], NOW)
        .await
        .unwrap();
    for seed in [1u8, 2] {
        let media = MediaRecord {
            sha256: [seed; 32],
            md5: [seed; 16],
            sha1: [seed; 20],
            pdq: None,
            pdq_quality: None,
            size: 100,
            kind: "jpeg".into(),
            width: Some(10),
            height: Some(10),
        };
        store.media().record(&media, NOW).await.unwrap();
        store
            .review()
            .enqueue(&[seed; 32], None, ReviewReason::OnMatchingPage, 0, NOW)
            .await
            .unwrap();
    }
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: [1; 32],
            url: urls[0].id,
            page: Some(urls[1].id),
            member_path: None,
            seen_at: NOW,
            server_ip: Some("127.10.1.5".into()),
        })
        .await
        .unwrap();
    let hit = BankMatch {
        bank_id: 1,
        bank_name: "known".into(),
        entry_id: 1,
        signal_type: "pdq".into(),
        distance: 3,
        classification: "csam".into(),
    };
    store
        .media()
        .record_matches(sighting, &[hit], NOW)
        .await
        .unwrap();
    let item = NewItem {
        sighting_id: None,
        url: "https://files.example/a.jpg".into(),
        host: "files.example".into(),
        sha256: "01".repeat(32),
        md5: "01".repeat(16),
        sha1: "01".repeat(20),
        pdq: None,
        media_kind: "jpeg".into(),
        classification: "A1".into(),
        first_seen_at: NOW,
        provider_key: "asn:64501".into(),
        provider_name: "Quickhost".into(),
        asn: Some(64501),
        prefix: Some("127.10.1.0/24".into()),
        country: Some("NL".into()),
        hotline: "nl".into(),
        via_cdn: None,
        method: "rdap_abuse".into(),
        confidence_pct: 90,
        contacts: r#"[{"channel":"smtp","address":"abuse@q.example","role":"abuse"}]"#.into(),
        upstream_contact: None,
        notice_due_at: NOW,
        reupload_of: None,
    };
    let item = store
        .notices()
        .open_item(&item, NOW)
        .await
        .unwrap()
        .unwrap();
    let notice = NewNotice {
        report_id: "r-ops".into(),
        idempotency_key: "ops-1".into(),
        provider_key: "asn:64501".into(),
        provider_name: "Quickhost".into(),
        hotline: "nl".into(),
        kind: "initial".into(),
        escalation_step: None,
        via_cdn: None,
        channel: "smtp".into(),
        recipient: "abuse@q.example".into(),
        contacts: "[]".into(),
        contact_index: 0,
        language: "en".into(),
        subject: "Notice".into(),
        body_text: "text".into(),
        body_html: "<p>text</p>".into(),
        xarf: "[]".into(),
        parent_id: None,
        test: false,
    };
    store
        .notices()
        .create_notice(&notice, &[item], NOW)
        .await
        .unwrap();
}

/// A SQLite server with bank `known` (two PDQ entries), the seeded rows and a client of every
/// scope; returns it and the client's `NAME:SECRET`.
fn serve_seeded() -> (Served, String) {
    let dir = scratch("metrics");
    let data = dir.join("data");
    let db = format!("sqlite://{}", dir.join("aranea.db").display());
    let bank = [
        "bank",
        "create",
        "known",
        "--source",
        "test",
        "--classification",
        "csam",
    ];
    aranea_ok(&data, &db, &bank);
    let list: String = [known_pdq(1), known_pdq(2)]
        .iter()
        .map(|pdq| {
            format!(
                "{{\"signal_type\":\"pdq\",\"signal_value\":\"{}\"}}\n",
                hex(pdq)
            )
        })
        .collect();
    let list_file = dir.join("known.jsonl");
    std::fs::write(&list_file, list).unwrap();
    let import = ["bank", "import", "known", list_file.to_str().unwrap()];
    aranea_ok(&data, &db, &[&import[..], &["--format", "jsonl"]].concat());
    let added = aranea_ok(&data, &db, &["client", "add", "ops", "--all-scopes"]);
    let credentials = added.lines().last().unwrap().to_owned();
    postgres::block_on(async {
        let store = Store::open(&db).await.unwrap();
        seed_store(&store).await;
        store.close().await;
    });
    (start(dir, &db), credentials)
}

#[test]
fn metrics_after_known_traffic_parse_as_prometheus_text_with_exact_counts() {
    let (served, credentials) = serve_seeded();
    let addr = served.addr;
    let auth = Some(credentials.as_str());
    let not = |pdq: [u8; 32]| pdq.map(|b| !b);
    let pdq_body = |hashes: &[[u8; 32]]| {
        let list: Vec<String> = hashes
            .iter()
            .map(|h| format!("\"{}\"", base64(h)))
            .collect();
        format!("{{\"hashes\": [{}]}}", list.join(","))
    };

    // /v1/pdq/: one known hash and two unknown ones in two answered requests, then a
    // request without credentials and one with a malformed hash.
    let both = request(
        addr,
        "POST",
        "/v1/pdq/",
        auth,
        &pdq_body(&[known_pdq(1), not(known_pdq(1))]),
    );
    assert_eq!(both.status, 200, "{}", both.body);
    assert!(
        both.body.contains("\"match_type\":\"near\""),
        "{}",
        both.body
    );
    let none = request(
        addr,
        "POST",
        "/v1/pdq/",
        auth,
        &pdq_body(&[not(known_pdq(2))]),
    );
    assert_eq!(none.status, 200, "{}", none.body);
    assert!(!none.body.contains("\"near\""), "{}", none.body);
    let anonymous = request(addr, "POST", "/v1/pdq/", None, &pdq_body(&[known_pdq(2)]));
    assert_eq!(anonymous.status, 401);
    let malformed = request(
        addr,
        "POST",
        "/v1/pdq/",
        auth,
        "{\"hashes\": [\"not base64!\"]}",
    );
    assert_eq!(malformed.status, 400);
    let report = request(
        addr,
        "POST",
        "/api/v1/reports",
        auth,
        "{\"url\": \"https://reported.example/page.html\"}",
    );
    assert_eq!(report.status, 201, "{}", report.body);
    for _ in 0..3 {
        assert_eq!(get(addr, "/healthz").status, 200);
    }
    assert_eq!(get(addr, "/readyz").status, 200);
    assert_eq!(get(addr, "/no/such/page").status, 404);

    // The scrape does not count itself: it is counted once answered.
    let first = Scrape::of(addr);
    let second = Scrape::of(addr);
    assert_eq!(first.requests("GET", "/metrics", "2xx"), 0.0);
    assert_eq!(second.requests("GET", "/metrics", "2xx"), 1.0);

    for scrape in [&first, &second] {
        for (name, kind) in [
            ("aranea_http_requests", "counter"),
            ("aranea_http_request_duration_seconds", "histogram"),
            ("aranea_match_queries", "counter"),
            ("aranea_store_up", "gauge"),
            ("aranea_bank_entries", "gauge"),
            ("aranea_banks", "gauge"),
            ("aranea_reports", "counter"),
            ("aranea_urls_queued", "gauge"),
            ("aranea_fetches", "counter"),
            ("aranea_media_hashed", "counter"),
            ("aranea_sightings", "counter"),
            ("aranea_matches", "counter"),
            ("aranea_review_backlog", "gauge"),
            ("aranea_notices", "gauge"),
            ("aranea_notice_items", "gauge"),
        ] {
            scrape.assert_kind(name, kind);
        }
        let s = scrape;
        assert_eq!(s.requests("POST", "/v1/pdq/", "2xx"), 2.0, "{}", s.text);
        assert_eq!(s.requests("POST", "/v1/pdq/", "4xx"), 2.0, "{}", s.text);
        assert_eq!(s.requests("POST", "/v1/pdq/", "5xx"), 0.0, "{}", s.text);
        assert_eq!(s.requests("POST", "/api/v1/reports", "2xx"), 1.0);
        assert_eq!(s.requests("GET", "/healthz", "2xx"), 3.0);
        assert_eq!(s.requests("GET", "/readyz", "2xx"), 1.0);
        assert_eq!(s.requests("GET", "unmatched", "4xx"), 1.0, "{}", s.text);
        let pdq_labels = [("method", "POST"), ("route", "/v1/pdq/")];
        let duration = "aranea_http_request_duration_seconds";
        assert_eq!(s.value(&format!("{duration}_count"), &pdq_labels), 4.0);
        assert_eq!(
            s.value(
                &format!("{duration}_bucket"),
                &[pdq_labels[0], pdq_labels[1], ("le", "+Inf")]
            ),
            4.0
        );
        // Every answered (method, route) has a histogram whose count is its requests.
        for sample in &s.family("aranea_http_requests").samples {
            let (method, route) = (&sample.labels["method"], &sample.labels["route"]);
            let all: f64 = ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .iter()
                .map(|class| s.requests(method, route, class))
                .sum();
            let labels = [("method", method.as_str()), ("route", route.as_str())];
            assert_eq!(
                s.value(&format!("{duration}_count"), &labels),
                all,
                "{labels:?}"
            );
        }
        let outcome = |o| s.value("aranea_match_queries_total", &[("outcome", o)]);
        assert_eq!(
            (outcome("match"), outcome("no_match")),
            (1.0, 2.0),
            "{}",
            s.text
        );

        assert_eq!(s.value("aranea_store_up", &[]), 1.0);
        assert_eq!(s.value("aranea_banks", &[]), 1.0);
        assert_eq!(s.value("aranea_bank_entries", &[]), 2.0);
        assert_eq!(s.value("aranea_reports_total", &[]), 1.0);
        assert_eq!(s.value("aranea_urls_queued", &[]), 2.0, "{}", s.text);
        assert_eq!(s.value("aranea_fetches_total", &[]), 0.0);
        assert_eq!(s.value("aranea_media_hashed_total", &[]), 2.0);
        assert_eq!(s.value("aranea_sightings_total", &[]), 1.0);
        assert_eq!(s.value("aranea_matches_total", &[]), 1.0);
        assert_eq!(s.value("aranea_review_backlog", &[]), 2.0);
        let notices = s.family("aranea_notices");
        assert_eq!(
            notices.samples.len(),
            7,
            "every state, zeros too: {notices:?}"
        );
        assert_eq!(s.value("aranea_notices", &[("state", "queued")]), 1.0);
        assert_eq!(s.value("aranea_notices", &[("state", "failed")]), 0.0);
        assert_eq!(s.value("aranea_notice_items", &[("state", "open")]), 1.0);
        assert_eq!(s.family("aranea_notice_items").samples.len(), 3);
    }
    // Between the scrapes only the first scrape was answered: every other series is equal.
    for family in &first.families {
        for sample in &family.samples {
            if sample.labels.get("route").map(String::as_str) == Some("/metrics") {
                continue;
            }
            let later = second.value(
                &sample.name,
                &sample
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>(),
            );
            assert_eq!(later, sample.value, "{} {:?}", sample.name, sample.labels);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Readiness when the database goes away.

/// A TCP relay on a loopback port to the test PostgreSQL. Cutting it closes every relayed
/// connection and refuses new ones (the database host gone, as the server sees it);
/// restoring it listens on the same port again. Only this test's connections go through it.
struct Relay {
    port: u16,
    upstream: SocketAddr,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let mut relay = Relay {
            port: 0,
            upstream,
            cut: Arc::new(AtomicBool::new(false)),
            streams: Arc::default(),
            acceptor: None,
        };
        relay.listen();
        relay
    }

    fn listen(&mut self) {
        // std sets SO_REUSEADDR, so the port can be bound again at once after a cut.
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        self.cut.store(false, Ordering::SeqCst);
        let (cut, streams, upstream) = (
            Arc::clone(&self.cut),
            Arc::clone(&self.streams),
            self.upstream,
        );
        self.acceptor = Some(std::thread::spawn(move || {
            while !cut.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut open = streams.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
            // The listener is dropped here: connecting now is refused.
        }));
    }

    fn cut(&mut self) {
        self.cut.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().unwrap();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&mut self) {
        self.listen();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}

fn readyz(addr: SocketAddr) -> (u16, Value, Duration) {
    let started = Instant::now();
    let reply = get(addr, "/readyz");
    let body = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("/readyz is not JSON ({e}): {}", reply.body));
    (reply.status, body, started.elapsed())
}

/// The server's deadlines for the database (2 s for `/readyz`, 5 s for a scrape) and some
/// slack for a loaded machine; the pool alone would wait 10 s for a database that refuses
/// connections.
const READY_WITHIN: Duration = Duration::from_secs(5);
const SCRAPED_WITHIN: Duration = Duration::from_secs(8);

fn assert_unavailable(addr: SocketAddr) -> String {
    let (status, body, waited) = readyz(addr);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default().to_owned();
    assert!(!detail.is_empty(), "{body}");
    assert!(waited < READY_WITHIN, "/readyz took {waited:?}");
    assert_eq!(get(addr, "/healthz").status, 200);
    let started = Instant::now();
    let scrape = Scrape::of(addr);
    assert!(
        started.elapsed() < SCRAPED_WITHIN,
        "/metrics took {:?}",
        started.elapsed()
    );
    assert_eq!(scrape.value("aranea_store_up", &[]), 0.0, "{}", scrape.text);
    for from_the_store in ["aranea_reports", "aranea_review_backlog", "aranea_notices"] {
        assert!(
            !scrape.has(from_the_store),
            "{from_the_store}:\n{}",
            scrape.text
        );
    }
    // What the process knows by itself is still there.
    assert!(
        scrape.requests("GET", "/readyz", "5xx") >= 1.0,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.value("aranea_banks", &[]), 0.0);
    assert!(scrape.has("aranea_bank_entries"));
    detail
}

#[test]
fn readiness_follows_the_database_while_health_and_metrics_keep_answering() {
    const NAME: &str = "aranea_ops_readiness";
    let direct = postgres::fresh_database(NAME);
    let mut url = url::Url::parse(&direct).unwrap();
    let upstream = (url.host_str().unwrap(), url.port().unwrap_or(5432));
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&upstream)
        .unwrap()
        .next()
        .unwrap();
    let mut relay = Relay::start(upstream);
    url.set_port(Some(relay.port)).unwrap();
    let served = start(scratch("readiness"), url.as_str());
    let addr = served.addr;

    let (status, body, _) = readyz(addr);
    assert_eq!(
        (status, &body["status"]),
        (200, &Value::from("ready")),
        "{body}"
    );
    assert!(body["schema_version"].as_i64().unwrap() > 0, "{body}");
    let up = Scrape::of(addr);
    assert_eq!(up.value("aranea_store_up", &[]), 1.0, "{}", up.text);
    assert_eq!(up.value("aranea_reports_total", &[]), 0.0);
    assert!(up.has("aranea_reports") && up.has("aranea_notices"));

    relay.cut();
    let detail = assert_unavailable(addr);
    println!("unreachable: {detail}");

    relay.restore();
    let started = Instant::now();
    loop {
        let (status, body, _) = readyz(addr);
        if status == 200 {
            assert_eq!(body["status"], "ready", "{body}");
            println!(
                "ready again {:?} after the database came back",
                started.elapsed()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready 30 s after the database came back: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let back = Scrape::of(addr);
    assert_eq!(back.value("aranea_store_up", &[]), 1.0, "{}", back.text);
    assert!(back.has("aranea_reports"));

    // Dropped: the database answers that it does not exist, at once.
    postgres::block_on(async {
        use sqlx::Connection;
        let admin = std::env::var("ARANEA_TEST_POSTGRES").unwrap();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {NAME} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    });
    let detail = assert_unavailable(addr);
    assert!(detail.contains("does not exist"), "{detail}");
    drop(relay);
}
