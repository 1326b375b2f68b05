//! `aranea demo --for SECONDS` end to end: the simulated web, the known bank, the crawl, the
//! notice engine on the world's accelerated clock and the server in one process; it must serve
//! while it runs, find matches, send notices and record removals, seal media for review into
//! the vault, then exit cleanly and leave its database behind.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aranea_review::VaultSecretKey;
use sqlx::{Connection, Row};

#[test]
fn demo_crawls_matches_serves_and_exits_cleanly() {
    let dir = std::env::temp_dir().join(format!("aranea-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(&dir)
        .args(["demo", "--listen", "127.0.0.1:0", "--for", "45"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let mut addr = None;
    while addr.is_none() {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "demo ended early:\n{printed}"
        );
        printed.push_str(&line);
        addr = line
            .trim()
            .strip_prefix("serving on http://")
            .map(str::to_owned);
    }
    let addr = addr.unwrap();
    // The video page is a seed but no site of its own: the sites are counted, not the seeds.
    let crawling = printed
        .lines()
        .find(|l| l.starts_with("crawling "))
        .unwrap_or_else(|| panic!("no crawling line in:\n{printed}"));
    let numbers: Vec<usize> = crawling
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        crawling.contains(" sites of the simulated web from ")
            && numbers.len() == 3
            && numbers[1] == numbers[0] + 1,
        "{crawling}"
    );
    // While it runs, the server answers.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // The public report form is on.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /report HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut form = String::new();
    stream.read_to_string(&mut form).unwrap();
    assert!(
        form.starts_with("HTTP/1.1 200")
            && form.contains("<form method=\"post\" action=\"/report\">"),
        "{form}"
    );

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "demo did not exit after --for"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    stdout.read_to_string(&mut printed).unwrap();
    assert!(status.success(), "{printed}");
    assert!(printed.contains("bank simweb-known:"), "{printed}");
    assert!(
        printed.contains("/report (reports go to hotline demo-ca)"),
        "{printed}"
    );
    // scripts/test installs ffmpeg: the demo world has its known video.
    assert!(
        printed.contains("bank simweb-known-videos: a generated slideshow"),
        "{printed}"
    );
    for hotline in ["demo-ca", "demo-nl"] {
        for n in 1..=3 {
            let account = format!("hotline {hotline}: analyst {hotline}-analyst{n} password ");
            assert!(printed.contains(&account), "no {account:?} in:\n{printed}");
        }
    }
    let summary = printed
        .lines()
        .find(|l| l.starts_with("stopped after"))
        .unwrap_or_else(|| panic!("{printed}"));
    let number = |label: &str| -> u64 {
        summary
            .split(", ")
            .find(|part| part.ends_with(label) || part.contains(&format!(" {label}")))
            .and_then(|part| part.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or_else(|| panic!("no {label} in {summary}"))
    };
    assert!(number("media hashed") > 0, "{summary}");
    assert!(
        number("matches") > 0,
        "the demo found no known image: {summary}"
    );
    assert!(number("notices sent") > 0, "no notice sent: {summary}");
    assert!(number("removals") > 0, "no removal recorded: {summary}");
    let db = dir.join("aranea.db");
    assert!(db.exists(), "the database stays for inspection");
    assert!(
        printed.contains("review vault: new key pair in "),
        "{printed}"
    );

    let (sent, removed, sealed, video_matches) = block_on(database_facts(&db));
    assert!(sent > 0, "the notices table holds no sent notice");
    assert!(removed > 0, "no notice item was recorded as removed");
    assert!(!sealed.is_empty(), "no media reached the review vault");
    assert!(
        video_matches > 0,
        "the crawl did not find the demo's known video by its frames (vpdq)"
    );

    // Every vault entry is ciphertext that only the demo's key opens, to bytes of the recorded
    // size; no 32-byte run from the middle of any of them appears in the database's files.
    let secret = std::fs::read_to_string(dir.join("vault.secret")).unwrap();
    let key = VaultSecretKey::from_hex(&secret).unwrap();
    let mut probes = HashSet::new();
    for (sha256, ciphertext, size) in &sealed {
        assert!(ciphertext.starts_with(b"ARV1"), "not vault ciphertext");
        let sha: [u8; 32] = sha256.as_slice().try_into().unwrap();
        let plain = aranea_review::vault::open(&key, &sha, ciphertext).unwrap();
        assert_eq!(plain.len() as i64, *size);
        let middle = plain.len() / 2;
        probes.insert(<[u8; 32]>::try_from(&plain[middle..middle + 32]).unwrap());
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().contains("aranea.db") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(32)
                .any(|w| probes.contains(<&[u8; 32]>::try_from(w).unwrap())),
            "plaintext media in {}",
            path.display()
        );
    }

    // A second run on the same data directory continues the first's accelerated clock: none of
    // its notice events is dated before the first run's newest.
    let (first_events, first_newest) = block_on(newest_notice_event(&db));
    let printed = run_demo(&dir, 20);
    assert!(printed.contains("stopped after"), "{printed}");
    let later: Vec<i64> = block_on(notice_event_times_after(&db, first_events));
    assert!(
        !later.is_empty(),
        "the second run recorded no notice event:\n{printed}"
    );
    assert!(
        later.iter().all(|&at| at >= first_newest),
        "the second run dated events before the first run's newest ({first_newest}): {later:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Runs `demo --for secs` on `dir` to its end; its stdout.
fn run_demo(dir: &std::path::Path, secs: u64) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(dir)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--for",
            &secs.to_string(),
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{printed}");
    printed
}

/// The highest notice event id and the newest event time.
async fn newest_notice_event(db: &std::path::Path) -> (i64, i64) {
    let mut conn = read_only(db).await;
    let row = sqlx::query("SELECT MAX(id), MAX(at) FROM notice_events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The times of the notice events with an id above `after`.
async fn notice_event_times_after(db: &std::path::Path, after: i64) -> Vec<i64> {
    let mut conn = read_only(db).await;
    sqlx::query_scalar("SELECT at FROM notice_events WHERE id > $1 ORDER BY id")
        .bind(after)
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

async fn read_only(db: &std::path::Path) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}?mode=ro", db.display());
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}

type Sealed = Vec<(Vec<u8>, Vec<u8>, i64)>;

/// Sent notices, removed notice items, the vault's (sha256, ciphertext, size) rows and the
/// matches of video bank entries.
async fn database_facts(db: &std::path::Path) -> (i64, i64, Sealed, i64) {
    let mut conn = read_only(db).await;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let sent = count("SELECT COUNT(*) FROM notices WHERE state = 'sent'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let removed = count("SELECT COUNT(*) FROM notice_items WHERE state = 'removed'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let sealed = sqlx::query(
        "SELECT media_sha256, ciphertext, size FROM vault WHERE ciphertext IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2)))
    .collect();
    let video_matches = count("SELECT COUNT(*) FROM matches WHERE signal_type = 'vpdq'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    (sent, removed, sealed, video_matches)
}
