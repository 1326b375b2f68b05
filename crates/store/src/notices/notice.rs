//! Notices as records: what a notice is (its kind, channel, recipient, rendered text and
//! XARF exactly as sent, delivery state), composing one per provider and batch (idempotent on
//! its key, linking its items), and the provider's answer through its signed link. Delivery
//! (leases, the commit around the send, retries, crash recovery) is in `delivery`.

use super::{ItemId, MAX_NOTICE_LABEL_BYTES, MAX_NOTICE_TEXT_BYTES, NoticeId, NoticeStore};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};

/// A notice to compose.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotice {
    pub report_id: String,
    pub idempotency_key: String,
    pub provider_key: String,
    pub provider_name: String,
    pub hotline: String,
    /// `initial`, `renotice`, `escalation`, `reupload`, or `withdrawal` (a retraction of
    /// earlier notices to the same recipient about its items; never counted as a notice
    /// about them, and never makes them pending).
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
    /// Only notices this hotline sent.
    pub hotline: Option<String>,
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
                    if notice.kind == "withdrawal" {
                        continue;
                    }
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
