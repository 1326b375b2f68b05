//! The media vault: sealed at rest, opened only in memory, purged on decision or retention
//! end, thumbnails made once and sealed beside the bytes, and after a whole review run no
//! plaintext media or thumbnail is anywhere on disk.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aranea_review::{Classification, ReviewConfig, vault};
use aranea_store::UserRole;
use common::{Backend, NOW, World, corpus};

both_backends!(
    retention_end_purges_undecided_media,
    keep_refuses_bytes_that_do_not_match,
    thumbnails_are_made_once_sealed_and_go_with_the_bytes,
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

/// The blurred thumbnail is made once, at intake (or at first view when missing), sealed
/// into the vault, and served from there: with the original's ciphertext gone the
/// thumbnail is still served, so showing an item does not decode the original. A decision
/// purges it with the bytes (retention purges the same way: see the store's contract test).
async fn thumbnails_are_made_once_sealed_and_go_with_the_bytes(backend: Backend) {
    let w = World::new(backend).await;
    let kept = w.queue_photo(5, &["https://one.example/a"]).await;
    let lazy = w.queue_photo(6, &["https://two.example/b"]).await;
    let expected = |sha: &[u8; 32]| {
        let n = if *sha == kept { 5 } else { 6 };
        aranea_review::thumbnail::blurred(&corpus(n).1).unwrap()
    };
    let report = w.review.intake(NOW).await.unwrap();
    assert_eq!((report.opened, report.thumbnails), (2, 2));
    let desk = w.store.review_desk();
    for sha in [kept, lazy] {
        let sealed = desk.vault_thumbnail(&sha).await.unwrap().unwrap();
        let png = expected(&sha);
        assert!(!sealed.starts_with(b"\x89PNG"));
        assert!(memchr::memmem::find(&sealed, &png[png.len() / 2..][..32]).is_none());
    }
    // The original's ciphertext goes (the row stays live, not purged) but the thumbnail
    // stays; the other media loses its thumbnail, as media queued before thumbnails were
    // kept would have none.
    let literal = |sha: &[u8; 32]| {
        if w.url.starts_with("sqlite:") {
            format!("X'{}'", common::hex(sha))
        } else {
            format!("'\\x{}'::bytea", common::hex(sha))
        }
    };
    let sql = |set: &str, sha: &[u8; 32]| {
        format!(
            "UPDATE vault SET {set} WHERE media_sha256 = {}",
            literal(sha)
        )
    };
    assert_eq!(
        common::tamper(&w.url, &sql("ciphertext = NULL", &kept)).await,
        1
    );
    assert_eq!(
        common::tamper(&w.url, &sql("thumbnail = NULL", &lazy)).await,
        1
    );

    let analysts = [
        w.actor(w.gb, "a1", UserRole::Analyst).await,
        w.actor(w.gb, "a2", UserRole::Analyst).await,
        w.actor(w.ca, "a3", UserRole::Analyst).await,
    ];
    let facts = Classification::new("7-10", "A", false, false).unwrap();
    let mut items = Vec::new();
    for a in &analysts {
        for _ in 0..2 {
            let item = w.review.next_item(a, NOW).await.unwrap().unwrap();
            let sha = desk.item_media(item).await.unwrap()[0].sha256;
            let (png, kind) = w.review.media_for(a, item, &sha, false, NOW).await.unwrap();
            assert_eq!((png, kind), (expected(&sha), "image/png"));
            if sha == kept {
                assert!(
                    w.review.media_for(a, item, &sha, true, NOW).await.is_err(),
                    "the original is gone"
                );
            } else {
                assert!(desk.vault_thumbnail(&sha).await.unwrap().is_some(), "kept");
            }
            w.review.vote(a, item, &facts, NOW).await.unwrap();
            items.push((item, sha));
        }
    }
    // Decided: bytes and thumbnails are purged; the thumbnail is no longer served.
    for (item, sha) in items.iter().take(2) {
        assert_eq!(desk.vault_thumbnail(sha).await.unwrap(), None);
        assert!(
            desk.vault_record(sha)
                .await
                .unwrap()
                .unwrap()
                .purged_at
                .is_some()
        );
        assert!(
            w.review
                .media_for(&analysts[0], *item, sha, false, NOW)
                .await
                .is_err()
        );
    }
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
        // Thumbnails are derived from the media: never in plaintext on disk either.
        let thumb = aranea_review::thumbnail::blurred(&corpus(n).1).unwrap();
        all_needles.extend(needles(&thumb));
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
    assert_eq!(
        plaintext_files(&w.dir, since, &all_needles),
        vec![control.clone()]
    );
    std::fs::remove_file(&control).unwrap();
    let thumb = aranea_review::thumbnail::blurred(&corpus(2).1).unwrap();
    std::fs::write(&control, thumb).unwrap();
    assert_eq!(plaintext_files(&w.dir, since, &all_needles), vec![control]);
}
