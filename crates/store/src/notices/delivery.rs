//! Delivering notices: leasing a due one to a worker, the two-step commit around the send,
//! retries and fallback to the next contact, and recovery after a worker died.
//!
//! The delivery contract: [`NoticeStore::claim_notice`] moves a due notice to `sending`;
//! before the first byte that could deliver it, the sender calls
//! [`NoticeStore::mark_committing`]; after the server accepted it, [`NoticeStore::mark_sent`].
//! [`NoticeStore::recover_expired`] returns an expired `sending` lease to the queue (nothing
//! was transmitted) and an expired `committing` one too, to be sent again under the same
//! idempotency key: the worker died while transmitting, so the provider may or may not hold
//! a copy, and the receiver, not the sender, can tell (it deduplicates by the key). Once the
//! attempts are spent a `committing` notice becomes `uncertain`: counted as sent, never sent
//! again.

use super::notice::{EVENT, NOTICE_COLUMNS, Notice, notice_from_row};
use super::withdrawals::mark_retracted;
use super::{MAX_NOTICE_LABEL_BYTES, NoticeId, NoticeStore};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};

/// The notice went out: its items count it (their next notice is scheduled by the worker
/// after the next re-check). An escalation restarts the unanswered count, so the provider
/// gets as many reminders before the next step as before the first. A macro so one body
/// serves both transaction types.
macro_rules! mark_items_noticed {
    ($tx:expr, $notice_id:expr, $at:expr, $first_check_after:expr) => {
        sqlx::query(
            "UPDATE notice_items SET notices_sent = notices_sent + 1, \
             unanswered = CASE WHEN (SELECT kind FROM notices WHERE id = $1) = 'escalation' \
             THEN 0 ELSE unanswered + 1 END, \
             last_notice_at = $2, pending_notice_id = NULL, \
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

impl NoticeStore<'_> {
    /// Returns expired leases. `sending` goes back to the queue: nothing was transmitted.
    /// `committing` (the worker died while transmitting) goes back to the queue too, due at
    /// once, to be sent again under the same idempotency key, while it has had fewer than
    /// `max_attempts` attempts; after that it becomes `uncertain`, counts as sent and is never
    /// sent again. Returns how many changed. Items of an `uncertain` notice get their first
    /// re-check `first_check_after` ms later.
    pub async fn recover_expired(
        &self,
        now: UnixMillis,
        first_check_after: i64,
        max_attempts: i64,
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
            let resend = sqlx::query(
                "UPDATE notices SET state = 'queued', next_attempt_at = $1, \
                 lease_owner = NULL, lease_until = NULL, \
                 last_error = 'the worker stopped while transmitting' \
                 WHERE state = 'committing' AND lease_until < $1 AND attempts < $2 \
                 RETURNING id",
            )
            .bind(now)
            .bind(max_attempts)
            .fetch_all(&mut *tx)
            .await?;
            for row in &resend {
                sqlx::query(EVENT)
                    .bind(row.i64("id")?)
                    .bind(None::<i64>)
                    .bind(now)
                    .bind("resend")
                    .bind(
                        "the worker stopped while transmitting, so the provider may hold a \
                         copy; sending again under the same idempotency key",
                    )
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
                    .bind(
                        "the worker stopped while transmitting and the attempts are spent; \
                         counted as sent, never sent again",
                    )
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok((requeued.len() + resend.len() + uncertain.len()) as u64)
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
                let retracted = format!("retracted by withdrawal notice {} ({detail})", id.0);
                mark_retracted!(tx, id.0, now, retracted)?;
            }
            tx.commit().await?;
            Ok(ok)
        })
    }

    /// Back to the queue after a failed attempt (before anything was accepted), possibly to
    /// another contact, which starts with no attempts counted; or `failed` when `next_attempt_at` is `None`, which frees its items
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
                    // A new contact gets its own attempts.
                    sqlx::query(
                        "UPDATE notices SET contact_index = $2, channel = $3, recipient = $4, \
                         attempts = 0 WHERE id = $1",
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
}
