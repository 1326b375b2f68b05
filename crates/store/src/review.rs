//! The review queue: one entry per unknown media (by SHA-256) that analysts must classify.
//! Entering the queue is idempotent; what happens in review belongs to the `review` crate.

use crate::UnixMillis;
use crate::backend::{Backend, Get, on_backend};
use crate::error::StoreError;
use crate::frontier::text_enum;
use crate::media::SightingId;

/// Why media entered the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewReason {
    /// Unknown media on a page where something else matched a bank.
    OnMatchingPage,
    /// The media's URL was reported directly.
    Reported,
}

/// Where a review entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewState {
    Pending,
    InReview,
    Decided,
}

text_enum!(ReviewReason, "review reason", {
    OnMatchingPage => "on_matching_page", Reported => "reported",
});
text_enum!(ReviewState, "review state", {
    Pending => "pending", InReview => "in_review", Decided => "decided",
});

/// A review-queue entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewEntry {
    pub media_sha256: [u8; 32],
    /// The sighting that put it in the queue.
    pub sighting: Option<SightingId>,
    pub reason: ReviewReason,
    /// Lower is reviewed sooner.
    pub priority: i64,
    pub state: ReviewState,
    pub created_at: UnixMillis,
}

fn entry_from_row(row: &impl Get) -> Result<ReviewEntry, StoreError> {
    let sha = row.bytes("media_sha256")?;
    let media_sha256 = <[u8; 32]>::try_from(sha).map_err(|b| StoreError::Corrupt {
        what: "SHA-256",
        value: format!("{} bytes", b.len()),
    })?;
    Ok(ReviewEntry {
        media_sha256,
        sighting: row.opt_i64("sighting_id")?.map(SightingId),
        reason: ReviewReason::parse(&row.text("reason")?)?,
        priority: row.i64("priority")?,
        state: ReviewState::parse(&row.text("state")?)?,
        created_at: row.i64("created_at")?,
    })
}

/// The review queue's entries.
pub struct ReviewQueue<'a> {
    backend: &'a Backend,
}

impl<'a> ReviewQueue<'a> {
    pub(crate) fn new(backend: &'a Backend) -> Self {
        ReviewQueue { backend }
    }

    /// Queues recorded media for review; returns false (and changes nothing) if it already
    /// has an entry, whatever that entry's state.
    pub async fn enqueue(
        &self,
        media_sha256: &[u8; 32],
        sighting: Option<SightingId>,
        reason: ReviewReason,
        priority: i64,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let done = sqlx::query(
                "INSERT INTO review_queue (media_sha256, sighting_id, reason, priority, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (media_sha256) DO NOTHING",
            )
            .bind(&media_sha256[..])
            .bind(sighting.map(|s| s.0))
            .bind(reason.as_str())
            .bind(priority)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The entry for this media, if any.
    pub async fn get(&self, media_sha256: &[u8; 32]) -> Result<Option<ReviewEntry>, StoreError> {
        const SQL: &str = "SELECT media_sha256, sighting_id, reason, priority, state, created_at \
            FROM review_queue WHERE media_sha256 = $1";
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(SQL)
                .bind(&media_sha256[..])
                .fetch_optional(pool)
                .await?
            {
                Some(row) => entry_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Up to `limit` entries in `state`, by priority then age.
    pub async fn with_state(
        &self,
        state: ReviewState,
        limit: u32,
    ) -> Result<Vec<ReviewEntry>, StoreError> {
        const SQL: &str = "SELECT media_sha256, sighting_id, reason, priority, state, created_at \
            FROM review_queue WHERE state = $1 ORDER BY priority, created_at LIMIT $2";
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL)
                .bind(state.as_str())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    /// Moves an entry to `state`.
    pub async fn set_state(
        &self,
        media_sha256: &[u8; 32],
        state: ReviewState,
    ) -> Result<(), StoreError> {
        let found = on_backend!(self.backend, |pool, d| {
            sqlx::query("UPDATE review_queue SET state = $2 WHERE media_sha256 = $1")
                .bind(&media_sha256[..])
                .bind(state.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        if found == 0 {
            return Err(StoreError::NotFound {
                what: "review entry",
                id: media_sha256.iter().map(|b| format!("{b:02x}")).collect(),
            });
        }
        Ok(())
    }
}
