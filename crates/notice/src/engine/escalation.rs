//! The escalation ladder: which notice an item gets next (reminder or escalation), whom an
//! escalation goes to (the first unused ladder step with a live target: second contact,
//! upstream network, the hosting country's hotline, the police), and the record that each
//! step is used at most once per item. Must not send anything: composing happens in the
//! engine, delivery in `sending`.

use aranea_store::{ItemId, NoticeId, NoticeItem};

use super::NoticeEngine;
use crate::NoticeError;
use crate::attribution::Contact;
use crate::clock::UnixMillis;

/// Whom a notice goes to: its kind, the contacts, which one, and the ladder step taken.
pub(super) type Recipients = (String, Vec<Contact>, usize, Option<(usize, String)>);

impl NoticeEngine {
    /// Initial (or re-upload) first; then reminders to the provider, and after every
    /// `escalate_after` unanswered ones the next unused step of the ladder.
    pub(super) fn kind_of(&self, item: &NoticeItem) -> String {
        let per_step = i64::from(self.config.escalate_after.max(1));
        let steps = i64::try_from(self.config.escalation_ladder.len()).unwrap_or(0);
        if item.notices_sent == 0 {
            if item.reupload_of.is_some() {
                "reupload"
            } else {
                "initial"
            }
        } else if item.unanswered >= per_step && item.escalation_level < steps {
            "escalation"
        } else {
            "renotice"
        }
        .to_owned()
    }

    /// After composing an escalation: the step taken and every step before it are spent (a
    /// reminder composed because none had a target spends the whole ladder).
    pub(super) async fn spend_ladder_steps(
        &self,
        notice: NoticeId,
        items: &[ItemId],
        step: Option<&(usize, String)>,
        now: UnixMillis,
    ) -> Result<(), NoticeError> {
        let ladder = self.config.escalation_ladder.len();
        let (level, detail) = match step {
            Some((position, name)) => (position + 1, format!("escalated to step {name}")),
            None => (
                ladder,
                "escalation ladder exhausted: reminding the provider".to_owned(),
            ),
        };
        let level = i64::try_from(level).unwrap_or(i64::MAX);
        self.store
            .notices()
            .pass_escalation_steps(items, level)
            .await?;
        for item in items {
            self.store
                .notices()
                .record_event(Some(notice), Some(*item), now, "escalated", &detail)
                .await?;
        }
        Ok(())
    }

    /// Whom a notice goes to: (kind, contacts, index, escalation step with its ladder
    /// position). An escalation takes the first ladder step from `level` (the steps before
    /// it are spent) that has a live target; with none left it becomes a reminder.
    pub(super) fn recipients(
        &self,
        kind: &str,
        level: i64,
        item: &NoticeItem,
        contacts: Vec<Contact>,
        dead: &[String],
    ) -> Option<Recipients> {
        let alive = |c: &Contact| !dead.contains(&c.address);
        if kind != "escalation" {
            let index = contacts.iter().position(alive)?;
            return Some((kind.to_owned(), contacts, index, None));
        }
        let ladder = &self.config.escalation_ladder;
        let start = usize::try_from(level).unwrap_or(0);
        for (position, step) in ladder.iter().enumerate().skip(start) {
            let target = match step.as_str() {
                "second_contact" => contacts.iter().skip(1).find(|c| alive(c)).cloned(),
                "upstream" => item.upstream_contact.clone().map(|address| Contact {
                    channel: "smtp".to_owned(),
                    address,
                    role: "upstream".to_owned(),
                }),
                "country_hotline" => {
                    let (id, hotline) = self.config.hotline_for(item.country.as_deref());
                    (id != crate::config::OWN_HOTLINE).then(|| Contact {
                        channel: "smtp".to_owned(),
                        address: hotline.email.clone(),
                        role: format!("hotline:{id}"),
                    })
                }
                "police" => self.config.police_contact.clone().map(|address| Contact {
                    channel: "smtp".to_owned(),
                    address,
                    role: "police".to_owned(),
                }),
                _ => None,
            };
            if let Some(target) = target.filter(|c| alive(c)) {
                let step = Some((position, step.clone()));
                return Some(("escalation".to_owned(), vec![target], 0, step));
            }
        }
        // Ladder exhausted: keep reminding the provider.
        let index = contacts.iter().position(alive)?;
        Some(("renotice".to_owned(), contacts, index, None))
    }
}
