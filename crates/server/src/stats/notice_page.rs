//! One notice's page in the web UI (`/ui/notices/{id}`): what was sent to whom, its state,
//! and its timeline (composition, delivery attempts, sends, re-checks, responses,
//! escalations, retractions), as `aranea notices show` prints them.
//!
//! Same readers as the statistics: a hotline operator or auditor sees the notices their own
//! hotline sent, a platform administrator every notice. A notice of another hotline is
//! answered exactly like one that does not exist (404), so ids reveal nothing. The page
//! shows the notice's text as sent (URLs and hashes, never media). Read-only.

use std::fmt::Write;

use aranea_review::Actor;
use aranea_store::{Notice, NoticeEvent};

use crate::stats::page::esc;
use crate::stats::window::date_of;

const DAY_MS: i64 = 86_400_000;

/// `YYYY-MM-DD HH:MM:SS UTC`.
fn when(millis: i64) -> String {
    let in_day = millis.rem_euclid(DAY_MS) / 1000;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        date_of(millis),
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// Whether `actor` may read notices of `hotline`.
pub fn may_read(actor: &Actor, hotline: &str) -> bool {
    match super::scope_of(actor) {
        Some(None) => true,
        Some(Some(own)) => own == hotline,
        None => false,
    }
}

/// The page body: the notice's facts, its timeline, and its text as sent.
pub fn body(notice: &Notice, timeline: &[NoticeEvent]) -> String {
    let mut out = String::new();
    let optional = |value: &Option<String>| value.as_deref().map_or_else(|| "–".to_owned(), esc);
    let facts = [
        ("Report id", esc(&notice.report_id)),
        ("Provider", esc(&notice.provider_name)),
        ("Hotline", esc(&notice.hotline)),
        ("Kind", esc(&notice.kind)),
        ("Escalation step", optional(&notice.escalation_step)),
        ("Via CDN", optional(&notice.via_cdn)),
        ("Channel", esc(&notice.channel)),
        ("Recipient", esc(&notice.recipient)),
        ("State", esc(notice.state.as_str())),
        ("Attempts", notice.attempts.to_string()),
        ("Last error", optional(&notice.last_error)),
        ("Created", when(notice.created_at)),
        ("Sent", notice.sent_at.map_or_else(|| "–".to_owned(), when)),
        ("Response", optional(&notice.response)),
        (
            "Test (drill)",
            if notice.test { "yes" } else { "no" }.to_owned(),
        ),
    ];
    out.push_str("<dl class=\"notice\">");
    for (name, value) in facts {
        let _ = write!(out, "<dt>{name}</dt><dd>{value}</dd>");
    }
    if let Some(parent) = notice.parent_id {
        let _ = write!(
            out,
            "<dt>Copy of</dt><dd><a href=\"/ui/notices/{parent}\">notice {parent}</a></dd>"
        );
    }
    out.push_str("</dl><h2>Timeline</h2>");
    if timeline.is_empty() {
        out.push_str("<p>Nothing recorded yet.</p>");
    } else {
        out.push_str(
            "<table class=\"timeline\"><thead><tr><th scope=\"col\">When</th>\
             <th scope=\"col\">Event</th><th scope=\"col\">URL item</th>\
             <th scope=\"col\">Detail</th></tr></thead><tbody>",
        );
        for event in timeline {
            let item = event.item_id.map_or_else(String::new, |i| i.to_string());
            let _ = write!(
                out,
                "<tr data-event=\"{}\"><td>{}</td><td>{}</td><td>{item}</td><td>{}</td></tr>",
                esc(&event.kind),
                when(event.at),
                esc(&event.kind),
                esc(&event.detail)
            );
        }
        out.push_str("</tbody></table>");
    }
    let _ = write!(
        out,
        "<h2>As sent</h2><p>Subject: {}</p><pre class=\"notice-text\">{}</pre>",
        esc(&notice.subject),
        esc(&notice.body_text)
    );
    out
}

/// Notices per page of `/ui/notices`.
pub const PAGE: i64 = 50;

/// The list body: newest first, each row linking to its notice, and a link to older ones.
pub fn list_body(notices: &[Notice], older: Option<i64>) -> String {
    let mut out = String::new();
    if notices.is_empty() {
        out.push_str("<p>No notices.</p>");
    } else {
        out.push_str(
            "<table class=\"notices\"><thead><tr><th scope=\"col\">Notice</th>\
             <th scope=\"col\">Created</th><th scope=\"col\">Provider</th>\
             <th scope=\"col\">Kind</th><th scope=\"col\">State</th>\
             <th scope=\"col\">Recipient</th><th scope=\"col\">Hotline</th></tr></thead><tbody>",
        );
        for notice in notices {
            let _ = write!(
                out,
                "<tr data-notice=\"{0}\"><td><a href=\"/ui/notices/{0}\">{0}</a></td>\
                 <td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td></tr>",
                notice.id,
                when(notice.created_at),
                esc(&notice.provider_name),
                esc(&notice.kind),
                esc(notice.state.as_str()),
                esc(&notice.recipient),
                esc(&notice.hotline)
            );
        }
        out.push_str("</tbody></table>");
    }
    if let Some(before) = older {
        let _ = write!(
            out,
            "<p><a href=\"/ui/notices?before={before}\" rel=\"next\">Older notices</a></p>"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn times_are_utc_to_the_second() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_773_230_645_000), "2026-03-11 12:04:05 UTC");
    }
}
