//! The audit trail: append-only rows, each carrying the SHA-256 of its content chained to
//! the previous row's hash, and a head row naming the last, so an edited, deleted or
//! truncated trail no longer verifies. Appends are serialised by the write lock (SQLite)
//! or a row lock on the head (PostgreSQL), so the chain never forks.

use sha2::{Digest, Sha256};

use super::ReviewDesk;
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};

/// What happened: who, when, what, from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: UnixMillis,
    pub user_id: Option<i64>,
    /// Username, or `cli:…`/`system` for actions without a session.
    pub actor: String,
    /// Code of the actor's hotline (`''` for the platform).
    pub hotline: String,
    /// e.g. `login`, `view`, `reveal`, `vote`, `decision`, `setting`.
    pub action: String,
    /// What it was done to, e.g. `item:12`, `user:3`.
    pub subject: String,
    pub detail: String,
    /// Client address, or `cli`.
    pub source: String,
}

/// A stored audit row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl AuditEntry {
    /// The hash a row must carry: SHA-256 over the previous hash, the sequence number and
    /// every field, each length-prefixed so no two different rows hash alike.
    pub fn chain_hash(prev_hash: &[u8], seq: i64, record: &AuditRecord) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(prev_hash);
        field(&seq.to_be_bytes());
        field(&record.at.to_be_bytes());
        field(&record.user_id.unwrap_or(-1).to_be_bytes());
        field(record.actor.as_bytes());
        field(record.hotline.as_bytes());
        field(record.action.as_bytes());
        field(record.subject.as_bytes());
        field(record.detail.as_bytes());
        field(record.source.as_bytes());
        h.finalize().into()
    }
}

fn entry_from_row(row: &impl Get) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: row.i64("seq")?,
        record: AuditRecord {
            at: row.i64("at")?,
            user_id: row.opt_i64("user_id")?,
            actor: row.text("actor")?,
            hotline: row.text("hotline")?,
            action: row.text("action")?,
            subject: row.text("subject")?,
            detail: row.text("detail")?,
            source: row.text("source")?,
        },
        prev_hash: row.bytes("prev_hash")?,
        hash: row.bytes("hash")?,
    })
}

impl ReviewDesk<'_> {
    /// Appends a row to the chain; returns its sequence number (1, 2, …).
    pub async fn audit_append(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        check_text("audit actor", &record.actor, 200, false)?;
        check_text("audit hotline", &record.hotline, 64, true)?;
        check_text("audit action", &record.action, 64, false)?;
        check_text("audit subject", &record.subject, 200, true)?;
        check_text("audit detail", &record.detail, 4000, true)?;
        check_text("audit source", &record.source, 128, true)?;
        let head_sql_sqlite = "SELECT seq, hash FROM audit_head WHERE id = 1";
        let head_sql_pg = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            if d == crate::backend::Dialect::Postgres {
                // The first append has no head row to lock: create it under a lock that
                // every appender takes, then lock the row.
                sqlx::query(
                    "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(Vec::<u8>::new())
                .execute(&mut *tx)
                .await?;
            }
            let head = sqlx::query(d.pick(head_sql_sqlite, head_sql_pg))
                .fetch_optional(&mut *tx)
                .await?;
            let (prev_seq, prev_hash) = match head {
                Some(row) => (row.i64("seq")?, row.bytes("hash")?),
                None => (0, Vec::new()),
            };
            let seq = prev_seq + 1;
            let hash = AuditEntry::chain_hash(&prev_hash, seq, record);
            sqlx::query(
                "INSERT INTO audit_log (seq, at, user_id, actor, hotline, action, subject, \
                 detail, source, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(seq)
            .bind(record.at)
            .bind(record.user_id)
            .bind(&record.actor)
            .bind(&record.hotline)
            .bind(&record.action)
            .bind(&record.subject)
            .bind(&record.detail)
            .bind(&record.source)
            .bind(&prev_hash)
            .bind(&hash[..])
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            )
            .bind(seq)
            .bind(&hash[..])
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(seq)
        })
    }

    /// Up to `limit` rows after `after_seq`, in order; `hotline` restricts to one hotline's.
    pub async fn audit_entries(
        &self,
        after_seq: i64,
        limit: u32,
        hotline: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT * FROM audit_log WHERE seq > $1 AND ($3 = '*' OR hotline = $3) \
                 ORDER BY seq LIMIT $2",
            )
            .bind(after_seq)
            .bind(i64::from(limit))
            .bind(hotline.unwrap_or("*"))
            .fetch_all(pool)
            .await?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    /// The last row's sequence number and hash as the head records them.
    pub async fn audit_head(&self) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(pool)
                .await?;
            match row {
                Some(row) => Ok(Some((row.i64("seq")?, row.bytes("hash")?))),
                None => Ok(None),
            }
        })
    }
}
