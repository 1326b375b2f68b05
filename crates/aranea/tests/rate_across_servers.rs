//! A key's rate (`aranea client add --rate N`) holds for the deployment: two `aranea serve`
//! processes on one database, each sent the key's requests as fast as a client sends them,
//! together let through about N a second, not N each; both keep serving the key (each takes
//! a share), and every refusal is a 429 with `Retry-After`. On SQLite and PostgreSQL.

#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::time::{Duration, Instant};

const RATE: u32 = 10;
/// How long each server is sent the key's requests.
const RUN: Duration = Duration::from_secs(8);
/// The counted stretch starts after the first exchanges of demand (every second) and the
/// bursts of the start.
const SETTLED: Duration = Duration::from_secs(3);

#[test]
fn on_sqlite_a_keys_rate_holds_across_two_servers() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    a_keys_rate_holds_across_two_servers(dir.path(), &db);
}

#[test]
fn on_postgres_a_keys_rate_holds_across_two_servers() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres::fresh_database(&format!("aranea_cli_rate_share_{}", std::process::id()));
    a_keys_rate_holds_across_two_servers(dir.path(), &db);
}

fn a_keys_rate_holds_across_two_servers(dir: &Path, db: &str) {
    let data = dir.join("data");
    let config = dir.join("aranea.toml");
    std::fs::write(&config, "[server]\n").unwrap();
    let added = process::aranea_ok(
        &data,
        db,
        &[
            "client",
            "add",
            "busy",
            "--scope",
            "shield",
            "--rate",
            &RATE.to_string(),
        ],
    );
    let credentials = added.lines().last().unwrap().trim().to_owned();
    let (mut first, first_url) = process::serve(&data, db, &config);
    let (mut second, second_url) = process::serve(&data, db, &config);

    let start = Instant::now();
    let load = |url: String| {
        let credentials = credentials.clone();
        std::thread::spawn(move || {
            let addr = url.trim_start_matches("http://").to_owned();
            let mut answers = Vec::new();
            while start.elapsed() < RUN {
                let at = start.elapsed();
                answers.push((at, scan_nothing(&addr, &credentials)));
                std::thread::sleep(Duration::from_millis(5));
            }
            answers
        })
    };
    let answered = [load(first_url), load(second_url)].map(|t| t.join().unwrap());
    let _ = first.kill();
    let _ = second.kill();
    let _ = first.wait();
    let _ = second.wait();

    let counted = RUN - SETTLED;
    let mut admitted = [0usize; 2];
    let mut asked = [0usize; 2];
    for (server, answers) in answered.iter().enumerate() {
        for (at, (status, retry_after)) in answers {
            match status {
                200 => {}
                429 => assert!(
                    retry_after.is_some_and(|secs| secs >= 1),
                    "a 429 without Retry-After"
                ),
                other => panic!("server {server} answered {other}"),
            }
            if *at >= SETTLED {
                asked[server] += 1;
                admitted[server] += usize::from(*status == 200);
            }
        }
    }
    // Each server was asked far more than the whole rate: unshared, each would let N a
    // second through (2N together).
    let rate_over_counted = f64::from(RATE) * counted.as_secs_f64();
    for (server, asked) in asked.iter().enumerate() {
        assert!(
            *asked as f64 > 2.0 * rate_over_counted,
            "server {server} was asked only {asked} times: the load is too light to tell"
        );
    }
    eprintln!("admitted {admitted:?} of {asked:?} in {counted:?}");
    let together = (admitted[0] + admitted[1]) as f64;
    assert!(
        together <= 1.3 * rate_over_counted + f64::from(RATE),
        "{admitted:?} admitted in {counted:?} at {RATE}/s for the deployment"
    );
    assert!(
        together >= 0.6 * rate_over_counted,
        "{admitted:?} admitted in {counted:?}: the shares fell short of {RATE}/s"
    );
    for (server, count) in admitted.iter().enumerate() {
        assert!(
            *count as f64 >= 0.15 * rate_over_counted,
            "server {server} let only {count} through: {admitted:?}"
        );
    }
}

/// `POST /v1/pdq/` with no hashes as the key: the status and `Retry-After` (seconds).
fn scan_nothing(addr: &str, credentials: &str) -> (u16, Option<u64>) {
    let (status, answer) = process::http_call(
        addr,
        "POST /v1/pdq/",
        &format!("Authorization: Bearer {credentials}\r\n"),
        "application/json",
        r#"{"hashes": []}"#,
    );
    let retry_after = answer
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("retry-after")
                .then(|| value.trim().parse().ok())
                .flatten()
        });
    (status, retry_after)
}
