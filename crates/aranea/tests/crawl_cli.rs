//! `aranea crawl` as processes on the small simulated web: three workers on one PostgreSQL
//! fetch every URL once and record what one worker alone records; a worker killed with
//! SIGKILL loses nothing (its hosts are taken over when the lease expires); a SQLite crawl
//! killed at 20 random moments ends with the same sightings and matches as an uninterrupted
//! run. `aranea report add` feeds the crawl.

mod common;
#[path = "common/postgres.rs"]
mod postgres;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aranea_index::import::{ImportInto, ImportOptions, ListFormat};
use aranea_index::{BankSpec, BankStore, Origin, Provenance};
use aranea_simweb::{RunningWorld, SimWeb, scenario};
use sqlx::{Connection, Row};

const DELAY_MS: u64 = 20;

fn world() -> RunningWorld {
    SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap()
}

/// DATA/banks with the world's known photos, and the `[crawl]` config for the world.
fn setup(world: &RunningWorld, data: &Path, lease_ms: u64) -> std::path::PathBuf {
    let mut banks = BankStore::open(&data.join("banks")).unwrap();
    fill_known_bank(world, &mut banks);
    crawl_config(world, data, lease_ms)
}

/// The same known bank in the banks' journal of the PostgreSQL database `db`, where workers
/// on PostgreSQL read their banks.
fn share_known_bank(world: &RunningWorld, data: &Path, db: &str) {
    let home = aranea_server::BankHome::for_database(data, db).unwrap();
    let _lock = home.lock_writers(|| {}).unwrap();
    fill_known_bank(world, &mut home.open_store().unwrap());
}

fn fill_known_bank(world: &RunningWorld, banks: &mut BankStore) {
    let list = world.bank_path();
    let provenance = Provenance {
        added_by: "test".into(),
        added_at: 0,
        origin: Origin::Import {
            file: list.display().to_string(),
        },
    };
    banks
        .import_list(
            ImportInto::NewBank(BankSpec::new("known", "simweb", "csam")),
            &mut || std::fs::File::open(list),
            &ImportOptions::new(ListFormat::HmaCsv),
            provenance,
        )
        .unwrap();
    banks.write_snapshot().unwrap();
}

fn crawl_config(world: &RunningWorld, data: &Path, lease_ms: u64) -> std::path::PathBuf {
    let config = format!(
        "{}total_timeout_ms = 900\nread_timeout_ms = 800\nconnect_timeout_ms = 800\n\
         max_body_bytes = 4194304\nlease_ms = {lease_ms}\nclaim_interval_ms = 100\n\
         min_pdq_quality = 0\n\
         [crawl.politeness]\nmin_delay_ms = {DELAY_MS}\nmax_delay_ms = 200\n\
         crawl_delay_cap_ms = {DELAY_MS}\nerror_backoff_ms = 100\nmax_backoff_ms = 500\n\
         retry_after_cap_ms = 1000\n",
        common::simweb_crawl_table(world)
    );
    let path = data.join("aranea.toml");
    std::fs::write(&path, config).unwrap();
    let seeds: Vec<String> = world
        .world()
        .sites
        .iter()
        .map(|s| world.url(&s.host, "/"))
        .collect();
    std::fs::write(data.join("seeds.txt"), seeds.join("\n")).unwrap();
    path
}

fn crawl(data: &Path, db: &str, worker: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aranea"));
    command
        .args(["--data", data.to_str().unwrap(), "--db", db])
        .args(["--config", data.join("aranea.toml").to_str().unwrap()])
        .args([
            "crawl",
            "--until-idle",
            "--format",
            "json",
            "--worker",
            worker,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn seed(data: &Path, db: &str) {
    let seeds = data.join("seeds.txt");
    let out = crawl(data, db, "seeder")
        .args(["--seeds", seeds.to_str().unwrap(), "--for", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn finish(child: Child) {
    let out = wait_bounded(child, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "crawl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_bounded(mut child: Child, limit: Duration) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("crawl did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// What a crawl recorded: sightings (media, URL, page, member) and matches (media, URL,
/// bank entry), by URL text so two databases compare.
#[derive(Debug, PartialEq, Eq)]
struct Recorded {
    sightings: BTreeSet<String>,
    matches: BTreeSet<String>,
    /// Fetch rows per URL that ended done.
    done_fetches: BTreeMap<String, i64>,
    /// Per URL that ended done, its fetches that got an answer that is not retried. Timeouts,
    /// 429, 503 and 5xx are retried, and how many happen depends on the machine's load, so
    /// they are not counted. A page is fetched again, by design, when a media it links
    /// matched after the page was settled (the crawler's `direct_media`); whether that
    /// happens depends on the order of hosts, so it may count twice in one run only.
    answered_fetches: BTreeMap<String, i64>,
    /// Pages with a match among their sightings.
    matching_pages: BTreeSet<String>,
}

const SIGHTINGS: &str = "SELECT s.media_sha256 AS sha, u.url AS url, p.url AS page, s.member_path AS member \
    FROM sightings s JOIN urls u ON u.id = s.url_id JOIN urls p ON p.id = s.page_url_id";
const MATCHES: &str = "SELECT s.media_sha256 AS sha, u.url AS url, m.entry_id AS entry \
    FROM matches m JOIN sightings s ON s.id = m.sighting_id JOIN urls u ON u.id = s.url_id";
const MATCHING_PAGES: &str = "SELECT DISTINCT p.url AS page FROM matches m \
    JOIN sightings s ON s.id = m.sighting_id JOIN urls p ON p.id = s.page_url_id";
const DONE: &str = "SELECT u.url AS url, COUNT(f.id) AS n, \
    SUM(CASE WHEN f.status IS NOT NULL AND f.status < 500 AND f.status <> 429 THEN 1 ELSE 0 END) AS answered \
    FROM urls u JOIN fetches f ON f.url_id = u.id WHERE u.state = 'done' GROUP BY u.url";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn recorded(db: &str) -> Recorded {
    macro_rules! read {
        ($conn:expr) => {{
            let mut sightings = BTreeSet::new();
            for row in sqlx::query(SIGHTINGS).fetch_all(&mut $conn).await.unwrap() {
                let sha: Vec<u8> = row.get("sha");
                let (url, page, member): (String, String, String) =
                    (row.get("url"), row.get("page"), row.get("member"));
                sightings.insert(format!("{} {url} {page} {member}", hex(&sha)));
            }
            let mut matches = BTreeSet::new();
            for row in sqlx::query(MATCHES).fetch_all(&mut $conn).await.unwrap() {
                let sha: Vec<u8> = row.get("sha");
                let (url, entry): (String, i64) = (row.get("url"), row.get("entry"));
                matches.insert(format!("{} {url} {entry}", hex(&sha)));
            }
            let mut done_fetches = BTreeMap::new();
            let mut answered_fetches = BTreeMap::new();
            for row in sqlx::query(DONE).fetch_all(&mut $conn).await.unwrap() {
                let url: String = row.get("url");
                answered_fetches.insert(url.clone(), row.get::<i64, _>("answered"));
                done_fetches.insert(url, row.get::<i64, _>("n"));
            }
            let mut matching_pages = BTreeSet::new();
            for row in sqlx::query(MATCHING_PAGES)
                .fetch_all(&mut $conn)
                .await
                .unwrap()
            {
                matching_pages.insert(row.get::<String, _>("page"));
            }
            Recorded {
                sightings,
                matches,
                done_fetches,
                answered_fetches,
                matching_pages,
            }
        }};
    }
    if db.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(db).await.unwrap();
        read!(conn)
    } else {
        let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
        read!(conn)
    }
}

/// Sightings and matches equal, or a short account of the difference.
fn same(got: &Recorded, want: &Recorded) {
    for (what, a, b) in [
        ("sightings", &got.sightings, &want.sightings),
        ("matches", &got.matches, &want.matches),
    ] {
        let extra: Vec<_> = a.difference(b).take(5).collect();
        let lost: Vec<_> = b.difference(a).take(5).collect();
        assert!(
            extra.is_empty() && lost.is_empty(),
            "{what}: {} extra, e.g. {extra:?}; {} lost, e.g. {lost:?}",
            a.difference(b).count(),
            b.difference(a).count()
        );
    }
}

fn reference(world: &RunningWorld, lease_ms: u64) -> (tempfile::TempDir, Recorded) {
    let dir = tempfile::tempdir().unwrap();
    setup(world, dir.path(), lease_ms);
    let db = format!("sqlite://{}", dir.path().join("ref.db").display());
    seed(dir.path(), &db);
    finish(crawl(dir.path(), &db, "alone").spawn().unwrap());
    let recorded = postgres::block_on(recorded(&db));
    assert!(
        recorded.matches.len() >= 3,
        "too few matches to mean much: {recorded:?}"
    );
    (dir, recorded)
}

#[test]
fn three_workers_on_postgres_fetch_each_url_once_and_survive_a_kill() {
    let world = world();
    let (dir, alone) = reference(&world, 2_000);
    let data = dir.path();

    // Three workers together: the same facts, each URL fetched once.
    let db = postgres::fresh_database(&format!("aranea_crawl3_{}", std::process::id()));
    share_known_bank(&world, data, &db);
    seed(data, &db);
    let requests_before = world.requests().len();
    let workers: Vec<Child> = (1..=3)
        .map(|n| crawl(data, &db, &format!("w{n}")).spawn().unwrap())
        .collect();
    workers.into_iter().for_each(finish);
    let together = postgres::block_on(recorded(&db));
    same(&together, &alone);
    let mut requests: BTreeMap<(String, u16, String), u32> = BTreeMap::new();
    for r in &world.requests()[requests_before..] {
        *requests
            .entry((r.host.clone(), r.local.port(), r.target.clone()))
            .or_default() += 1;
    }
    // Each URL answered once, but for a matching page fetched again by design.
    let twice: Vec<_> = together
        .answered_fetches
        .iter()
        .filter(|(url, n)| **n != 1 && !(**n == 2 && together.matching_pages.contains(*url)))
        .collect();
    assert!(
        twice.is_empty(),
        "URLs answered more than once across three workers: {twice:?}"
    );
    assert_eq!(
        together.done_fetches.keys().collect::<Vec<_>>(),
        alone.done_fetches.keys().collect::<Vec<_>>(),
        "three workers finished other URLs than one did"
    );
    for (url, n) in &together.done_fetches {
        let parsed = url::Url::parse(url).unwrap();
        let target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let key = (
            parsed.host_str().unwrap().to_owned(),
            parsed.port().unwrap(),
            target,
        );
        let made = i64::from(requests.get(&key).copied().unwrap_or(0));
        assert_eq!(made, *n, "{url}: {made} requests, {n} fetches recorded");
    }

    // One of three killed mid-crawl: the others take its hosts over and nothing is lost.
    let db = postgres::fresh_database(&format!("aranea_crawlkill_{}", std::process::id()));
    share_known_bank(&world, data, &db);
    seed(data, &db);
    let mut workers: Vec<Child> = (1..=3)
        .map(|n| crawl(data, &db, &format!("k{n}")).spawn().unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let mut victim = workers.remove(0);
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    workers.into_iter().for_each(finish);
    let survived = postgres::block_on(recorded(&db));
    same(&survived, &alone);
}

#[test]
fn a_sqlite_crawl_killed_at_twenty_random_moments_records_what_an_uninterrupted_one_does() {
    let world = world();
    let (dir, alone) = reference(&world, 2_000);
    let data = dir.path();
    let db = format!("sqlite://{}", data.join("killed.db").display());
    seed(data, &db);
    let mut state = u64::from(std::process::id()) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut finished_early = 0;
    for _ in 0..20 {
        let mut child = crawl(data, &db, "restarted").spawn().unwrap();
        std::thread::sleep(Duration::from_millis(150 + next() % 600));
        if child.try_wait().unwrap().is_some() {
            finished_early += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
    }
    finish(crawl(data, &db, "restarted").spawn().unwrap());
    let killed = postgres::block_on(recorded(&db));
    eprintln!("{finished_early} of 20 runs had finished before their kill");
    same(&killed, &alone);
}

#[test]
fn a_reported_url_is_crawled_and_its_report_marked() {
    let world = world();
    let dir = tempfile::tempdir().unwrap();
    setup(&world, dir.path(), 2_000);
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let known = world
        .images_at(world.sim_now())
        .into_iter()
        .find(|i| i.known)
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args([
            "--db",
            &db,
            "report",
            "add",
            &known.url,
            "--reporter",
            "tester",
            "--hotline",
            "nl",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wait_bounded(
        crawl(dir.path(), &db, "r").spawn().unwrap(),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["matches"], 1, "{summary}");
    let recorded = postgres::block_on(recorded(&db));
    assert!(
        recorded.matches.iter().any(|m| m.contains(&known.url)),
        "{recorded:?}"
    );
    let status: String = postgres::block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
        sqlx::query("SELECT status FROM reports")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get("status")
    });
    assert_eq!(status, "crawled");
}

#[test]
fn an_unknown_photo_in_an_archive_on_a_matching_page_is_sealed_in_the_vault_for_review() {
    // A known photo served by a site that lets crawlers in, and a corpus photo nobody knows.
    let plain = world();
    let w = plain.world();
    let known = w
        .items
        .iter()
        .find(|i| {
            let site = &w.sites[i.site];
            i.known && !site.https && site.robots == aranea_simweb::scenario::RobotsVariant::Allow
        })
        .unwrap();
    let host = w.sites[known.site].host.clone();
    let unknown_index = (0..w.corpus.len())
        .find(|n| w.known.binary_search(n).is_err() && w.corpus.ext(*n) == "jpg")
        .unwrap();
    let unknown = w.corpus.bytes(unknown_index).unwrap().to_vec();
    let sha = aranea_hash::crypto_hashes(&unknown).sha256;
    let archive = aranea_simweb::archives::zip(&[
        (
            "holiday/IMG_0001.jpg",
            &unknown,
            aranea_simweb::archives::ZipMethod::Deflated,
        ),
        (
            "holiday/README.txt",
            b"nothing to see",
            aranea_simweb::archives::ZipMethod::Stored,
        ),
    ]);
    let page = format!(
        "<html><body><img src=\"{}\"><a href=\"/holiday.zip\">all photos</a></body></html>",
        known.path
    );
    let known_path = known.path.clone();
    drop(plain);
    let world = SimWeb::new(scenario::load("small").unwrap())
        .seed(7)
        .extra_file(&host, "/suspect.html", "text/html", page.into_bytes())
        .extra_file(&host, "/holiday.zip", "application/zip", archive)
        .start()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = setup(&world, dir.path(), 2_000);
    let keys = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["--data", dir.path().to_str().unwrap(), "vault", "keygen"])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&keys.stdout).into_owned();
    let public = keys
        .lines()
        .find_map(|l| l.strip_prefix("public "))
        .unwrap();
    let secret = keys
        .lines()
        .find_map(|l| l.strip_prefix("secret "))
        .unwrap();
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!("[review]\nvault_public_key = \"{public}\"\n"));
    std::fs::write(&config, toml).unwrap();
    let db = format!("sqlite://{}", dir.path().join("v.db").display());
    let suspect = world.url(&host, "/suspect.html");
    let out = wait_bounded(
        crawl(dir.path(), &db, "v")
            .args(["--seeds", &suspect])
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let recorded = postgres::block_on(recorded(&db));
    assert!(
        recorded.matches.iter().any(|m| m.contains(&known_path)),
        "the page matched: {recorded:?}"
    );
    let zip_url = world.url(&host, "/holiday.zip");
    let sighting = format!("{} {zip_url} {suspect} holiday/IMG_0001.jpg", hex(&sha));
    assert!(recorded.sightings.contains(&sighting), "{recorded:?}");
    let (state, sealed) = postgres::block_on(async {
        let store = aranea_store::Store::open(&db).await.unwrap();
        let entry = store.review().get(&sha).await.unwrap();
        let sealed = store.review_desk().vault_ciphertext(&sha).await.unwrap();
        (entry.map(|e| e.state), sealed)
    });
    assert_eq!(state, Some(aranea_store::ReviewState::Pending));
    let sealed = sealed.expect("the member's bytes are in the vault");
    assert!(sealed.starts_with(b"ARV1"), "vault ciphertext");
    let key = aranea_review::VaultSecretKey::from_hex(secret).unwrap();
    let opened = aranea_review::vault::open(&key, &sha, &sealed).unwrap();
    assert_eq!(
        &opened[..],
        &unknown[..],
        "the vault opens to the member's bytes"
    );
}
