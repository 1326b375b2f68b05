//! The vault's rows: ciphertext of queued media and of its thumbnail (never plaintext: the
//! review crate seals before it calls here), when it expires, and when and why it was
//! purged (both ciphertexts go together).

use super::{ReviewDesk, sha_from};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};

/// A vault row without its ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultRecord {
    pub media_sha256: [u8; 32],
    /// Plaintext size in bytes.
    pub size: u64,
    pub stored_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub purged_at: Option<UnixMillis>,
    pub purge_reason: Option<String>,
}

impl ReviewDesk<'_> {
    /// Stores sealed media; false (nothing changed) if the media was stored before, even
    /// if it has been purged since: purged media is not taken back.
    pub async fn vault_put(
        &self,
        sha256: &[u8; 32],
        ciphertext: &[u8],
        size: u64,
        now: UnixMillis,
        expires_at: UnixMillis,
    ) -> Result<bool, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let done = sqlx::query(
                "INSERT INTO vault (media_sha256, ciphertext, size, stored_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (media_sha256) DO NOTHING",
            )
            .bind(&sha256[..])
            .bind(ciphertext)
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The sealed bytes, unless absent or purged.
    pub async fn vault_ciphertext(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(
                "SELECT ciphertext FROM vault WHERE media_sha256 = $1 AND purged_at IS NULL",
            )
            .bind(&sha256[..])
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(row.opt_bytes("ciphertext")?),
                None => Ok(None),
            }
        })
    }

    /// Stores the sealed thumbnail of media still in the vault; false (nothing changed) if
    /// the media is absent or purged, or has a thumbnail already (the first one stays).
    pub async fn vault_put_thumbnail(
        &self,
        sha256: &[u8; 32],
        ciphertext: &[u8],
    ) -> Result<bool, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let done = sqlx::query(
                "UPDATE vault SET thumbnail = $2 \
                 WHERE media_sha256 = $1 AND purged_at IS NULL AND thumbnail IS NULL",
            )
            .bind(&sha256[..])
            .bind(ciphertext)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The sealed thumbnail, unless absent, not made yet, or purged.
    pub async fn vault_thumbnail(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(
                "SELECT thumbnail FROM vault WHERE media_sha256 = $1 AND purged_at IS NULL",
            )
            .bind(&sha256[..])
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(row.opt_bytes("thumbnail")?),
                None => Ok(None),
            }
        })
    }

    /// The vault row of this media.
    pub async fn vault_record(&self, sha256: &[u8; 32]) -> Result<Option<VaultRecord>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(
                "SELECT media_sha256, size, stored_at, expires_at, purged_at, purge_reason \
                 FROM vault WHERE media_sha256 = $1",
            )
            .bind(&sha256[..])
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(VaultRecord {
                    media_sha256: sha_from("SHA-256", row.bytes("media_sha256")?)?,
                    size: u64::try_from(row.i64("size")?).unwrap_or(0),
                    stored_at: row.i64("stored_at")?,
                    expires_at: row.i64("expires_at")?,
                    purged_at: row.opt_i64("purged_at")?,
                    purge_reason: row.opt_text("purge_reason")?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Drops the ciphertext and the thumbnail's, keeping the row as a record; false if
    /// absent or purged already.
    pub async fn vault_purge(
        &self,
        sha256: &[u8; 32],
        reason: &str,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        check_text("purge reason", reason, 64, false)?;
        on_backend!(self.backend, |pool, d| {
            let done = sqlx::query(
                "UPDATE vault SET ciphertext = NULL, thumbnail = NULL, purged_at = $2, \
                 purge_reason = $3 \
                 WHERE media_sha256 = $1 AND purged_at IS NULL",
            )
            .bind(&sha256[..])
            .bind(now)
            .bind(reason)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Media whose retention ended at or before `now` and is not purged yet.
    pub async fn vault_expired(
        &self,
        now: UnixMillis,
        limit: u32,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT media_sha256 FROM vault WHERE purged_at IS NULL AND expires_at <= $1 \
                 ORDER BY expires_at LIMIT $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| sha_from("SHA-256", r.bytes("media_sha256")?))
                .collect()
        })
    }
}
