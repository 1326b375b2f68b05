//! The delivery stage: claim due notices under a lease, send each by its channel, and record
//! the outcome — sent, retried with back-off, or bounced to the next contact. A notice that
//! fails for good (the relay kept failing, or no contact is left) is logged at ERROR level
//! with its id and listed in the pass report: nothing else will send it, so an operator must
//! look (`aranea notices list --status failed`, then `aranea notices resend ID`).

use aranea_store::{Notice, NoticeId};

use super::{NoticeEngine, PassReport, ms};
use crate::NoticeError;
use crate::attribution::Contact;
use crate::deliver::{self, Outcome};

/// Notices sent per pass at most (the rest wait for the next pass).
const MAX_PER_PASS: usize = 500;
/// How long a claimed notice stays leased (real sends finish well within it).
const LEASE_MS: i64 = 10 * 60 * 1000;

impl NoticeEngine {
    pub(super) async fn deliver_due(&self, report: &mut PassReport) -> Result<(), NoticeError> {
        for _ in 0..MAX_PER_PASS {
            let now = self.clock.now();
            let Some(notice) = self
                .store
                .notices()
                .claim_notice(&self.worker, now, now.saturating_add(LEASE_MS))
                .await?
            else {
                return Ok(());
            };
            deliver::crash_point("claimed");
            let outcome = self.send(&notice).await;
            self.record_outcome(&notice, outcome, report).await?;
        }
        Ok(())
    }

    async fn send(&self, notice: &Notice) -> Outcome {
        let id = NoticeId(notice.id);
        let commit = || async {
            self.store
                .notices()
                .mark_committing(id, &self.worker)
                .await
                .unwrap_or(false)
        };
        match notice.channel.as_str() {
            "webhook" => {
                let configured = self
                    .config
                    .webhooks
                    .values()
                    .find(|w| w.url == notice.recipient)
                    .map(|w| w.secret.clone().into_bytes());
                let secret = match configured {
                    Some(secret) => secret,
                    None => match self.link_secret().await {
                        Ok(key) => key,
                        Err(e) => return Outcome::Relay(e.to_string()),
                    },
                };
                let now_secs = self.clock.now() / 1000;
                deliver::send_webhook(&self.webhooks, notice, &secret, now_secs, commit).await
            }
            _ => match deliver::email_message(&self.config, notice, self.dkim.as_ref()) {
                Ok(message) => deliver::send_smtp(&self.config, notice, &message, commit).await,
                Err(e) => Outcome::Permanent(e),
            },
        }
    }

    async fn record_outcome(
        &self,
        notice: &Notice,
        outcome: Outcome,
        report: &mut PassReport,
    ) -> Result<(), NoticeError> {
        let id = NoticeId(notice.id);
        let now = self.clock.now();
        let store = self.store.notices();
        let retry_items_at = now.saturating_add(ms(self.config.renotify_secs));
        match outcome {
            Outcome::Accepted(detail) => {
                let detail = format!("to {} via {}: {detail}", notice.recipient, notice.channel);
                store
                    .mark_sent(id, &self.worker, now, &detail, self.first_check_after())
                    .await?;
                deliver::crash_point("recorded");
                report.sent += 1;
            }
            Outcome::LeaseLost => {}
            Outcome::Transient(error) | Outcome::Relay(error)
                if notice.attempts < i64::from(self.config.max_attempts.max(1)) =>
            {
                let exponent = u32::try_from(notice.attempts.clamp(1, 20) - 1).unwrap_or(0);
                let delay = ms(self.config.retry_base_secs).saturating_mul(1 << exponent);
                store
                    .mark_attempt_failed(
                        id,
                        &self.worker,
                        now,
                        &error,
                        Some(now.saturating_add(delay)),
                        None,
                        retry_items_at,
                    )
                    .await?;
                report.retried += 1;
            }
            Outcome::Relay(error) => {
                // Our relay, not the contact, kept failing: the notice fails and its items
                // are composed again later; the contact stays alive.
                store
                    .mark_attempt_failed(
                        id,
                        &self.worker,
                        now,
                        &format!("relay kept failing: {error}"),
                        None,
                        None,
                        retry_items_at,
                    )
                    .await?;
                failed(notice, &format!("relay kept failing: {error}"), report);
            }
            Outcome::Transient(error) | Outcome::Permanent(error) => {
                // Bounced, or out of attempts: this contact is dead for a day; the next one
                // gets the same notice now.
                store
                    .mark_contact_dead(
                        &notice.recipient,
                        now.saturating_add(ms(self.config.dead_contact_secs)),
                        &error,
                        now,
                    )
                    .await?;
                let contacts: Vec<Contact> =
                    serde_json::from_str(&notice.contacts).unwrap_or_default();
                let dead = store.dead_contacts(now).await?;
                let start = usize::try_from(notice.contact_index).unwrap_or(0) + 1;
                let next = contacts
                    .iter()
                    .enumerate()
                    .skip(start)
                    .find(|(_, c)| !dead.contains(&c.address));
                match next {
                    Some((index, contact)) => {
                        store
                            .mark_attempt_failed(
                                id,
                                &self.worker,
                                now,
                                &format!("bounced: {error}"),
                                Some(now),
                                Some((
                                    i64::try_from(index).unwrap_or(0),
                                    contact.channel.as_str(),
                                    contact.address.as_str(),
                                )),
                                retry_items_at,
                            )
                            .await?;
                        report.retried += 1;
                    }
                    None => {
                        store
                            .mark_attempt_failed(
                                id,
                                &self.worker,
                                now,
                                &format!("no contact left: {error}"),
                                None,
                                None,
                                retry_items_at,
                            )
                            .await?;
                        failed(notice, &format!("no contact left: {error}"), report);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A notice failed for good: counted, listed, and logged at ERROR level with what an
/// operator needs to act on it.
fn failed(notice: &Notice, reason: &str, report: &mut PassReport) {
    report.failed += 1;
    report.failed_notices.push(notice.id);
    tracing::error!(
        notice_id = notice.id,
        reference = %notice.report_id,
        kind = %notice.kind,
        provider = %notice.provider_name,
        recipient = %notice.recipient,
        channel = %notice.channel,
        attempts = notice.attempts,
        reason,
        "notice {} failed and will not be retried; after fixing the cause: aranea notices resend {}",
        notice.id,
        notice.id
    );
}
