//! The statistics page as server-rendered HTML: the window form, live counters, the
//! per-provider removal table, and the charts with their numbers in tables. No scripts (the
//! UI's Content-Security-Policy forbids them); the page reloads itself every minute with a
//! `<meta http-equiv="refresh">` so the counters stay live.

use std::fmt::Write;

use aranea_review::Actor;
use aranea_store::Counts;

use crate::stats::report::Report;
use crate::stats::svg::{Line, bar_chart, line_chart};

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}\
nav{background:#2b3a42;padding:.5em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}\
nav a,nav button{color:#fff;background:none;border:0;font:inherit;cursor:pointer;text-decoration:underline}\
nav form{margin:0}nav span{color:#fff}.wide{overflow-x:auto}#providers{font-size:.9em}main{max-width:62em;margin:1em auto;padding:0 1em}\
.error{background:#f8d7da;border:1px solid #d08090;padding:.5em 1em}\
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
dl.counters{display:grid;grid-template-columns:repeat(auto-fill,minmax(10em,1fr));gap:.5em}\
dl.counters div{background:#fff;border:1px solid #ccc;padding:.4em .6em}\
dl.counters dt{font-size:.85em;color:#555}dl.counters dd{margin:0;font-size:1.5em}\
svg.chart{max-width:100%;height:auto;border:1px solid #ccc}\
:focus{outline:3px solid #1a73e8;outline-offset:2px}";

/// A whole page around `body`; `viewer` adds the navigation and the log-out form.
pub fn frame(title: &str, viewer: Option<(&Actor, &str)>, refresh: bool, body: &str) -> String {
    let nav = match viewer {
        Some((actor, csrf)) => format!(
            "<nav aria-label=\"main\"><a href=\"/ui/\">Review</a><a href=\"/ui/statistics\">\
             Statistics</a><a href=\"/ui/notices\">Notices</a><span>{} ({})</span>\
             <form method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" \
             value=\"{}\"><button type=\"submit\">Log out</button></form></nav>",
            esc(&actor.user.display_name),
            esc(&actor.hotline.code),
            esc(csrf)
        ),
        None => "<nav aria-label=\"main\"><a href=\"/ui/\">Aranea</a></nav>".to_owned(),
    };
    let refresh = if refresh {
        "<meta http-equiv=\"refresh\" content=\"60\">"
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{0} · Aranea</title>\
         <style>{STYLE}</style></head><body>{nav}<main><h1>{0}</h1>{body}</main></body></html>",
        esc(title)
    )
}

fn hours(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |h| format!("{h:.1}"))
}

fn share(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |s| format!("{:.0} %", s * 100.0))
}

fn counters(counts: &Counts, bank_entries: usize, report: &Report) -> String {
    let total = |name: &str| -> i64 {
        report
            .series
            .iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.values.iter().sum())
    };
    let cells = [
        ("reports", "Reported URLs (all time)", counts.reports),
        (
            "urls-queued",
            "URLs waiting to be crawled",
            counts.urls_queued,
        ),
        ("fetches", "Fetches", counts.fetches),
        ("media", "Media hashed", counts.media),
        ("matches", "Matches (all time)", counts.matches),
        ("review-backlog", "Review backlog", counts.review),
        (
            "bank-entries",
            "Known hashes in banks",
            i64::try_from(bank_entries).unwrap_or(i64::MAX),
        ),
        (
            "notices-window",
            "Notices sent (window)",
            total("notices_sent"),
        ),
        ("removals-window", "Removals (window)", total("removals")),
    ];
    let mut out = String::from("<dl class=\"counters\" id=\"counters\">");
    for (id, label, value) in cells {
        let _ = write!(
            out,
            "<div><dt>{label}</dt><dd id=\"counter-{id}\" data-value=\"{value}\">{value}</dd></div>"
        );
    }
    out.push_str("</dl>");
    out
}

fn provider_table(report: &Report) -> String {
    let mut out = String::from(
        "<div class=\"wide\"><table id=\"providers\"><caption>Items opened in the window, by hosting provider; \
         notices sent in the window. Time to removal counts from the first notice.</caption>\
         <thead><tr><th scope=\"col\">Provider</th><th scope=\"col\">Items</th>\
         <th scope=\"col\">Removed</th><th scope=\"col\">Outstanding</th>\
         <th scope=\"col\">Median hours to removal</th><th scope=\"col\">90th percentile (h)</th>\
         <th scope=\"col\">Removed within 24 h</th><th scope=\"col\">Notices sent</th>\
         <th scope=\"col\">Re-notices</th><th scope=\"col\">Escalations</th>\
         <th scope=\"col\">Re-uploads</th></tr></thead><tbody>",
    );
    if report.providers.is_empty() {
        out.push_str("<tr><td colspan=\"11\">No notices in this window.</td></tr>");
    }
    for p in &report.providers {
        let _ = write!(
            out,
            "<tr data-provider=\"{0}\"><th scope=\"row\">{0}</th><td class=\"n\">{1}</td>\
             <td class=\"n\">{2}</td><td class=\"n\">{3}</td><td class=\"n\">{4}</td>\
             <td class=\"n\">{5}</td><td class=\"n\">{6}</td><td class=\"n\">{7}</td>\
             <td class=\"n\">{8}</td><td class=\"n\">{9}</td><td class=\"n\">{10}</td></tr>",
            esc(&p.provider),
            p.items,
            p.removed,
            p.outstanding,
            hours(p.median_hours_to_removal),
            hours(p.p90_hours_to_removal),
            share(p.share_removed_within_24h),
            p.notices_sent,
            p.renotices,
            p.escalations,
            p.reuploads
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A table of the values behind a line chart, folded away.
fn series_table(id: &str, report: &Report, names: &[(&str, &str)]) -> String {
    let mut out = format!(
        "<details><summary>Numbers</summary><table id=\"{id}-table\"><thead><tr><th scope=\"col\">{}</th>",
        if report.bucket == "hour" {
            "Hour (UTC)"
        } else {
            "Day (UTC)"
        }
    );
    for (_, label) in names {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(label));
    }
    out.push_str("</tr></thead><tbody>");
    for (i, bucket) in report.buckets.iter().enumerate() {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", esc(bucket));
        for (name, _) in names {
            let value = report
                .series
                .iter()
                .find(|s| s.name == *name)
                .and_then(|s| s.values.get(i))
                .copied()
                .unwrap_or(0);
            let _ = write!(out, "<td class=\"n\">{value}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></details>");
    out
}

fn over_time(id: &str, title: &str, report: &Report, lines: &[(&str, &str, &str)]) -> String {
    let empty = Vec::new();
    let values = |name: &str| {
        report
            .series
            .iter()
            .find(|s| s.name == name)
            .map_or(&empty, |s| &s.values)
    };
    let drawn: Vec<Line<'_>> = lines
        .iter()
        .map(|(key, label, colour)| Line {
            key,
            label,
            colour,
            values: values(key),
        })
        .collect();
    let names: Vec<(&str, &str)> = lines.iter().map(|(k, l, _)| (*k, *l)).collect();
    format!(
        "<h2>{}</h2>{}{}",
        esc(title),
        line_chart(id, title, &report.buckets, &drawn),
        series_table(id, report, &names)
    )
}

/// The body of the statistics page.
pub fn body(report: &Report, counts: &Counts, bank_entries: usize) -> String {
    let scope = match &report.hotline {
        Some(code) => format!(
            "Notices, removals and reports of hotline <strong>{}</strong>; matches and crawl \
             counters are platform-wide (the crawl is shared).",
            esc(code)
        ),
        None => "All hotlines.".to_owned(),
    };
    let mut out = format!(
        "<form method=\"get\" action=\"/ui/statistics\" aria-label=\"window\">\
         <label>From <input type=\"date\" name=\"from\" value=\"{}\" required></label> \
         <label>To <input type=\"date\" name=\"to\" value=\"{}\" required></label> \
         <button type=\"submit\">Show</button></form>\
         <p id=\"window\">{} to {} (UTC), by {}. {scope}</p><h2>Live counters</h2>",
        esc(&report.from),
        esc(&report.to),
        esc(&report.from),
        esc(&report.to),
        report.bucket
    );
    out.push_str(&counters(counts, bank_entries, report));
    out.push_str("<h2>Removals by provider</h2>");
    out.push_str(&provider_table(report));
    out.push_str("<h2>Time to removal</h2>");
    let bars: Vec<(&str, i64)> = report
        .time_to_removal
        .iter()
        .map(|(label, n)| (label.as_str(), *n))
        .collect();
    out.push_str(&bar_chart(
        "time-to-removal",
        "Removed items by time from first notice to removal",
        &bars,
    ));
    out.push_str("<details><summary>Numbers</summary><table id=\"time-to-removal-table\"><tbody>");
    for (label, n) in &bars {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"n\">{n}</td></tr>",
            esc(label)
        );
    }
    out.push_str("</tbody></table></details>");
    out.push_str(&over_time(
        "notices-over-time",
        "Notices and removals over time",
        report,
        &[
            ("notices_sent", "Notices sent", "#c0392b"),
            ("removals", "Removals", "#27ae60"),
        ],
    ));
    out.push_str(&over_time(
        "matches-over-time",
        "Matches and reports over time",
        report,
        &[
            ("matches", "Matches", "#8e44ad"),
            ("reports", "Reported URLs", "#2b6c8f"),
        ],
    ));
    out
}
