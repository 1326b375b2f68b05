//! The banks' journal table on PostgreSQL: rows in order, changes visible whole or not at all,
//! one writer at a time, a sequence number taken twice refused; SQLite says it has none.

mod common;

use std::time::Duration;

use aranea_store::{JournalRow, StoreError};
use common::{NOW, TestDb};

fn records(words: &[&str]) -> Vec<String> {
    words
        .iter()
        .map(|w| format!("{{\"op\":\"{w}\"}}"))
        .collect()
}

#[tokio::test]
async fn rows_append_in_order_and_read_back_in_pages() {
    let db = TestDb::postgres().await;
    let store = db.open().await;
    let journal = store.bank_journal().unwrap();
    assert_eq!(journal.last_seq().await.unwrap(), 0);
    let identity = journal.identity().await.unwrap();
    assert_eq!(identity.len(), 32, "an md5 hex identity: {identity}");

    let mut change = journal.begin().await.unwrap();
    change
        .append(1, &records(&["a", "b", "c"]), NOW)
        .await
        .unwrap();
    change.append(4, &records(&["d"]), NOW).await.unwrap();
    change.commit().await.unwrap();

    assert_eq!(journal.last_seq().await.unwrap(), 4);
    let page = journal.rows_after(1, 2).await.unwrap();
    assert_eq!(
        page,
        vec![
            JournalRow {
                seq: 2,
                record: "{\"op\":\"b\"}".into()
            },
            JournalRow {
                seq: 3,
                record: "{\"op\":\"c\"}".into()
            },
        ]
    );
    assert_eq!(journal.rows_after(4, 10).await.unwrap(), vec![]);
    // Another connection pool (another machine) sees the same journal and identity.
    let other = db.open().await;
    assert_eq!(
        other.bank_journal().unwrap().identity().await.unwrap(),
        identity
    );
    assert_eq!(
        other
            .bank_journal()
            .unwrap()
            .rows_after(0, 10)
            .await
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn a_change_is_invisible_until_committed_and_gone_when_dropped() {
    let db = TestDb::postgres().await;
    let store = db.open().await;
    let journal = store.bank_journal().unwrap();
    let mut change = journal.begin().await.unwrap();
    change
        .append(1, &records(&["begin", "entry"]), NOW)
        .await
        .unwrap();
    assert_eq!(
        journal.last_seq().await.unwrap(),
        0,
        "uncommitted rows are not visible"
    );
    assert!(journal.rows_after(0, 10).await.unwrap().is_empty());
    // A writer dying mid-import: its transaction ends without a commit.
    drop(change);
    let mut change = journal.begin().await.unwrap();
    change.append(1, &records(&["other"]), NOW).await.unwrap();
    change.commit().await.unwrap();
    let rows = journal.rows_after(0, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].record, "{\"op\":\"other\"}");

    let change = journal.begin().await.unwrap();
    change.rollback().await.unwrap();
    assert_eq!(journal.last_seq().await.unwrap(), 1);
}

#[tokio::test]
async fn a_sequence_number_taken_by_another_writer_is_refused() {
    let db = TestDb::postgres().await;
    let store = db.open().await;
    let journal = store.bank_journal().unwrap();
    let mut first = journal.begin().await.unwrap();
    first.append(1, &records(&["a"]), NOW).await.unwrap();
    first.commit().await.unwrap();
    let mut second = journal.begin().await.unwrap();
    match second.append(1, &records(&["b"]), NOW).await {
        Err(StoreError::JournalConflict { seq: 1 }) => {}
        other => panic!("expected a conflict at 1, got {other:?}"),
    }
    let mut hostile = journal.begin().await.unwrap();
    assert!(matches!(
        hostile.append(0, &records(&["zero"]), NOW).await,
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(matches!(
        hostile.append(i64::MAX, &records(&["a", "b"]), NOW).await,
        Err(StoreError::OutOfRange { .. })
    ));
    assert_eq!(journal.rows_after(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn writers_take_turns_and_a_dropped_holder_frees_the_lock() {
    let db = TestDb::postgres().await;
    let store = db.open().await;
    let other = db.open().await;
    let held = store
        .bank_journal()
        .unwrap()
        .lock_writers(|| {})
        .await
        .unwrap();

    let (waited_tx, waited_rx) = tokio::sync::oneshot::channel();
    let second = tokio::spawn(async move {
        let lock = other
            .bank_journal()
            .unwrap()
            .lock_writers(move || {
                let _ = waited_tx.send(());
            })
            .await
            .unwrap();
        lock.release().await.unwrap();
    });
    tokio::time::timeout(Duration::from_secs(10), waited_rx)
        .await
        .expect("the second writer says it waits")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "the second writer must wait for the first"
    );
    // Dropping closes the holder's connection, as a crash would.
    drop(held);
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the lock is freed when its holder's connection closes")
        .unwrap();
}

#[tokio::test]
async fn sqlite_keeps_no_bank_journal() {
    let db = TestDb::sqlite().await;
    let store = db.open().await;
    assert!(matches!(
        store.bank_journal(),
        Err(StoreError::NeedsPostgres { .. })
    ));
}
