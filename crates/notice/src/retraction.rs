//! Retractions: when an appeal reverses the review decision behind a notice, the recipient
//! of every notice naming the withdrawn URLs gets one message saying so. XARF v4 has no
//! retraction type, so a retraction is a plain-text and HTML email (templates
//! `{lang}.withdrawal.*`) with no XARF attachment — an automated XARF intake must not read
//! it as a new report — and, on the webhook channel, a JSON event `withdrawn` (see
//! [`crate::deliver::webhook_body`]). The notice row keeps the machine-readable form in its
//! `xarf` column: `{"event": "withdrawn", "reference", "withdraws": [{"url", "references"}]}`.
//!
//! One retraction per recipient and channel per batch, naming each URL with the references
//! of the notices that reported it there. Must never name a URL that is still reported.

use std::collections::BTreeMap;

use aranea_store::{NewNotice, NoticeId, RetractionOwed};
use minijinja::context;
use serde::Serialize;

use crate::NoticeError;
use crate::attribution::Contact;
use crate::compose::{Templates, idempotency_key};
use crate::config::{NoticeConfig, OWN_HOTLINE};
use crate::xarf;

/// The kind of a retraction notice.
pub const KIND: &str = "withdrawal";

/// One withdrawn URL and the references it was reported under to this recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withdrawn {
    pub url: String,
    pub references: Vec<String>,
}

/// The retraction owed to one recipient: its items and what each was reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    pub recipient: String,
    pub channel: String,
    pub item_ids: Vec<i64>,
    pub withdrawn: Vec<Withdrawn>,
    /// The latest notice retracted (the retraction's parent).
    pub parent: i64,
    pub first: RetractionOwed,
}

/// Groups owed (item, notice) pairs into one retraction per recipient and channel.
pub fn group(owed: Vec<RetractionOwed>) -> Vec<Retraction> {
    let mut by_recipient: BTreeMap<(String, String), Vec<RetractionOwed>> = BTreeMap::new();
    for row in owed {
        by_recipient
            .entry((row.recipient.clone(), row.channel.clone()))
            .or_default()
            .push(row);
    }
    by_recipient
        .into_iter()
        .filter_map(|((recipient, channel), rows)| {
            let first = rows.first()?.clone();
            let mut items: BTreeMap<i64, Withdrawn> = BTreeMap::new();
            for row in &rows {
                let entry = items.entry(row.item_id).or_insert_with(|| Withdrawn {
                    url: row.url.clone(),
                    references: Vec::new(),
                });
                if !entry.references.contains(&row.report_id) {
                    entry.references.push(row.report_id.clone());
                }
            }
            let parent = rows.iter().map(|r| r.notice_id).max()?;
            Some(Retraction {
                recipient,
                channel,
                item_ids: items.keys().copied().collect(),
                withdrawn: items.into_values().collect(),
                parent,
                first,
            })
        })
        .collect()
}

/// The retraction's notice row: rendered from the withdrawal templates in the language of
/// the notices it retracts, keyed by recipient and items so composing it twice is one row.
pub fn compose(
    config: &NoticeConfig,
    templates: &Templates,
    retraction: &Retraction,
) -> Result<NewNotice, NoticeError> {
    let first = &retraction.first;
    let key = idempotency_key(
        &format!("{}|{}", retraction.channel, retraction.recipient),
        KIND,
        &retraction.item_ids,
        0,
    );
    let reference = xarf::uuid_from(&key);
    let hotline = if first.hotline == OWN_HOTLINE {
        &config.hotline
    } else {
        config
            .hotlines
            .get(&first.hotline)
            .unwrap_or(&config.hotline)
    };
    let language = templates.withdrawal_language(&first.language);
    let ctx = context! {
        hotline => minijinja::Value::from(minijinja::value::Serde(hotline)),
        provider => first.provider_name.clone(),
        items => minijinja::Value::from(minijinja::value::Serde(&retraction.withdrawn)),
        reference => reference.clone(),
        test => first.test,
    };
    let subject = templates
        .render(&format!("{language}.withdrawal.subject.txt"), &ctx)?
        .trim()
        .to_owned();
    let ctx = context! { subject => subject.clone(), ..ctx };
    let body_text = templates.render(&format!("{language}.withdrawal.txt"), &ctx)?;
    let body_html = templates.render(&format!("{language}.withdrawal.html"), &ctx)?;
    let document = serde_json::json!({
        "event": "withdrawn",
        "reference": reference,
        "withdraws": retraction.withdrawn,
    });
    let contact = Contact {
        channel: retraction.channel.clone(),
        address: retraction.recipient.clone(),
        role: "retraction".to_owned(),
    };
    Ok(NewNotice {
        report_id: reference,
        idempotency_key: key,
        provider_key: first.provider_key.clone(),
        provider_name: first.provider_name.clone(),
        hotline: first.hotline.clone(),
        kind: KIND.to_owned(),
        escalation_step: None,
        via_cdn: first.via_cdn.clone(),
        channel: retraction.channel.clone(),
        recipient: retraction.recipient.clone(),
        contacts: serde_json::to_string(&[contact]).unwrap_or_else(|_| "[]".to_owned()),
        contact_index: 0,
        language,
        subject,
        body_text,
        body_html,
        xarf: document.to_string(),
        parent_id: Some(NoticeId(retraction.parent)),
        test: first.test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(item: i64, notice: i64, recipient: &str) -> RetractionOwed {
        RetractionOwed {
            item_id: item,
            url: format!("http://x.example/{item}"),
            notice_id: notice,
            report_id: format!("ref-{notice}"),
            recipient: recipient.into(),
            channel: "smtp".into(),
            provider_key: "asn:64501".into(),
            provider_name: "Quickhost".into(),
            hotline: OWN_HOTLINE.into(),
            language: "fr".into(),
            via_cdn: None,
            test: false,
            sent_at: Some(1),
        }
    }

    #[test]
    fn one_retraction_per_recipient_names_each_url_with_its_references() {
        let groups = group(vec![
            owed(1, 10, "abuse@q.example"),
            owed(1, 11, "abuse@q.example"),
            owed(2, 11, "abuse@q.example"),
            owed(1, 12, "noc@upstream.example"),
        ]);
        assert_eq!(groups.len(), 2);
        let q = &groups[0];
        assert_eq!(q.recipient, "abuse@q.example");
        assert_eq!(q.item_ids, [1, 2]);
        assert_eq!(q.withdrawn[0].references, ["ref-10", "ref-11"]);
        assert_eq!(q.withdrawn[1].references, ["ref-11"]);
        assert_eq!(q.parent, 11);
        let config = NoticeConfig::default();
        let templates = Templates::load(None).unwrap();
        let notice = compose(&config, &templates, q).unwrap();
        assert_eq!(notice.kind, "withdrawal");
        assert_eq!(notice.language, "fr");
        assert!(notice.subject.starts_with("Retrait de notre signalement"));
        assert!(
            notice
                .body_text
                .contains("Nous retirons notre signalement de http://x.example/2"),
            "{}",
            notice.body_text
        );
        assert!(notice.body_text.contains("ref-10, ref-11"));
        let document: serde_json::Value = serde_json::from_str(&notice.xarf).unwrap();
        assert_eq!(document["event"], "withdrawn");
        assert_eq!(document["withdraws"][1]["url"], "http://x.example/2");
        // Same recipient and items: the same key; another recipient: another key.
        assert_eq!(
            compose(&config, &templates, q).unwrap().idempotency_key,
            notice.idempotency_key
        );
        let upstream = compose(&config, &templates, &groups[1]).unwrap();
        assert_ne!(upstream.idempotency_key, notice.idempotency_key);
    }
}
