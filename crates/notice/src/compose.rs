//! Composing a notice: the XARF reports, the subject and the plain-text and HTML bodies from
//! templates a hotline can edit (minijinja; English and French built in), and the signed
//! respond link. The idempotency key names the provider, kind, step and items, so the same
//! decision composed twice is one notice.
//!
//! Must never put media, thumbnails or anything but URLs, hashes and ids in a notice.

use std::path::Path;

use aranea_store::{NewNotice, NoticeItem};
use minijinja::{Environment, context};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::NoticeError;
use crate::attribution::Contact;
use crate::clock::{UnixMillis, rfc3339};
use crate::config::{HotlineConfig, NoticeConfig};
use crate::link;
use crate::xarf;

/// Languages with built-in templates.
pub const LANGUAGES: [&str; 2] = ["en", "fr"];
/// Template evaluation budget: a hotline's template cannot loop forever.
const FUEL: u64 = 2_000_000;

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
}

fn builtin(name: &str) -> Option<&'static str> {
    Some(match name {
        "en.subject.txt" => include_str!("../templates/en.subject.txt"),
        "en.txt" => include_str!("../templates/en.txt"),
        "en.html" => include_str!("../templates/en.html"),
        "fr.subject.txt" => include_str!("../templates/fr.subject.txt"),
        "fr.txt" => include_str!("../templates/fr.txt"),
        "fr.html" => include_str!("../templates/fr.html"),
        "en.withdrawal.subject.txt" => include_str!("../templates/en.withdrawal.subject.txt"),
        "en.withdrawal.txt" => include_str!("../templates/en.withdrawal.txt"),
        "en.withdrawal.html" => include_str!("../templates/en.withdrawal.html"),
        "fr.withdrawal.subject.txt" => include_str!("../templates/fr.withdrawal.subject.txt"),
        "fr.withdrawal.txt" => include_str!("../templates/fr.withdrawal.txt"),
        "fr.withdrawal.html" => include_str!("../templates/fr.withdrawal.html"),
        _ => return None,
    })
}

impl Templates {
    /// The built-in templates, each replaced by `{dir}/{name}` when that file exists; extra
    /// languages are any `{lang}.txt` found there.
    pub fn load(dir: Option<&Path>) -> Result<Templates, NoticeError> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        let mut names: Vec<String> = LANGUAGES
            .iter()
            .flat_map(|l| {
                [
                    format!("{l}.subject.txt"),
                    format!("{l}.txt"),
                    format!("{l}.html"),
                    format!("{l}.withdrawal.subject.txt"),
                    format!("{l}.withdrawal.txt"),
                    format!("{l}.withdrawal.html"),
                ]
            })
            .collect();
        if let Some(dir) = dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if (name.ends_with(".txt") || name.ends_with(".html")) && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        for name in names {
            let source = match dir.map(|d| d.join(&name)).filter(|p| p.is_file()) {
                Some(path) => {
                    std::fs::read_to_string(&path).map_err(|e| NoticeError::Template {
                        name: name.clone(),
                        message: e.to_string(),
                    })?
                }
                None => match builtin(&name) {
                    Some(text) => text.to_owned(),
                    None => continue,
                },
            };
            env.add_template_owned(name.clone(), source)
                .map_err(|e| NoticeError::Template {
                    name,
                    message: e.to_string(),
                })?;
        }
        Ok(Templates { env })
    }

    pub(crate) fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, NoticeError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| NoticeError::Template {
                name: name.to_owned(),
                message: e.to_string(),
            })?;
        template.render(ctx).map_err(|e| NoticeError::Template {
            name: name.to_owned(),
            message: e.to_string(),
        })
    }

    fn has(&self, language: &str) -> bool {
        self.env.get_template(&format!("{language}.txt")).is_ok()
    }

    /// `language` when it has a withdrawal template, else English.
    pub(crate) fn withdrawal_language(&self, language: &str) -> String {
        if self
            .env
            .get_template(&format!("{language}.withdrawal.txt"))
            .is_ok()
        {
            language.to_owned()
        } else {
            "en".to_owned()
        }
    }
}

/// What kind of notice, and for escalations the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    Initial,
    Renotice,
    Escalation(String),
    Reupload { parent_report: String },
}

impl NoticeKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            NoticeKind::Initial => "initial",
            NoticeKind::Renotice => "renotice",
            NoticeKind::Escalation(_) => "escalation",
            NoticeKind::Reupload { .. } => "reupload",
        }
    }
}

/// One URL as the templates see it. Items batched in one notice keep their own history:
/// `notice_number` counts the notices about this URL (this one included), and
/// `escalation_level` the ladder steps already spent for it.
#[derive(Serialize)]
struct TemplateItem<'a> {
    url: &'a str,
    first_seen: String,
    sha256: &'a str,
    md5: &'a str,
    classification: &'a str,
    notice_number: i64,
    escalation_level: i64,
}

/// Everything a notice is made from.
pub struct Draft<'a> {
    pub provider_key: &'a str,
    pub provider_name: &'a str,
    pub items: &'a [NoticeItem],
    pub kind: NoticeKind,
    /// Contacts in order; `contact_index` is the one to use.
    pub contacts: &'a [Contact],
    pub contact_index: usize,
    pub hotline_id: &'a str,
    pub hotline: &'a HotlineConfig,
    pub language: String,
    /// Notices sent so far about the most-noticed of these items (for the subject's
    /// "reminder #n"; each URL's own count is listed beside it).
    pub notices_before: i64,
    pub parent_id: Option<aranea_store::NoticeId>,
}

/// The idempotency key of a notice of `kind` to `provider_key` about `items`, from each
/// item's id and the point of its own history the notice answers (notices sent so far, and
/// when this one fell due). Composing one decision twice (two workers, a retry after a
/// crash) gives one key; a later decision about the same items — the next reminder, or a
/// new attempt after a notice failed for good — gives a new one. Keying on the first item's
/// count alone gave a failed notice's retry its key, so its items were never noticed again.
pub fn batch_key(provider_key: &str, kind: &str, items: &[NoticeItem]) -> String {
    let mut history: Vec<(i64, i64, i64)> = items
        .iter()
        .map(|i| (i.id, i.notices_sent, i.notice_due_at.unwrap_or(0)))
        .collect();
    history.sort_unstable();
    let joined: Vec<String> = history
        .iter()
        .map(|(id, sent, due)| format!("{id}:{sent}:{due}"))
        .collect();
    let digest = Sha256::digest(format!("{provider_key}|{kind}|{}", joined.join(",")));
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("aranea-{hex}")
}

/// The idempotency key of a message about `items` (sorted ids) of `kind` to `provider_key`,
/// in a given round.
pub fn idempotency_key(provider_key: &str, kind: &str, items: &[i64], round: i64) -> String {
    let mut ids = items.to_vec();
    ids.sort_unstable();
    let joined: Vec<String> = ids.iter().map(i64::to_string).collect();
    let digest = Sha256::digest(format!(
        "{provider_key}|{kind}|{round}|{}",
        joined.join(",")
    ));
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("aranea-{hex}")
}

/// Builds the notice row (rendered and with its XARF reports).
pub fn compose(
    config: &NoticeConfig,
    templates: &Templates,
    draft: &Draft<'_>,
    now: UnixMillis,
    link_secret: &[u8],
) -> Result<NewNotice, NoticeError> {
    let contact = draft
        .contacts
        .get(draft.contact_index)
        .ok_or(NoticeError::NoContact {
            provider: draft.provider_name.to_owned(),
        })?;
    let kind = draft.kind.as_str();
    let step = match &draft.kind {
        NoticeKind::Escalation(step) => Some(step.clone()),
        _ => None,
    };
    let key = batch_key(
        draft.provider_key,
        &format!("{kind}:{}", step.as_deref().unwrap_or("")),
        draft.items,
    );
    let reference = xarf::uuid_from(&key);
    let reports: Vec<serde_json::Value> = draft
        .items
        .iter()
        .map(|item| {
            let report_id = xarf::uuid_from(&format!("{key}:{}", item.id));
            xarf::report(
                &report_id,
                now,
                draft.hotline,
                &xarf::ReportItem {
                    url: &item.url,
                    host: &item.host,
                    ip: None,
                    sha256: &item.sha256,
                    md5: &item.md5,
                    sha1: &item.sha1,
                    media_kind: &item.media_kind,
                    classification: &item.classification,
                    first_seen_at: item.first_seen_at,
                    provider: &item.provider_name,
                    asn: item.asn,
                    country: item.country.as_deref(),
                },
                config.test,
            )
        })
        .collect();
    let xarf = serde_json::to_string_pretty(&reports).map_err(|e| NoticeError::Template {
        name: "xarf".to_owned(),
        message: e.to_string(),
    })?;
    let language = if templates.has(&draft.language) {
        draft.language.clone()
    } else {
        "en".to_owned()
    };
    // The link names the notice row, which exists only after insertion: it carries the
    // reference, and the store maps reference → row. See `respond_url`.
    let expires = now.saturating_add(
        i64::try_from(config.link_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
    );
    let respond = respond_url(config, link_secret, &reference, expires);
    let items: Vec<TemplateItem<'_>> = draft
        .items
        .iter()
        .map(|i| TemplateItem {
            url: &i.url,
            first_seen: rfc3339(i.first_seen_at),
            sha256: &i.sha256,
            md5: &i.md5,
            classification: if i.classification.is_empty() {
                "unspecified"
            } else {
                &i.classification
            },
            notice_number: i.notices_sent.saturating_add(1),
            escalation_level: i.escalation_level,
        })
        .collect();
    let via_cdn = draft.items.first().and_then(|i| i.via_cdn.clone());
    let parent_reference = match &draft.kind {
        NoticeKind::Reupload { parent_report } => parent_report.clone(),
        _ => String::new(),
    };
    let mut ctx = context! {
        hotline => minijinja::Value::from(minijinja::value::Serde(draft.hotline)),
        provider => draft.provider_name,
        subject_provider => draft.items.first().map(|i| i.provider_name.clone()).unwrap_or_default(),
        items => minijinja::Value::from(minijinja::value::Serde(&items)),
        kind => kind,
        escalation_step => step.clone().unwrap_or_default(),
        notice_number => draft.notices_before + 1,
        via_cdn => via_cdn,
        asn => draft.items.first().and_then(|i| i.asn),
        respond_url => respond,
        link_expires => rfc3339(expires),
        reference => reference.clone(),
        parent_reference => parent_reference,
        test => config.test,
    };
    let subject = templates
        .render(&format!("{language}.subject.txt"), &ctx)?
        .trim()
        .to_owned();
    ctx = context! { subject => subject.clone(), ..ctx };
    let body_text = templates.render(&format!("{language}.txt"), &ctx)?;
    let body_html = templates.render(&format!("{language}.html"), &ctx)?;
    Ok(NewNotice {
        report_id: reference,
        idempotency_key: key,
        provider_key: draft.provider_key.to_owned(),
        provider_name: draft.provider_name.to_owned(),
        hotline: draft.hotline_id.to_owned(),
        kind: kind.to_owned(),
        escalation_step: step,
        via_cdn: draft.items.first().and_then(|i| i.via_cdn.clone()),
        channel: contact.channel.clone(),
        recipient: contact.address.clone(),
        contacts: serde_json::to_string(draft.contacts).unwrap_or_else(|_| "[]".to_owned()),
        contact_index: i64::try_from(draft.contact_index).unwrap_or(0),
        language,
        subject,
        body_text,
        body_html,
        xarf,
        parent_id: draft.parent_id,
        test: config.test,
    })
}

/// The provider's respond link for the notice with `reference`, valid until `expires`.
pub fn respond_url(
    config: &NoticeConfig,
    secret: &[u8],
    reference: &str,
    expires: UnixMillis,
) -> String {
    let token = link::sign(secret, reference, expires);
    format!("{}?t={token}", config.respond_base_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, notices_sent: i64, due: i64) -> NoticeItem {
        NoticeItem {
            id,
            sighting_id: Some(id),
            url: format!("http://files.example/{id}.jpg"),
            host: "files.example".into(),
            sha256: "aa".repeat(32),
            md5: "bb".repeat(16),
            sha1: "cc".repeat(20),
            pdq: None,
            media_kind: "jpeg".into(),
            classification: "csam".into(),
            first_seen_at: 0,
            created_at: 0,
            provider_key: "asn:64501".into(),
            provider_name: "Quickhost".into(),
            asn: Some(64501),
            prefix: None,
            country: Some("NL".into()),
            hotline: "own".into(),
            via_cdn: None,
            method: "rdap".into(),
            confidence_pct: 90,
            contacts: "[]".into(),
            upstream_contact: None,
            state: "open".into(),
            removed_at: None,
            removal_kind: None,
            pending_outcome: None,
            pending_since: None,
            next_check_at: None,
            checks_done: 0,
            notices_sent,
            unanswered: notices_sent,
            escalation_level: 0,
            notice_due_at: Some(due),
            pending_notice_id: None,
            last_notice_at: None,
            reupload_of: None,
        }
    }

    fn render(items: &[NoticeItem]) -> NewNotice {
        let config = NoticeConfig::default();
        let contacts = [Contact {
            channel: "smtp".into(),
            address: "abuse@q.example".into(),
            role: "abuse".into(),
        }];
        let draft = Draft {
            provider_key: "asn:64501",
            provider_name: "Quickhost",
            items,
            kind: NoticeKind::Renotice,
            contacts: &contacts,
            contact_index: 0,
            hotline_id: "own",
            hotline: &config.hotline,
            language: "en".into(),
            notices_before: items.iter().map(|i| i.notices_sent).max().unwrap_or(0),
            parent_id: None,
        };
        let templates = Templates::load(None).unwrap();
        compose(&config, &templates, &draft, 0, b"k").unwrap()
    }

    #[test]
    fn a_batch_lists_each_url_with_its_own_notice_count() {
        let notice = render(&[item(1, 3, 100), item(2, 1, 100)]);
        let text = &notice.body_text;
        let one = text.find("files.example/1.jpg").unwrap();
        let two = text.find("files.example/2.jpg").unwrap();
        let four = text.find("our notice #4 about this URL").unwrap();
        let second = text.find("our notice #2 about this URL").unwrap();
        assert!(one < four && four < two && two < second, "{text}");
        assert!(
            notice.subject.starts_with("Reminder #4"),
            "{}",
            notice.subject
        );
        assert!(
            notice.body_html.contains("2.jpg (notice #2)"),
            "{}",
            notice.body_html
        );
    }

    #[test]
    fn the_key_follows_every_item_history_not_the_first_one() {
        let key = |items: &[NoticeItem]| render(items).idempotency_key;
        let base = key(&[item(1, 3, 100), item(2, 1, 100)]);
        assert_eq!(base, key(&[item(2, 1, 100), item(1, 3, 100)]), "order-free");
        assert_ne!(
            base,
            key(&[item(1, 3, 100), item(2, 2, 100)]),
            "second item's count"
        );
        // The same items due again after a notice failed for good: a new notice.
        assert_ne!(base, key(&[item(1, 3, 200), item(2, 1, 200)]));
    }
}
