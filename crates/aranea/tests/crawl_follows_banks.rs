//! A running `aranea crawl` matches against bank entries another process added after it
//! started (a review decision in the server, `aranea bank import`), without a restart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aranea_index::{BankSpec, BankStore};
use aranea_simweb::{RunningWorld, SimWeb, scenario};

fn aranea(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aranea"));
    let db = format!("sqlite://{}", data.join("aranea.db").display());
    command
        .args(["--data", data.to_str().unwrap(), "--db", &db])
        .args(["--config", data.join("aranea.toml").to_str().unwrap()]);
    command
}

/// The `[crawl]` section for the simulated web, polling for reports every 100 ms.
fn write_config(world: &RunningWorld, data: &Path) {
    let config = format!(
        "{}claim_interval_ms = 100\nmin_pdq_quality = 0\n\
         [crawl.politeness]\nmin_delay_ms = 10\ncrawl_delay_cap_ms = 10\n",
        common::simweb_crawl_table(world)
    );
    std::fs::write(data.join("aranea.toml"), config).unwrap();
}

/// Lines of a child's pipe, as they come.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Waits for a line satisfying `wanted`, returning it, or None at the deadline.
fn wait_for(
    lines: &mpsc::Receiver<String>,
    within: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_running_crawl_matches_entries_imported_after_it_started() {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let data = tempfile::tempdir().unwrap();
    write_config(&world, data.path());
    BankStore::open(&data.path().join("banks"))
        .unwrap()
        .create_bank(BankSpec::new("known", "simweb", "csam"))
        .unwrap();

    let mut crawl = Killed(
        aranea(data.path())
            .args(["crawl", "--format", "jsonl", "--for", "120"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let progress = lines(crawl.0.stdout.take().unwrap());
    let messages = lines(crawl.0.stderr.take().unwrap());
    // The crawl is up (its first progress line) before the bank changes under it.
    assert!(
        wait_for(&progress, Duration::from_secs(60), |l| l
            .contains("\"matches\""))
        .is_some()
    );

    let import = aranea(data.path())
        .args(["bank", "import", "known"])
        .arg(world.bank_path())
        .args(["--format", "hma-csv"])
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let adopted = wait_for(&messages, Duration::from_secs(60), |l| {
        l.contains("banks changed on disk")
    });
    assert!(adopted.is_some(), "the crawl never noticed the import");

    let seeds: Vec<String> = world
        .world()
        .sites
        .iter()
        .map(|s| world.url(&s.host, "/"))
        .collect();
    for seed in &seeds {
        let reported = aranea(data.path())
            .args(["report", "add", seed])
            .output()
            .unwrap();
        assert!(
            reported.status.success(),
            "{}",
            String::from_utf8_lossy(&reported.stderr)
        );
    }
    let matched = wait_for(&progress, Duration::from_secs(90), |l| {
        serde_json::from_str::<serde_json::Value>(l)
            .ok()
            .and_then(|v| v["matches"].as_u64())
            .is_some_and(|m| m > 0)
    });
    assert!(
        matched.is_some(),
        "no match from entries imported while the crawl ran"
    );
}
