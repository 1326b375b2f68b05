//! The respond links' signing key kept in the database, for hotlines that configure none.

use super::NoticeStore;
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::StoreError;

impl NoticeStore<'_> {
    /// The key that signs notices' respond links: the one already kept, or else `candidate`
    /// (fresh random bytes from the caller), kept from now on. Race-free on both back-ends:
    /// of processes creating it at once, the first insert wins and every one returns it.
    pub async fn link_key_or_insert(
        &self,
        candidate: &[u8],
        now: UnixMillis,
    ) -> Result<Vec<u8>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            // A conflicting insert waits for the winner's commit (the primary key), then
            // does nothing; the read after it, a new statement, sees the winner's row.
            sqlx::query(
                "INSERT INTO notice_link_key (id, key, created_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(candidate)
            .bind(now)
            .execute(pool)
            .await?;
            let row = sqlx::query("SELECT key FROM notice_link_key WHERE id = 1")
                .fetch_one(pool)
                .await?;
            Ok(row.bytes("key")?)
        })
    }
}

/// The respond links' keys that verify at one time: the current key, which signs, and the
/// keys rotated out lately, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkKeyRing {
    /// None until a process needed a key ([`NoticeStore::link_key_or_insert`]) or one was
    /// rotated in.
    pub current: Option<Vec<u8>>,
    /// Keys rotated out after the time asked for, newest first.
    pub previous: Vec<RetiredLinkKey>,
}

/// A respond-link key rotated out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredLinkKey {
    pub key: Vec<u8>,
    /// When a newer key replaced it.
    pub retired_at: UnixMillis,
}

/// What [`NoticeStore::rotate_link_key`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkKeyRotation {
    /// When the key rotated out was made; None when there was none (the new key is the
    /// first).
    pub previous_created_at: Option<UnixMillis>,
    /// Keys rotated out earlier than the time given, dropped now.
    pub dropped: u64,
}

const CURRENT_KEY: &str = "SELECT key, created_at FROM notice_link_key WHERE id = 1";
// The current row locked first: rotations at once take turns (SQLite: the write lock).
const CURRENT_KEY_LOCKED: &str =
    "SELECT key, created_at FROM notice_link_key WHERE id = 1 FOR UPDATE";
const RETIRE: &str =
    "INSERT INTO notice_link_keys_retired (key, created_at, retired_at) VALUES ($1, $2, $3)";
const REPLACE: &str = "INSERT INTO notice_link_key (id, key, created_at) VALUES (1, $1, $2) \
    ON CONFLICT (id) DO UPDATE SET key = excluded.key, created_at = excluded.created_at";
const DROP_RETIRED: &str = "DELETE FROM notice_link_keys_retired WHERE retired_at <= $1";
const RETIRED_SINCE: &str = "SELECT key, retired_at FROM notice_link_keys_retired WHERE retired_at > $1 \
    ORDER BY retired_at DESC, id DESC";

impl NoticeStore<'_> {
    /// Makes `new_key` (fresh random bytes from the caller) the current key from `now`; the
    /// key it replaces is kept as rotated out at `now`, and keys rotated out at or before
    /// `drop_retired_before` are dropped (they verify nothing any more). Rotations at once
    /// take turns: each one's key is current in turn, and each retires the one before it.
    pub async fn rotate_link_key(
        &self,
        new_key: &[u8],
        now: UnixMillis,
        drop_retired_before: UnixMillis,
    ) -> Result<LinkKeyRotation, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let current = sqlx::query(d.pick(CURRENT_KEY, CURRENT_KEY_LOCKED))
                .fetch_optional(&mut *tx)
                .await?;
            let mut previous_created_at = None;
            if let Some(row) = current {
                let created_at = row.i64("created_at")?;
                sqlx::query(RETIRE)
                    .bind(row.bytes("key")?)
                    .bind(created_at)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                previous_created_at = Some(created_at);
            }
            sqlx::query(REPLACE)
                .bind(new_key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let dropped = sqlx::query(DROP_RETIRED)
                .bind(drop_retired_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(LinkKeyRotation {
                previous_created_at,
                dropped,
            })
        })
    }

    /// The current key and the keys rotated out after `retired_after`, newest first.
    pub async fn link_keys(&self, retired_after: UnixMillis) -> Result<LinkKeyRing, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let current = sqlx::query(CURRENT_KEY)
                .fetch_optional(pool)
                .await?
                .map(|row| row.bytes("key"))
                .transpose()?;
            let previous = sqlx::query(RETIRED_SINCE)
                .bind(retired_after)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(RetiredLinkKey {
                        key: row.bytes("key")?,
                        retired_at: row.i64("retired_at")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(LinkKeyRing { current, previous })
        })
    }
}
