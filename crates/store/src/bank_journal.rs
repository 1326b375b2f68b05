//! The hash banks' journal in PostgreSQL, for several machines that share one database.
//!
//! The index crate keeps the banks as a journal of records plus snapshots; on one machine the
//! journal is a set of files. When servers and crawl workers on several machines share one
//! PostgreSQL, the journal is the `bank_journal` table instead, and each machine keeps only a
//! snapshot of its own. This module stores and reads rows: sequence number and record text.
//! It does not interpret records; the caller serialises them.
//!
//! One writer at a time: a writer takes [`BankJournalRows::lock_writers`] (a session advisory
//! lock, released when its connection closes, so a crashed writer never leaves the banks
//! locked), catches up, appends, and releases. A change of several records is appended inside
//! one [`JournalAppend`], a database transaction, so readers see all of it or none of it and a
//! writer that dies mid-import leaves nothing behind.

use sqlx::postgres::{PgConnection, PgPool, Postgres};
use sqlx::{Connection, Row};

use crate::UnixMillis;
use crate::backend::Backend;
use crate::error::StoreError;

/// Any constant works, as long as every Aranea process uses the same one; it differs from the
/// migrations' lock.
const WRITERS_LOCK_KEY: i64 = 0x0041_7261_6e65_6142; // "AraneaB"

/// PostgreSQL's SQLSTATE for a unique violation: another writer took the sequence number.
const UNIQUE_VIOLATION: &str = "23505";

/// One journal row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRow {
    pub seq: i64,
    /// The record as its writer serialised it.
    pub record: String,
}

/// The banks' journal table.
pub struct BankJournalRows<'a> {
    pool: &'a PgPool,
}

impl<'a> BankJournalRows<'a> {
    pub(crate) fn new(backend: &'a Backend) -> Result<Self, StoreError> {
        match backend {
            Backend::Postgres(pool) => Ok(BankJournalRows { pool }),
            Backend::Sqlite(_) => Err(StoreError::NeedsPostgres {
                what: "the banks' journal in the database",
            }),
        }
    }

    /// This database's journal identity (set once, by the migration that made the table).
    pub async fn identity(&self) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT identity FROM bank_journal_identity")
            .fetch_one(self.pool)
            .await?;
        Ok(row.try_get("identity")?)
    }

    /// The highest committed sequence number (0 for an empty journal).
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS last FROM bank_journal")
            .fetch_one(self.pool)
            .await?;
        Ok(row.try_get("last")?)
    }

    /// Up to `limit` committed rows after `after`, in order.
    pub async fn rows_after(&self, after: i64, limit: i64) -> Result<Vec<JournalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, record FROM bank_journal WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(JournalRow {
                    seq: row.try_get("seq")?,
                    record: row.try_get("record")?,
                })
            })
            .collect()
    }

    /// Starts appending a change (a database transaction).
    pub async fn begin(&self) -> Result<JournalAppend, StoreError> {
        Ok(JournalAppend {
            transaction: self.pool.begin().await?,
        })
    }

    /// Takes the writers' lock, waiting for its holder. `waiting` is called once, before the
    /// wait, if another process holds it.
    pub async fn lock_writers(
        &self,
        waiting: impl FnOnce(),
    ) -> Result<BankWritersLock, StoreError> {
        // A connection of its own, not returned to the pool: a pooled connection would keep
        // the session lock after release.
        let mut connection = self.pool.acquire().await?.detach();
        let taken: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS taken")
            .bind(WRITERS_LOCK_KEY)
            .fetch_one(&mut connection)
            .await?
            .try_get("taken")?;
        if !taken {
            waiting();
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(WRITERS_LOCK_KEY)
                .execute(&mut connection)
                .await?;
        }
        Ok(BankWritersLock { connection })
    }
}

/// A change being appended: rows become visible to readers together, at [`Self::commit`].
/// Dropped without a commit, nothing of it is kept.
pub struct JournalAppend {
    transaction: sqlx::Transaction<'static, Postgres>,
}

impl JournalAppend {
    /// Appends `records` as sequence numbers `first_seq`, `first_seq + 1`, …
    pub async fn append(
        &mut self,
        first_seq: i64,
        records: &[String],
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let count = i64::try_from(records.len()).map_err(|_| StoreError::OutOfRange {
            field: "journal records",
            value: i64::MAX,
            min: 0,
            max: i64::MAX,
        })?;
        if first_seq < 1 || first_seq.checked_add(count).is_none() {
            return Err(StoreError::OutOfRange {
                field: "journal sequence number",
                value: first_seq,
                min: 1,
                max: i64::MAX - count,
            });
        }
        let seqs: Vec<i64> = (first_seq..first_seq + count).collect();
        let inserted = sqlx::query(
            "INSERT INTO bank_journal (seq, record, recorded_at) \
             SELECT seq, record, $3 FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS r(seq, record)",
        )
        .bind(&seqs)
        .bind(records)
        .bind(now)
        .execute(&mut *self.transaction)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNIQUE_VIOLATION) => {
                Err(StoreError::JournalConflict { seq: first_seq })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the appended rows visible, durably.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.transaction.commit().await?)
    }

    /// Discards the appended rows.
    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.transaction.rollback().await?)
    }
}

/// The banks' writers' lock; [`Self::release`] it, or drop it (closing its connection, which
/// also releases it).
pub struct BankWritersLock {
    connection: PgConnection,
}

impl BankWritersLock {
    pub async fn release(self) -> Result<(), StoreError> {
        // Closing the session releases its advisory locks.
        Ok(self.connection.close().await?)
    }
}
