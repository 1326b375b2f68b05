//! The server under load: this bench binary run again as a child process
//! (`ARANEA_LOAD_SERVER_DB`, `_BANKS`, `_CONFIG` set), and what /proc says about it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use aranea_server::{AppState, ServerConfig};

/// Runs the server if this process is the child; false otherwise.
pub fn run_if_child() -> bool {
    let (Ok(db), Ok(banks)) = (
        std::env::var("ARANEA_LOAD_SERVER_DB"),
        std::env::var("ARANEA_LOAD_SERVER_BANKS"),
    ) else {
        return false;
    };
    let config: ServerConfig = std::env::var("ARANEA_LOAD_SERVER_CONFIG")
        .map(|json| serde_json::from_str(&json).unwrap())
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = aranea_store::Store::open(&format!("sqlite://{db}"))
            .await
            .unwrap();
        let state = AppState::open(config, Path::new(&banks), store)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        // Ends when the parent closes our stdin.
        let shutdown = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            })
            .await;
        };
        aranea_server::serve(listener, state, shutdown)
            .await
            .unwrap();
    });
    true
}

pub struct Server {
    child: Child,
    pub port: u16,
    /// Seconds from start until it listened (banks loaded).
    pub startup_secs: f64,
}

impl Server {
    /// Starts the server on the database file and bank directory; `config` is the JSON of
    /// a `ServerConfig` (its fields all have defaults).
    pub fn spawn(db: &Path, banks: &Path, config: &str) -> Server {
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("ARANEA_LOAD_SERVER_DB", db)
            .env("ARANEA_LOAD_SERVER_BANKS", banks)
            .env("ARANEA_LOAD_SERVER_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Server {
            child,
            port: line.trim().parse().unwrap(),
            startup_secs: started.elapsed().as_secs_f64(),
        }
    }

    /// CPU seconds (user + system, all threads) the server has used so far.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs_of(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Peak resident memory (VmHWM) so far, in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    pub fn stop(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

/// CPU seconds of this process so far (all threads).
pub fn own_cpu_secs() -> f64 {
    cpu_secs_of("/proc/self/stat")
}

/// utime + stime of a /proc stat file. Clock ticks are 1/100 s on Linux (USER_HZ).
pub fn cpu_secs_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The machine's CPU time so far by kind, from the first line of `/proc/stat` (clock ticks of
/// all CPUs): what a phase's figures are read against. On a virtual machine "steal" is time
/// the hypervisor gave to other guests while ours wanted to run: a run with much of it
/// measured a slower machine than its neighbours, whatever the code did.
#[derive(Clone, Copy)]
pub struct MachineTicks {
    total: u64,
    steal: u64,
}

impl MachineTicks {
    pub fn now() -> MachineTicks {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is
        // counted in user already, so the total is the first eight.
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|v| v.parse().ok())
            .collect();
        MachineTicks {
            total: ticks.iter().sum(),
            steal: ticks.get(7).copied().unwrap_or(0),
        }
    }

    /// The share of the CPU time since `self` that was stolen, in percent.
    pub fn steal_pct_since(self) -> f64 {
        let now = MachineTicks::now();
        let total = now.total.saturating_sub(self.total);
        100.0 * now.steal.saturating_sub(self.steal) as f64 / total.max(1) as f64
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
