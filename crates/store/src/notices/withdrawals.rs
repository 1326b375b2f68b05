//! Appeals reach the notice pipeline: an item whose every match an appeal withdrew (the
//! review room's `match_withdrawals`) is withdrawn — no more re-checks, notices,
//! escalations or re-upload watch — and every recipient that may hold a notice naming it is
//! owed a retraction (a notice of kind `withdrawal`, composed by the worker).
//!
//! Both steps are derived from rows, never from memory: withdrawing is one transaction, and
//! the retractions still owed are whatever [`NoticeStore::retractions_due`] finds, so a
//! worker that dies between the two, or while sending, neither loses nor repeats one (the
//! retraction's idempotency key does the rest). Must not touch the review room's tables.

use super::notice::EVENT;
use super::{ItemId, NoticeId, NoticeStore};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::StoreError;

/// Open or removed items with a withdrawn match and no standing one, with the deciding
/// appeal. Items a notice is being transmitted about wait until it settles, so the
/// retraction can follow it.
const APPEALED: &str = "SELECT i.id, \
    (SELECT MAX(w.decision_id) FROM matches x JOIN match_withdrawals w ON w.match_id = x.id \
     WHERE x.sighting_id = i.sighting_id) AS decision_id \
    FROM notice_items i WHERE i.state IN ('open', 'removed') AND i.sighting_id IS NOT NULL \
    AND EXISTS (SELECT 1 FROM matches x JOIN match_withdrawals w ON w.match_id = x.id \
        WHERE x.sighting_id = i.sighting_id) \
    AND NOT EXISTS (SELECT 1 FROM matches x WHERE x.sighting_id = i.sighting_id \
        AND NOT EXISTS (SELECT 1 FROM match_withdrawals w WHERE w.match_id = x.id)) \
    AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.id = i.pending_notice_id \
        AND n.state IN ('sending', 'committing')) \
    ORDER BY i.id LIMIT $1";

/// Withdrawn items named in a notice that reached (or may have reached) its recipient, with
/// no retraction to that recipient naming the item yet.
const OWED: &str = "SELECT i.id AS item_id, i.url, n.id AS notice_id, n.report_id, \
    n.recipient, n.channel, n.provider_key, n.provider_name, n.hotline, n.language, \
    n.via_cdn, n.test, n.sent_at \
    FROM notice_items i JOIN notice_entries e ON e.item_id = i.id \
    JOIN notices n ON n.id = e.notice_id \
    WHERE i.state = 'withdrawn' AND n.kind <> 'withdrawal' AND n.state IN ('sent', 'uncertain') \
    AND NOT EXISTS (SELECT 1 FROM notices r JOIN notice_entries re ON re.notice_id = r.id \
        WHERE r.kind = 'withdrawal' AND r.recipient = n.recipient AND re.item_id = i.id) \
    ORDER BY n.recipient, n.channel, i.id, n.id LIMIT $1";

/// One (withdrawn item, notice that named it) pair still owed a retraction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetractionOwed {
    pub item_id: i64,
    pub url: String,
    /// The notice that named the item, and its reference as the recipient knows it.
    pub notice_id: i64,
    pub report_id: String,
    pub recipient: String,
    pub channel: String,
    pub provider_key: String,
    pub provider_name: String,
    pub hotline: String,
    pub language: String,
    pub via_cdn: Option<String>,
    pub test: bool,
    pub sent_at: Option<UnixMillis>,
}

impl NoticeStore<'_> {
    /// Withdraws (at most `limit`) items whose every match an appeal withdrew: no more
    /// re-checks, notices or escalations, and statistics no longer count them. Queued
    /// notices naming one are withdrawn before they are sent, and their other open items
    /// are due again at once, to be composed without it. Returns the items withdrawn.
    pub async fn withdraw_appealed(
        &self,
        now: UnixMillis,
        limit: i64,
    ) -> Result<Vec<ItemId>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let found = sqlx::query(APPEALED)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            let mut withdrawn = Vec::new();
            for row in &found {
                let id = row.i64("id")?;
                let decision = row.opt_i64("decision_id")?.unwrap_or_default();
                let reason = format!("review decision reversed on appeal (decision {decision})");
                let changed = sqlx::query(
                    "UPDATE notice_items SET state = 'withdrawn', withdrawn_reason = $2, \
                     next_check_at = NULL, notice_due_at = NULL, pending_notice_id = NULL, \
                     pending_outcome = NULL, pending_since = NULL \
                     WHERE id = $1 AND state IN ('open', 'removed') RETURNING id",
                )
                .bind(id)
                .bind(&reason)
                .fetch_optional(&mut *tx)
                .await?;
                if changed.is_none() {
                    continue;
                }
                withdrawn.push(ItemId(id));
                sqlx::query(EVENT)
                    .bind(None::<i64>)
                    .bind(id)
                    .bind(now)
                    .bind("withdrawn")
                    .bind(format!(
                        "{reason}: no more re-checks, notices or escalations"
                    ))
                    .execute(&mut *tx)
                    .await?;
            }
            // Queued notices naming a withdrawn item never leave; their other items are
            // composed afresh without it.
            let stopped = sqlx::query(
                "UPDATE notices SET state = 'withdrawn', lease_owner = NULL, lease_until = NULL \
                 WHERE state = 'queued' AND kind <> 'withdrawal' AND EXISTS \
                 (SELECT 1 FROM notice_entries e JOIN notice_items i ON i.id = e.item_id \
                  WHERE e.notice_id = notices.id AND i.state = 'withdrawn') RETURNING id",
            )
            .fetch_all(&mut *tx)
            .await?;
            for row in &stopped {
                let notice = row.i64("id")?;
                sqlx::query(EVENT)
                    .bind(notice)
                    .bind(None::<i64>)
                    .bind(now)
                    .bind("withdrawn")
                    .bind("not sent: it named a URL an appeal withdrew; its other URLs are composed again")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE notice_items SET pending_notice_id = NULL, notice_due_at = $2 \
                     WHERE pending_notice_id = $1 AND state = 'open'",
                )
                .bind(notice)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(withdrawn)
        })
    }

    /// Up to `limit` (withdrawn item, notice) pairs whose recipient has no retraction naming
    /// the item yet, ordered by recipient and channel, then item.
    pub async fn retractions_due(&self, limit: i64) -> Result<Vec<RetractionOwed>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(OWED).bind(limit).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(RetractionOwed {
                        item_id: row.i64("item_id")?,
                        url: row.text("url")?,
                        notice_id: row.i64("notice_id")?,
                        report_id: row.text("report_id")?,
                        recipient: row.text("recipient")?,
                        channel: row.text("channel")?,
                        provider_key: row.text("provider_key")?,
                        provider_name: row.text("provider_name")?,
                        hotline: row.text("hotline")?,
                        language: row.text("language")?,
                        via_cdn: row.opt_text("via_cdn")?,
                        test: row.i64("test")? != 0,
                        sent_at: row.opt_i64("sent_at")?,
                    })
                })
                .collect()
        })
    }
}

/// A retraction went out: each notice it retracts (same recipient, naming one of its items)
/// records so in its timeline. A macro so one body serves both transaction types.
macro_rules! mark_retracted {
    ($tx:expr, $withdrawal:expr, $at:expr, $detail:expr) => {
        sqlx::query(
            "INSERT INTO notice_events (notice_id, item_id, at, kind, detail) \
             SELECT n.id, NULL, $2, 'retracted', $3 FROM notices n \
             WHERE n.kind <> 'withdrawal' AND n.state IN ('sent', 'uncertain') \
             AND n.recipient = (SELECT w.recipient FROM notices w \
                 WHERE w.id = $1 AND w.kind = 'withdrawal') \
             AND EXISTS (SELECT 1 FROM notice_entries e JOIN notice_entries we \
                 ON we.item_id = e.item_id WHERE e.notice_id = n.id AND we.notice_id = $1)",
        )
        .bind($withdrawal)
        .bind($at)
        .bind($detail)
        .execute(&mut *$tx)
        .await
    };
}
pub(super) use mark_retracted;

impl NoticeStore<'_> {
    /// The retractions sent or queued to `id`'s recipient naming one of its items.
    pub async fn retractions_of(&self, id: NoticeId) -> Result<Vec<NoticeId>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT DISTINCT w.id FROM notices w \
                 JOIN notice_entries we ON we.notice_id = w.id \
                 JOIN notices n ON n.id = $1 AND n.recipient = w.recipient \
                 JOIN notice_entries e ON e.notice_id = n.id AND e.item_id = we.item_id \
                 WHERE w.kind = 'withdrawal' ORDER BY w.id",
            )
            .bind(id.0)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| r.i64("id").map(NoticeId).map_err(Into::into))
                .collect()
        })
    }
}
