//! Reading notices back (for the worker, the CLI and the server), operator resends, the
//! timeline, and contact health.

use super::notice::{EVENT, NOTICE_COLUMNS, notice_from_row};
use super::{
    ItemId, MAX_NOTICE_LABEL_BYTES, Notice, NoticeEvent, NoticeFilter, NoticeId, NoticeState,
    NoticeStore,
};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};

/// Every notice state, in the order the metrics list them.
const NOTICE_STATES: [NoticeState; 7] = [
    NoticeState::Queued,
    NoticeState::Sending,
    NoticeState::Committing,
    NoticeState::Sent,
    NoticeState::Uncertain,
    NoticeState::Failed,
    NoticeState::Withdrawn,
];

/// Every notice item state.
const ITEM_STATES: [&str; 3] = ["open", "removed", "withdrawn"];

/// How many notices and notice items are in each state, every state listed (zeros too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub notices: Vec<(&'static str, i64)>,
    pub items: Vec<(&'static str, i64)>,
}

impl NoticeStore<'_> {
    /// Notices and items per state, for the operators' metrics: a growing `failed` count is
    /// a relay or contact that needs a person.
    pub async fn state_counts(&self) -> Result<StateCounts, StoreError> {
        let (notices, items) = on_backend!(self.backend, |pool, d| {
            let notices = sqlx::query("SELECT state, COUNT(*) AS n FROM notices GROUP BY state")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((row.text("state")?, row.i64("n")?)))
                .collect::<Result<Vec<(String, i64)>, StoreError>>()?;
            let items = sqlx::query("SELECT state, COUNT(*) AS n FROM notice_items GROUP BY state")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((row.text("state")?, row.i64("n")?)))
                .collect::<Result<Vec<(String, i64)>, StoreError>>()?;
            Ok::<_, StoreError>((notices, items))
        })?;
        let count = |rows: &[(String, i64)], state: &str| {
            rows.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n)
        };
        Ok(StateCounts {
            notices: NOTICE_STATES
                .iter()
                .map(|s| (s.as_str(), count(&notices, s.as_str())))
                .collect(),
            items: ITEM_STATES.iter().map(|s| (*s, count(&items, s))).collect(),
        })
    }

    /// One notice.
    pub async fn notice(&self, id: NoticeId) -> Result<Option<Notice>, StoreError> {
        let sql = format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE id = $1");
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id.0)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(notice_from_row).transpose()
        })
    }

    /// Queues a copy of a notice (same items, text and recipient) under a new key, linked to
    /// the original: an operator's resend. Returns the copy.
    pub async fn resend_notice(
        &self,
        id: NoticeId,
        now: UnixMillis,
    ) -> Result<NoticeId, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let copies = sqlx::query("SELECT COUNT(*) AS n FROM notices WHERE parent_id = $1")
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await?
                .i64("n")?;
            let row = sqlx::query(
                "INSERT INTO notices (report_id, idempotency_key, provider_key, provider_name, \
                 hotline, kind, escalation_step, via_cdn, channel, recipient, contacts, \
                 contact_index, language, subject, body_text, body_html, xarf, next_attempt_at, \
                 created_at, parent_id, test) \
                 SELECT report_id || '-r' || $3, idempotency_key || '-resend-' || $3, \
                 provider_key, provider_name, hotline, kind, escalation_step, via_cdn, channel, \
                 recipient, contacts, contact_index, language, subject, body_text, body_html, \
                 xarf, $2, $2, id, test FROM notices WHERE id = $1 RETURNING id",
            )
            .bind(id.0)
            .bind(now)
            .bind((copies + 1).to_string())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound {
                    what: "notice",
                    id: id.0.to_string(),
                });
            };
            let copy = row.i64("id")?;
            sqlx::query(
                "INSERT INTO notice_entries (notice_id, item_id) \
                 SELECT $2, item_id FROM notice_entries WHERE notice_id = $1",
            )
            .bind(id.0)
            .bind(copy)
            .execute(&mut *tx)
            .await?;
            sqlx::query(EVENT)
                .bind(copy)
                .bind(None::<i64>)
                .bind(now)
                .bind("composed")
                .bind(format!("resend of notice {} by an operator", id.0))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(NoticeId(copy))
        })
    }

    /// The notice with this report id (the reference in its signed link).
    pub async fn notice_by_report(&self, report_id: &str) -> Result<Option<Notice>, StoreError> {
        let sql = format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE report_id = $1");
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(report_id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(notice_from_row).transpose()
        })
    }

    /// The notices naming an item, oldest first.
    pub async fn notices_of_item(&self, item: ItemId) -> Result<Vec<Notice>, StoreError> {
        let sql = format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE id IN \
             (SELECT notice_id FROM notice_entries WHERE item_id = $1) ORDER BY id"
        );
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(item.0)
                .fetch_all(pool)
                .await?;
            rows.iter().map(notice_from_row).collect()
        })
    }

    /// Notices, newest first.
    pub async fn list_notices(&self, filter: &NoticeFilter) -> Result<Vec<Notice>, StoreError> {
        Ok(self.list_notices_page(filter, None).await?.0)
    }

    /// One page of notices, newest first, strictly older than `before` (the previous page's
    /// cursor; `None` for the first page), and the cursor of the next page: `Some` when this
    /// page was full, so more may follow. Keyset paging on the id: stable while notices are
    /// added, and as cheap on the last page as on the first.
    pub async fn list_notices_page(
        &self,
        filter: &NoticeFilter,
        before: Option<NoticeId>,
    ) -> Result<(Vec<Notice>, Option<NoticeId>), StoreError> {
        let sql = format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE ($1 = '' OR state = $1) \
             AND ($2 = '' OR provider_key = $2) AND ($5 = '' OR hotline = $5) AND id < $4 \
             ORDER BY id DESC LIMIT $3"
        );
        let hotline = filter.hotline.as_deref().unwrap_or("");
        let state = filter.state.map_or("", NoticeState::as_str);
        let provider = filter.provider_key.as_deref().unwrap_or("");
        let limit = filter.limit.unwrap_or(i64::MAX).max(0);
        let before = before.map_or(i64::MAX, |b| b.0);
        let page: Vec<Notice> = on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(state)
                .bind(provider)
                .bind(limit)
                .bind(before)
                .bind(hotline)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(notice_from_row)
                .collect::<Result<Vec<_>, _>>()
        })?;
        let full = i64::try_from(page.len()).is_ok_and(|n| n == limit && n > 0);
        let next = if full {
            page.last().map(|n| NoticeId(n.id))
        } else {
            None
        };
        Ok((page, next))
    }

    /// A notice's timeline and that of its items, in time order.
    pub async fn timeline(&self, id: NoticeId) -> Result<Vec<NoticeEvent>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT notice_id, item_id, at, kind, detail FROM notice_events \
                 WHERE notice_id = $1 OR item_id IN \
                 (SELECT item_id FROM notice_entries WHERE notice_id = $1) ORDER BY at, id",
            )
            .bind(id.0)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(NoticeEvent {
                        notice_id: row.opt_i64("notice_id")?,
                        item_id: row.opt_i64("item_id")?,
                        at: row.i64("at")?,
                        kind: row.text("kind")?,
                        detail: row.text("detail")?,
                    })
                })
                .collect()
        })
    }

    /// Adds a line to a timeline.
    pub async fn record_event(
        &self,
        notice: Option<NoticeId>,
        item: Option<ItemId>,
        at: UnixMillis,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        check_text("event kind", kind, MAX_NOTICE_LABEL_BYTES, false)?;
        let detail: String = detail.chars().take(1000).collect();
        check_text("event detail", &detail, MAX_NOTICE_LABEL_BYTES, true)?;
        on_backend!(self.backend, |pool, d| {
            sqlx::query(EVENT)
                .bind(notice.map(|n| n.0))
                .bind(item.map(|i| i.0))
                .bind(at)
                .bind(kind)
                .bind(detail)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Marks an address dead until `until` after a permanent failure.
    pub async fn mark_contact_dead(
        &self,
        address: &str,
        until: UnixMillis,
        error: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        check_text("contact", address, MAX_NOTICE_LABEL_BYTES, false)?;
        let error: String = error.chars().take(1000).collect();
        on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "INSERT INTO notice_contacts (address, failures, dead_until, last_error, updated_at) \
                 VALUES ($1, 1, $2, $3, $4) ON CONFLICT (address) DO UPDATE SET \
                 failures = notice_contacts.failures + 1, dead_until = excluded.dead_until, \
                 last_error = excluded.last_error, updated_at = excluded.updated_at",
            )
            .bind(address)
            .bind(until)
            .bind(&error)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Addresses that are dead at `now`.
    pub async fn dead_contacts(&self, now: UnixMillis) -> Result<Vec<String>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT address FROM notice_contacts WHERE dead_until > $1 ORDER BY address",
            )
            .bind(now)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| row.text("address").map_err(StoreError::from))
                .collect()
        })
    }
}
