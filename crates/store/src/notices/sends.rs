//! Notices: composing one per provider and batch (idempotent on its key), leasing it for
//! delivery, the two-step commit around the send, retries, provider responses, the timeline
//! and contact health.
//!
//! The delivery contract: [`NoticeStore::claim_notice`] moves a due notice to `sending`;
//! before the first byte that could deliver it, the sender calls
//! [`NoticeStore::mark_committing`]; after the server accepted it, [`NoticeStore::mark_sent`].
//! [`NoticeStore::recover_expired`] returns an expired `sending` lease to the queue (nothing
//! was transmitted) and turns an expired `committing` into `uncertain`, which is never sent
//! again: a notice is sent at most once, and only a crash inside the send itself can leave
//! the provider's copy in doubt.

use super::{ItemId, MAX_NOTICE_LABEL_BYTES, MAX_NOTICE_TEXT_BYTES, NoticeId, NoticeStore};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};

/// The notice went out: its items count it (their next notice is scheduled by the worker
/// after the next re-check). A macro so one body serves both transaction types.
macro_rules! mark_items_noticed {
    ($tx:expr, $notice_id:expr, $at:expr, $first_check_after:expr) => {
        sqlx::query(
            "UPDATE notice_items SET notices_sent = notices_sent + 1, \
             unanswered = unanswered + 1, last_notice_at = $2, pending_notice_id = NULL, \
             next_check_at = COALESCE(next_check_at, $2 + $3) \
             WHERE pending_notice_id = $1",
        )
        .bind($notice_id)
        .bind($at)
        .bind($first_check_after)
        .execute(&mut *$tx)
        .await
    };
}

/// A notice to compose.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotice {
    pub report_id: String,
    pub idempotency_key: String,
    pub provider_key: String,
    pub provider_name: String,
    pub hotline: String,
    /// `initial`, `renotice`, `escalation` or `reupload`.
    pub kind: String,
    pub escalation_step: Option<String>,
    pub via_cdn: Option<String>,
    /// `smtp` or `webhook`.
    pub channel: String,
    pub recipient: String,
    /// Every contact in order, as JSON, so a bounce can move on to the next.
    pub contacts: String,
    pub contact_index: i64,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// The XARF reports exactly as sent (a JSON array).
    pub xarf: String,
    pub parent_id: Option<NoticeId>,
    pub test: bool,
}

/// Where a notice is in its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeState {
    Queued,
    Sending,
    Committing,
    Sent,
    Uncertain,
    Failed,
    Withdrawn,
}

impl NoticeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeState::Queued => "queued",
            NoticeState::Sending => "sending",
            NoticeState::Committing => "committing",
            NoticeState::Sent => "sent",
            NoticeState::Uncertain => "uncertain",
            NoticeState::Failed => "failed",
            NoticeState::Withdrawn => "withdrawn",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "queued" => NoticeState::Queued,
            "sending" => NoticeState::Sending,
            "committing" => NoticeState::Committing,
            "sent" => NoticeState::Sent,
            "uncertain" => NoticeState::Uncertain,
            "failed" => NoticeState::Failed,
            "withdrawn" => NoticeState::Withdrawn,
            other => {
                return Err(StoreError::Corrupt {
                    what: "notice state",
                    value: other.to_owned(),
                });
            }
        })
    }
}

/// How a provider answered through its signed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderResponse {
    Acknowledged,
    Disputed,
}

impl ProviderResponse {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderResponse::Acknowledged => "acknowledged",
            ProviderResponse::Disputed => "disputed",
        }
    }
}

/// A notice as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub id: i64,
    pub report_id: String,
    pub idempotency_key: String,
    pub provider_key: String,
    pub provider_name: String,
    pub hotline: String,
    pub kind: String,
    pub escalation_step: Option<String>,
    pub via_cdn: Option<String>,
    pub channel: String,
    pub recipient: String,
    pub contacts: String,
    pub contact_index: i64,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub xarf: String,
    pub state: NoticeState,
    pub attempts: i64,
    pub next_attempt_at: UnixMillis,
    pub last_error: Option<String>,
    pub created_at: UnixMillis,
    pub sent_at: Option<UnixMillis>,
    pub response: Option<String>,
    pub response_at: Option<UnixMillis>,
    pub response_note: Option<String>,
    pub parent_id: Option<i64>,
    pub test: bool,
}

/// One line of a timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeEvent {
    pub notice_id: Option<i64>,
    pub item_id: Option<i64>,
    pub at: UnixMillis,
    pub kind: String,
    pub detail: String,
}

/// Which notices [`NoticeStore::list_notices`] returns.
#[derive(Clone, Debug, Default)]
pub struct NoticeFilter {
    pub state: Option<NoticeState>,
    pub provider_key: Option<String>,
    pub limit: Option<i64>,
}

pub(super) const NOTICE_COLUMNS: &str = "id, report_id, idempotency_key, provider_key, provider_name, \
    hotline, kind, escalation_step, via_cdn, channel, recipient, contacts, contact_index, \
    language, subject, body_text, body_html, xarf, state, attempts, next_attempt_at, \
    last_error, created_at, sent_at, response, response_at, response_note, parent_id, test";

pub(super) fn notice_from_row(row: &impl Get) -> Result<Notice, StoreError> {
    Ok(Notice {
        id: row.i64("id")?,
        report_id: row.text("report_id")?,
        idempotency_key: row.text("idempotency_key")?,
        provider_key: row.text("provider_key")?,
        provider_name: row.text("provider_name")?,
        hotline: row.text("hotline")?,
        kind: row.text("kind")?,
        escalation_step: row.opt_text("escalation_step")?,
        via_cdn: row.opt_text("via_cdn")?,
        channel: row.text("channel")?,
        recipient: row.text("recipient")?,
        contacts: row.text("contacts")?,
        contact_index: row.i64("contact_index")?,
        language: row.text("language")?,
        subject: row.text("subject")?,
        body_text: row.text("body_text")?,
        body_html: row.text("body_html")?,
        xarf: row.text("xarf")?,
        state: NoticeState::parse(&row.text("state")?)?,
        attempts: row.i64("attempts")?,
        next_attempt_at: row.i64("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.i64("created_at")?,
        sent_at: row.opt_i64("sent_at")?,
        response: row.opt_text("response")?,
        response_at: row.opt_i64("response_at")?,
        response_note: row.opt_text("response_note")?,
        parent_id: row.opt_i64("parent_id")?,
        test: row.i64("test")? != 0,
    })
}

const INSERT_NOTICE: &str = "INSERT INTO notices (report_id, idempotency_key, provider_key, \
    provider_name, hotline, kind, escalation_step, via_cdn, channel, recipient, contacts, \
    contact_index, language, subject, body_text, body_html, xarf, next_attempt_at, created_at, \
    parent_id, test) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
    $16, $17, $18, $18, $19, $20) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id";

pub(super) const EVENT: &str =
    "INSERT INTO notice_events (notice_id, item_id, at, kind, detail) VALUES ($1, $2, $3, $4, $5)";

impl NewNotice {
    fn check(&self) -> Result<(), StoreError> {
        for (field, value) in [
            ("report id", &self.report_id),
            ("idempotency key", &self.idempotency_key),
            ("provider key", &self.provider_key),
            ("provider name", &self.provider_name),
            ("hotline", &self.hotline),
            ("notice kind", &self.kind),
            ("channel", &self.channel),
            ("recipient", &self.recipient),
            ("language", &self.language),
            ("subject", &self.subject),
        ] {
            check_text(field, value, MAX_NOTICE_LABEL_BYTES, false)?;
        }
        for (field, value) in [
            ("contacts", &self.contacts),
            ("text body", &self.body_text),
            ("HTML body", &self.body_html),
            ("XARF", &self.xarf),
        ] {
            check_text(field, value, MAX_NOTICE_TEXT_BYTES, false)?;
        }
        Ok(())
    }
}

impl NoticeStore<'_> {
    /// Composes a notice naming `items` and links them to it, in one transaction. Returns
    /// the notice and whether it is new: composing the same key again changes nothing.
    pub async fn create_notice(
        &self,
        notice: &NewNotice,
        items: &[ItemId],
        now: UnixMillis,
    ) -> Result<(NoticeId, bool), StoreError> {
        notice.check()?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let inserted = sqlx::query(INSERT_NOTICE)
                .bind(&notice.report_id)
                .bind(&notice.idempotency_key)
                .bind(&notice.provider_key)
                .bind(&notice.provider_name)
                .bind(&notice.hotline)
                .bind(&notice.kind)
                .bind(&notice.escalation_step)
                .bind(&notice.via_cdn)
                .bind(&notice.channel)
                .bind(&notice.recipient)
                .bind(&notice.contacts)
                .bind(notice.contact_index)
                .bind(&notice.language)
                .bind(&notice.subject)
                .bind(&notice.body_text)
                .bind(&notice.body_html)
                .bind(&notice.xarf)
                .bind(now)
                .bind(notice.parent_id.map(|p| p.0))
                .bind(i64::from(notice.test))
                .fetch_optional(&mut *tx)
                .await?;
            let (id, new) = match inserted {
                Some(row) => (row.i64("id")?, true),
                None => {
                    let row = sqlx::query("SELECT id FROM notices WHERE idempotency_key = $1")
                        .bind(&notice.idempotency_key)
                        .fetch_one(&mut *tx)
                        .await?;
                    (row.i64("id")?, false)
                }
            };
            if new {
                for item in items {
                    sqlx::query(
                        "INSERT INTO notice_entries (notice_id, item_id) VALUES ($1, $2) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(item.0)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE notice_items SET pending_notice_id = $2, notice_due_at = NULL \
                         WHERE id = $1",
                    )
                    .bind(item.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                let detail = format!(
                    "{} notice to {} via {} naming {} URL(s)",
                    notice.kind,
                    notice.recipient,
                    notice.channel,
                    items.len()
                );
                sqlx::query(EVENT)
                    .bind(id)
                    .bind(None::<i64>)
                    .bind(now)
                    .bind("composed")
                    .bind(detail)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok((NoticeId(id), new))
        })
    }

    /// Returns expired leases: `sending` to the queue (nothing was transmitted), `committing`
    /// to `uncertain` (it may have been delivered; never resent). Returns how many changed.
    /// Items of a notice that went out get their first re-check `first_check_after` ms later.
    pub async fn recover_expired(
        &self,
        now: UnixMillis,
        first_check_after: i64,
    ) -> Result<u64, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let requeued = sqlx::query(
                "UPDATE notices SET state = 'queued', lease_owner = NULL, lease_until = NULL \
                 WHERE state = 'sending' AND lease_until < $1 RETURNING id",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            for row in &requeued {
                sqlx::query(EVENT)
                    .bind(row.i64("id")?)
                    .bind(None::<i64>)
                    .bind(now)
                    .bind("requeued")
                    .bind("the worker sending it stopped before transmitting; queued again")
                    .execute(&mut *tx)
                    .await?;
            }
            let uncertain = sqlx::query(
                "UPDATE notices SET state = 'uncertain', sent_at = lease_until, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE state = 'committing' AND lease_until < $1 RETURNING id, sent_at",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            for row in &uncertain {
                let id = row.i64("id")?;
                let at = row.opt_i64("sent_at")?.unwrap_or(now);
                mark_items_noticed!(tx, id, at, first_check_after)?;
                sqlx::query(EVENT)
                    .bind(id)
                    .bind(None::<i64>)
                    .bind(now)
                    .bind("uncertain")
                    .bind("the worker stopped while transmitting; counted as sent, never resent")
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok((requeued.len() + uncertain.len()) as u64)
        })
    }

    /// Leases the next due notice to `owner` until `lease_until` and counts the attempt.
    pub async fn claim_notice(
        &self,
        owner: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<Option<Notice>, StoreError> {
        check_text("lease owner", owner, MAX_NOTICE_LABEL_BYTES, false)?;
        let select = format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE id = $1");
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let candidate = sqlx::query(d.pick(
                "SELECT id FROM notices WHERE state = 'queued' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT 1",
                "SELECT id FROM notices WHERE state = 'queued' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            ))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(candidate) = candidate else {
                tx.commit().await?;
                return Ok(None);
            };
            let id = candidate.i64("id")?;
            sqlx::query(
                "UPDATE notices SET state = 'sending', lease_owner = $2, lease_until = $3, \
                 attempts = attempts + 1 WHERE id = $1",
            )
            .bind(id)
            .bind(owner)
            .bind(lease_until)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            notice_from_row(&row).map(Some)
        })
    }

    /// `sending` → `committing`, just before the bytes that deliver it. False if the lease
    /// was lost (the caller must not send).
    pub async fn mark_committing(&self, id: NoticeId, owner: &str) -> Result<bool, StoreError> {
        self.transition(id, owner, "sending", "committing").await
    }

    async fn transition(
        &self,
        id: NoticeId,
        owner: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let done = sqlx::query(
                "UPDATE notices SET state = $4 WHERE id = $1 AND state = $3 AND lease_owner = $2",
            )
            .bind(id.0)
            .bind(owner)
            .bind(from)
            .bind(to)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// `committing` → `sent`: the server accepted it. Its items count one more notice, and
    /// those never checked get their first re-check `first_check_after` ms later.
    pub async fn mark_sent(
        &self,
        id: NoticeId,
        owner: &str,
        now: UnixMillis,
        detail: &str,
        first_check_after: i64,
    ) -> Result<bool, StoreError> {
        check_text("delivery detail", detail, MAX_NOTICE_LABEL_BYTES, true)?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let done = sqlx::query(
                "UPDATE notices SET state = 'sent', sent_at = $3, lease_owner = NULL, \
                 lease_until = NULL, last_error = NULL \
                 WHERE id = $1 AND state = 'committing' AND lease_owner = $2",
            )
            .bind(id.0)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let ok = done.rows_affected() == 1;
            if ok {
                mark_items_noticed!(tx, id.0, now, first_check_after)?;
                sqlx::query(EVENT)
                    .bind(id.0)
                    .bind(None::<i64>)
                    .bind(now)
                    .bind("sent")
                    .bind(detail)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(ok)
        })
    }

    /// Back to the queue after a failed attempt (before anything was accepted), possibly to
    /// another contact; or `failed` when `next_attempt_at` is `None`, which frees its items
    /// for the next composition at `retry_items_at`.
    #[allow(clippy::too_many_arguments)]
    pub async fn mark_attempt_failed(
        &self,
        id: NoticeId,
        owner: &str,
        now: UnixMillis,
        error: &str,
        next_attempt_at: Option<UnixMillis>,
        next_contact: Option<(i64, &str, &str)>,
        retry_items_at: UnixMillis,
    ) -> Result<bool, StoreError> {
        let error: String = error.chars().take(1000).collect();
        check_text("delivery error", &error, MAX_NOTICE_LABEL_BYTES, true)?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let (state, at) = match next_attempt_at {
                Some(at) => ("queued", at),
                None => ("failed", now),
            };
            let done = sqlx::query(
                "UPDATE notices SET state = $4, next_attempt_at = $5, last_error = $3, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND state IN ('sending', 'committing')",
            )
            .bind(id.0)
            .bind(owner)
            .bind(&error)
            .bind(state)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let ok = done.rows_affected() == 1;
            if ok {
                let kind = if state == "failed" { "failed" } else { "retry" };
                sqlx::query(EVENT)
                    .bind(id.0)
                    .bind(None::<i64>)
                    .bind(now)
                    .bind(kind)
                    .bind(&error)
                    .execute(&mut *tx)
                    .await?;
                if let Some((index, channel, recipient)) = next_contact {
                    sqlx::query(
                        "UPDATE notices SET contact_index = $2, channel = $3, recipient = $4 \
                         WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(index)
                    .bind(channel)
                    .bind(recipient)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(EVENT)
                        .bind(id.0)
                        .bind(None::<i64>)
                        .bind(now)
                        .bind("next_contact")
                        .bind(format!("falling back to {channel} {recipient}"))
                        .execute(&mut *tx)
                        .await?;
                }
                if state == "failed" {
                    sqlx::query(
                        "UPDATE notice_items SET pending_notice_id = NULL, notice_due_at = $2 \
                         WHERE pending_notice_id = $1 AND state = 'open'",
                    )
                    .bind(id.0)
                    .bind(retry_items_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(ok)
        })
    }

    /// Records a provider's answer (first answer wins); its items' unanswered count restarts.
    pub async fn respond(
        &self,
        id: NoticeId,
        response: ProviderResponse,
        note: &str,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        check_text("response note", note, MAX_NOTICE_LABEL_BYTES, true)?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let done = sqlx::query(
                "UPDATE notices SET response = $2, response_at = $3, response_note = $4 \
                 WHERE id = $1 AND response IS NULL AND state IN ('sent', 'uncertain')",
            )
            .bind(id.0)
            .bind(response.as_str())
            .bind(now)
            .bind(note)
            .execute(&mut *tx)
            .await?;
            let ok = done.rows_affected() == 1;
            if ok {
                sqlx::query(
                    "UPDATE notice_items SET unanswered = 0 WHERE id IN \
                     (SELECT item_id FROM notice_entries WHERE notice_id = $1)",
                )
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                sqlx::query(EVENT)
                    .bind(id.0)
                    .bind(None::<i64>)
                    .bind(now)
                    .bind(response.as_str())
                    .bind(note)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(ok)
        })
    }
}
