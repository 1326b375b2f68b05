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

    fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, NoticeError> {
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

/// One URL as the templates see it.
#[derive(Serialize)]
struct TemplateItem<'a> {
    url: &'a str,
    first_seen: String,
    sha256: &'a str,
    md5: &'a str,
    classification: &'a str,
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
    /// Notices sent about these items so far (for "reminder #n").
    pub notices_before: i64,
    pub parent_id: Option<aranea_store::NoticeId>,
}

/// The idempotency key of a notice about `items` (sorted ids) of `kind` to `provider_key`,
/// in a given round (the number of notices already sent about the first item).
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
    let item_ids: Vec<i64> = draft.items.iter().map(|i| i.id).collect();
    let kind = draft.kind.as_str();
    let step = match &draft.kind {
        NoticeKind::Escalation(step) => Some(step.clone()),
        _ => None,
    };
    let round = draft.notices_before;
    let key = idempotency_key(
        draft.provider_key,
        &format!("{kind}:{}", step.as_deref().unwrap_or("")),
        &item_ids,
        round,
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
