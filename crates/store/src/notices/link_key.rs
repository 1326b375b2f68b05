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
