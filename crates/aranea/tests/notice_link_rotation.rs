//! `aranea notices rotate-link-key` makes a new key sign the respond links while the previous
//! one still verifies the links it signed: a running `aranea serve` (started before the
//! rotation, no restart) verifies links signed with the new key within a few seconds and
//! those signed with the previous key until the link lifetime (`link_ttl_secs`) has passed
//! since the rotation, then refuses them as forged. A configured `link_secret` is not
//! rotated: the command refuses and says where the key is.

#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::time::{Duration, Instant};

use aranea_store::Store;

/// The lifetime of links, short so that the previous key's end is seen: the first link is
/// checked again after it, long enough for the steps before under load.
const LINK_TTL_SECS: u64 = 20;

#[test]
fn on_sqlite_a_rotated_key_verifies_until_the_link_lifetime_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    a_rotated_key_verifies_until_the_link_lifetime_has_passed(dir.path(), &db);
}

#[test]
fn on_postgres_a_rotated_key_verifies_until_the_link_lifetime_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres::fresh_database(&format!("aranea_cli_link_rotation_{}", std::process::id()));
    a_rotated_key_verifies_until_the_link_lifetime_has_passed(dir.path(), &db);
}

fn a_rotated_key_verifies_until_the_link_lifetime_has_passed(dir: &Path, db: &str) {
    let config = dir.join("aranea.toml");
    std::fs::write(
        &config,
        format!("[notice]\nlink_ttl_secs = {LINK_TTL_SECS}\n"),
    )
    .unwrap();
    let data = dir.join("data");
    // The server makes the database's key at start-up.
    let (mut server, url) = process::serve(&data, db, &config);
    let addr = url.trim_start_matches("http://").to_owned();
    let first = current_key(db);
    // Links that outlive the lifetime (a link carries its own expiry): only the key's end
    // refuses them.
    let tomorrow = wall_clock_ms() + 86_400_000;
    let by_first = aranea_notice::link::sign(&first, "5eed-1", tomorrow);
    let before = status(&addr, &by_first);

    let rotate = |config: &Path| {
        std::process::Command::new(process::BIN)
            .arg("--data")
            .arg(&data)
            .args(["--db", db, "--config", config.to_str().unwrap()])
            .args(["notices", "rotate-link-key"])
            .output()
            .unwrap()
    };
    let rotated = rotate(&config);
    let rotated_at = Instant::now();
    let second = current_key(db);
    let by_second = aranea_notice::link::sign(&second, "5eed-2", tomorrow);
    // The server reads the keys again on a link none of its keys verifies, at most every
    // 2 s: the new key's links are answered within seconds, without a restart.
    let mut new_key = status(&addr, &by_second);
    while new_key.0 != 404 && rotated_at.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        new_key = status(&addr, &by_second);
    }
    let picked_up_after = rotated_at.elapsed();
    let previous_key = status(&addr, &by_first);
    let forged = status(
        &addr,
        &aranea_notice::link::sign(&[7; 32], "5eed-3", tomorrow),
    );
    let previous_in_time = rotated_at.elapsed() < Duration::from_secs(LINK_TTL_SECS);
    // Past the lifetime, the previous key verifies nothing (the server's keys were read
    // again by then: the forged link above, and this one).
    std::thread::sleep(Duration::from_secs(LINK_TTL_SECS + 1).saturating_sub(rotated_at.elapsed()));
    let previous_later = status(&addr, &by_first);
    let new_later = status(&addr, &by_second);

    let configured = dir.join("configured.toml");
    std::fs::write(
        &configured,
        "[notice]\nlink_secret = \"a configured key\"\n",
    )
    .unwrap();
    let refused = rotate(&configured);
    let _ = server.kill();
    let _ = server.wait();

    let stdout = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        stdout.contains("a new key signs the respond links from ")
            && stdout.contains("links signed with the previous key verify until "),
        "{stdout}"
    );
    assert_ne!(first, second);
    // A verified link reaches the notice lookup: 404, this database sent no notice.
    assert_eq!(before.0, 404, "{}", before.1);
    assert!(
        before.1.contains("no notice with reference 5eed-1"),
        "{}",
        before.1
    );
    assert_eq!(new_key.0, 404, "after {picked_up_after:?}: {}", new_key.1);
    assert!(
        previous_in_time,
        "the steps took longer than the link lifetime"
    );
    assert_eq!(previous_key.0, 404, "{}", previous_key.1);
    assert_eq!(forged.0, 400, "{}", forged.1);
    assert!(forged.1.contains("signature"), "{}", forged.1);
    assert_eq!(previous_later.0, 400, "{}", previous_later.1);
    assert!(
        previous_later.1.contains("signature"),
        "{}",
        previous_later.1
    );
    assert_eq!(new_later.0, 404, "{}", new_later.1);

    assert!(!refused.status.success());
    let refusal = String::from_utf8_lossy(&refused.stderr);
    assert!(refusal.contains("link_secret is configured"), "{refusal}");
    assert_eq!(
        current_key(db),
        second,
        "a refused rotation changes nothing"
    );
}

/// The key the database's current row holds.
fn current_key(db: &str) -> Vec<u8> {
    postgres::block_on(async {
        let store = Store::open(db).await.unwrap();
        let ring = store.notices().link_keys(0).await.unwrap();
        store.close().await;
        ring.current.expect("the server made a key")
    })
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The respond page for `token`: status and whole answer.
fn status(addr: &str, token: &str) -> (u16, String) {
    process::http_request(addr, &format!("GET /notice/respond?t={token}"), "")
}
