//! The media vault: sealed at rest, opened only in memory, purged on decision or retention
//! end, and after a whole review run no plaintext media is anywhere on disk.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aranea_review::{Classification, ReviewConfig, vault};
use aranea_store::UserRole;
use common::{Backend, NOW, World, corpus};

both_backends!(
    retention_end_purges_undecided_media,
    keep_refuses_bytes_that_do_not_match
);

async fn retention_end_purges_undecided_media(backend: Backend) {
    let config = ReviewConfig {
        retention_days: 2,
        ..ReviewConfig::default()
    };
    let w = World::with_config(backend, config).await;
    let sha = w.queue_photo(1, &["https://one.example/a"]).await;
    let desk = w.store.review_desk();
    assert!(desk.vault_ciphertext(&sha).await.unwrap().is_some());
    assert_eq!(
        vault::purge_expired(&w.store, NOW + 2 * 86_400_000 - 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        vault::purge_expired(&w.store, NOW + 2 * 86_400_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(desk.vault_ciphertext(&sha).await.unwrap(), None);
    assert_eq!(
        desk.vault_record(&sha)
            .await
            .unwrap()
            .unwrap()
            .purge_reason
            .as_deref(),
        Some("retention")
    );
    // The analyst gets "not found", not bytes.
    w.review.intake(NOW).await.unwrap();
    let a = w.actor(w.gb, "a", UserRole::Analyst).await;
    let item = w.review.next_item(&a, NOW).await.unwrap().unwrap();
    assert!(w.review.media_for(&a, item, &sha, true, NOW).await.is_err());
}

async fn keep_refuses_bytes_that_do_not_match(backend: Backend) {
    let w = World::new(backend).await;
    let (_, bytes) = corpus(2);
    assert!(w.vault.keep(&[0u8; 32], &bytes, NOW).await.is_err());
    assert_eq!(
        w.store
            .review_desk()
            .vault_record(&[0u8; 32])
            .await
            .unwrap(),
        None
    );
}

/// Windows of each photo's bytes from its middle (headers are shared between files).
fn needles(bytes: &[u8]) -> Vec<Vec<u8>> {
    [bytes.len() / 3, bytes.len() / 2, 2 * bytes.len() / 3]
        .iter()
        .map(|&at| bytes[at..at + 48].to_vec())
        .collect()
}

fn files_under(dir: &Path, since: SystemTime, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            files_under(&path, since, out);
        } else if meta.is_file()
            && meta.len() < 256 << 20
            && meta.modified().is_ok_and(|m| m >= since)
        {
            out.push(path);
        }
    }
}

/// Files (written since `since`) under the data directory and the temp directory that
/// contain any needle.
fn plaintext_files(data: &Path, since: SystemTime, needles: &[Vec<u8>]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(data, since, &mut files);
    files_under(&std::env::temp_dir(), since, &mut files);
    files.sort();
    files.dedup();
    files
        .into_iter()
        .filter(|f| {
            std::fs::read(f).is_ok_and(|hay| {
                needles
                    .iter()
                    .any(|n| memchr::memmem::find(&hay, n).is_some())
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_media_on_disk_after_a_review_run() {
    let since = SystemTime::now() - std::time::Duration::from_secs(1);
    let w = World::new(Backend::Sqlite).await;
    let photos = [1usize, 2, 3, 4];
    let mut all_needles = Vec::new();
    for &n in &photos {
        w.queue_photo(n, &[&format!("https://site{n}.example/page")])
            .await;
        all_needles.extend(needles(&corpus(n).1));
    }
    w.review.intake(NOW).await.unwrap();
    let analysts = [
        w.actor(w.gb, "a1", UserRole::Analyst).await,
        w.actor(w.gb, "a2", UserRole::Analyst).await,
        w.actor(w.ca, "a3", UserRole::Analyst).await,
    ];
    // Two items decided after thumbnails and reveals; two left waiting in the vault.
    for a in &analysts {
        for _ in 0..2 {
            let item = w.review.next_item(a, NOW).await.unwrap().unwrap();
            for m in w.store.review_desk().item_media(item).await.unwrap() {
                w.review
                    .media_for(a, item, &m.sha256, false, NOW)
                    .await
                    .unwrap();
                w.review
                    .media_for(a, item, &m.sha256, true, NOW)
                    .await
                    .unwrap();
            }
            let facts = Classification::new("7-10", "A", false, false).unwrap();
            w.review.vote(a, item, &facts, NOW).await.unwrap();
        }
    }
    w.store.close().await;
    let found = plaintext_files(&w.dir, since, &all_needles);
    assert!(found.is_empty(), "plaintext media in {found:?}");
    // The scan itself finds plaintext when there is some.
    let control = w.dir.join("control.bin");
    std::fs::write(&control, corpus(3).1).unwrap();
    assert_eq!(plaintext_files(&w.dir, since, &all_needles), vec![control]);
}
