//! What happens to items after their first notice: re-checks, the next notice's schedule,
//! moves to another provider, the re-upload watch list, withdrawal, and statistics input.

use super::{
    CheckRecord, ItemFact, ItemId, MAX_NOTICE_LABEL_BYTES, NewItem, NoticeStore, WatchedItem,
};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};

impl NoticeStore<'_> {
    /// Records a re-check and its consequences on the item, in one transaction.
    pub async fn record_check(&self, item: ItemId, check: &CheckRecord) -> Result<(), StoreError> {
        check_text(
            "check outcome",
            &check.outcome,
            MAX_NOTICE_LABEL_BYTES,
            false,
        )?;
        check_text("check detail", &check.detail, MAX_NOTICE_LABEL_BYTES, true)?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            sqlx::query(
                "INSERT INTO notice_checks (item_id, at, outcome, http_status, detail) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(item.0)
            .bind(check.at)
            .bind(&check.outcome)
            .bind(check.http_status.map(i64::from))
            .bind(&check.detail)
            .execute(&mut *tx)
            .await?;
            let (pending, pending_since) = match &check.pending {
                Some((outcome, since)) => (Some(outcome.clone()), Some(*since)),
                None => (None, None),
            };
            sqlx::query(
                "UPDATE notice_items SET checks_done = checks_done + 1, next_check_at = $2, \
                 pending_outcome = $3, pending_since = $4 WHERE id = $1",
            )
            .bind(item.0)
            .bind(check.next_check_at)
            .bind(pending)
            .bind(pending_since)
            .execute(&mut *tx)
            .await?;
            if let Some((kind, at)) = &check.removed {
                sqlx::query(
                    "UPDATE notice_items SET state = 'removed', removed_at = $2, \
                     removal_kind = $3, notice_due_at = NULL WHERE id = $1 AND state = 'open'",
                )
                .bind(item.0)
                .bind(*at)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO notice_events (item_id, at, kind, detail) VALUES ($1, $2, 'removed', $3)",
                )
                .bind(item.0)
                .bind(check.at)
                .bind(format!("removed ({kind}), first seen removed at {at}"))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The re-checks of an item, oldest first.
    pub async fn checks_of_item(&self, item: ItemId) -> Result<Vec<CheckRecord>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT at, outcome, http_status, detail FROM notice_checks \
                 WHERE item_id = $1 ORDER BY at, id",
            )
            .bind(item.0)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(CheckRecord {
                        at: row.i64("at")?,
                        outcome: row.text("outcome")?,
                        http_status: row
                            .opt_i64("http_status")?
                            .and_then(|s| u16::try_from(s).ok()),
                        detail: row.text("detail")?,
                        next_check_at: None,
                        pending: None,
                        removed: None,
                    })
                })
                .collect()
        })
    }

    /// Makes the next notice about an item due at `at` (re-notice or escalation), with the
    /// escalation level it should go out at.
    pub async fn schedule_notice(
        &self,
        item: ItemId,
        at: UnixMillis,
        escalation_level: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "UPDATE notice_items SET notice_due_at = $2, escalation_level = $3 \
                 WHERE id = $1 AND state = 'open'",
            )
            .bind(item.0)
            .bind(at)
            .bind(escalation_level)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records that the escalation ladder's steps before `level` are spent for `items` (used
    /// or skipped), so none is taken twice. Never lowers a level.
    pub async fn pass_escalation_steps(
        &self,
        items: &[ItemId],
        level: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            for item in items {
                sqlx::query(
                    "UPDATE notice_items SET escalation_level = $2 \
                     WHERE id = $1 AND escalation_level < $2",
                )
                .bind(item.0)
                .bind(level)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Moves an open item to another provider (the site moved): new attribution, escalation
    /// and unanswered count restart, and its next notice is due at `notice_due_at`.
    pub async fn reattribute_item(
        &self,
        item: ItemId,
        attribution: &NewItem,
        notice_due_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        attribution.check()?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            sqlx::query(
                "UPDATE notice_items SET provider_key = $2, provider_name = $3, asn = $4, \
                 prefix = $5, country = $6, hotline = $7, via_cdn = $8, method = $9, \
                 confidence_pct = $10, contacts = $11, upstream_contact = $12, \
                 escalation_level = 0, unanswered = 0, notices_sent = 0, notice_due_at = $13 \
                 WHERE id = $1 AND state = 'open'",
            )
            .bind(item.0)
            .bind(&attribution.provider_key)
            .bind(&attribution.provider_name)
            .bind(attribution.asn.map(i64::from))
            .bind(&attribution.prefix)
            .bind(&attribution.country)
            .bind(&attribution.hotline)
            .bind(&attribution.via_cdn)
            .bind(&attribution.method)
            .bind(i64::from(attribution.confidence_pct))
            .bind(&attribution.contacts)
            .bind(&attribution.upstream_contact)
            .bind(notice_due_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO notice_events (item_id, at, kind, detail) VALUES ($1, $2, 'moved', $3)",
            )
            .bind(item.0)
            .bind(now)
            .bind(format!(
                "now hosted by {} ({})",
                attribution.provider_name, attribution.method
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removed items with their hashes, for the re-upload watch.
    pub async fn watched_items(&self) -> Result<Vec<WatchedItem>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT id, url, sha256, pdq, next_check_at FROM notice_items \
                 WHERE state = 'removed' ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(WatchedItem {
                        id: row.i64("id")?,
                        url: row.text("url")?,
                        sha256: row.text("sha256")?,
                        pdq: row.opt_text("pdq")?,
                        next_check_at: row.opt_i64("next_check_at")?,
                    })
                })
                .collect()
        })
    }

    /// How many items are `removed` (the set [`Self::watched_items`] reads; it only grows).
    pub async fn removed_item_count(&self) -> Result<i64, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM notice_items WHERE state = 'removed'")
                .fetch_one(pool)
                .await?;
            Ok(row.i64("n")?)
        })
    }

    /// Every item with what statistics need (first notice time from the notices sent).
    pub async fn item_facts(&self) -> Result<Vec<ItemFact>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT i.id, i.provider_name, i.country, i.hotline, i.state, i.created_at, \
                 i.removed_at, i.removal_kind, i.reupload_of, i.notices_sent, \
                 (SELECT MIN(n.sent_at) FROM notices n JOIN notice_entries e ON e.notice_id = n.id \
                  WHERE e.item_id = i.id AND n.state IN ('sent', 'uncertain')) AS first_notice_at \
                 FROM notice_items i ORDER BY i.id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(ItemFact::from_row).collect()
        })
    }
}
