//! JSON views of notices, items and timelines, as the CLI prints them and the server's
//! native API can return them. Never includes media: there is none to include.

use aranea_store::{Notice, NoticeEvent, NoticeItem};
use serde_json::{Value, json};

use crate::clock::rfc3339;

fn time(at: Option<i64>) -> Value {
    at.map_or(Value::Null, |t| json!(rfc3339(t)))
}

/// A notice without its rendered bodies (see [`notice_full`]).
pub fn notice_summary(n: &Notice) -> Value {
    json!({
        "id": n.id,
        "reference": n.report_id,
        "idempotency_key": n.idempotency_key,
        "provider": n.provider_name,
        "provider_key": n.provider_key,
        "hotline": n.hotline,
        "kind": n.kind,
        "escalation_step": n.escalation_step,
        "via_cdn": n.via_cdn,
        "channel": n.channel,
        "recipient": n.recipient,
        "language": n.language,
        "state": n.state.as_str(),
        "attempts": n.attempts,
        "last_error": n.last_error,
        "created_at": time(Some(n.created_at)),
        "sent_at": time(n.sent_at),
        "response": n.response,
        "response_at": time(n.response_at),
        "parent_id": n.parent_id,
        "test": n.test,
        "subject": n.subject,
    })
}

/// A notice with its text, HTML and XARF reports.
pub fn notice_full(n: &Notice) -> Value {
    let mut value = notice_summary(n);
    if let Some(map) = value.as_object_mut() {
        map.insert("body_text".into(), json!(n.body_text));
        map.insert("body_html".into(), json!(n.body_html));
        map.insert(
            "xarf".into(),
            serde_json::from_str(&n.xarf).unwrap_or(Value::Null),
        );
    }
    value
}

/// An item with its attribution and lifecycle.
pub fn item(i: &NoticeItem) -> Value {
    json!({
        "id": i.id,
        "url": i.url,
        "host": i.host,
        "sha256": i.sha256,
        "md5": i.md5,
        "classification": i.classification,
        "provider": i.provider_name,
        "provider_key": i.provider_key,
        "asn": i.asn,
        "prefix": i.prefix,
        "country": i.country,
        "hotline": i.hotline,
        "via_cdn": i.via_cdn,
        "attribution_method": i.method,
        "confidence": i.confidence_pct,
        "state": i.state,
        "removed_at": time(i.removed_at),
        "removal_kind": i.removal_kind,
        "notices_sent": i.notices_sent,
        "escalation_level": i.escalation_level,
        "next_check_at": time(i.next_check_at),
        "reupload_of": i.reupload_of,
    })
}

/// One timeline line.
pub fn event(e: &NoticeEvent) -> Value {
    json!({
        "at": rfc3339(e.at),
        "notice_id": e.notice_id,
        "item_id": e.item_id,
        "kind": e.kind,
        "detail": e.detail,
    })
}
