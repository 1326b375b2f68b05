//! The hotline's reports for its signed-in staff: the list (newest first, paged, with what
//! came of each), a page per report, the form to submit URLs as the hotline, and an
//! operator's correction of a report's status. The review crate decides who sees and
//! changes what ([`aranea_review::reports`]); this module only renders.
//!
//! Reported URLs are shown as text, never as links: a reported URL may lead to abuse
//! material, and nobody should open it by a stray click.

use aranea_review::reports::{CORRECTABLE_STATUSES, MAX_CORRECTION_NOTE_BYTES};
use aranea_review::{ReportView, ReviewError, now_millis};
use aranea_store::{MAX_NOTES_BYTES, ReportId};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::UiState;
use super::html::{esc, form, page};
use super::intake::form_url;
use super::session::{
    Fields, FormBody, SignedIn, checked_form_within, error_response, is_urlencoded,
};

/// Reports on one page of the list.
const PAGE_SIZE: u32 = 50;
/// Most URLs one submission records.
pub const MAX_STAFF_URLS: usize = 500;
/// Longest URL the form accepts, in bytes (the store's own limit).
const MAX_URL_BYTES: usize = aranea_store::MAX_URL_BYTES;
/// Largest submission read: room for [`MAX_STAFF_URLS`] long URLs, percent-encoded.
const MAX_SUBMISSION_BYTES: usize = 1024 * 1024;

fn when(at: i64) -> String {
    aranea_notice::clock::rfc3339(at)
}

/// A long URL cut for a table cell (the report's page shows it whole).
fn shortened(url: &str) -> String {
    const SHOWN: usize = 100;
    if url.chars().count() <= SHOWN {
        return url.to_string();
    }
    let mut cut: String = url.chars().take(SHOWN).collect();
    cut.push('…');
    cut
}

fn status_cell(view: &ReportView) -> String {
    let report = &view.report;
    match &report.reason {
        Some(reason) => format!(
            "{} <small>({})</small>",
            report.status.as_str(),
            esc(&shortened(reason))
        ),
        None => report.status.as_str().to_string(),
    }
}

pub async fn list(State(ui): State<UiState>, s: SignedIn, Query(q): Query<Fields>) -> Response {
    let before = match q.get("before").map(|b| b.parse::<i64>()) {
        None => None,
        Some(Ok(before)) => Some(before),
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, "before: not a report id").into_response();
        }
    };
    let views = match ui.review.reports_for(&s.actor, before, PAGE_SIZE).await {
        Ok(views) => views,
        Err(e) => return error_response(e),
    };
    let mut body = String::new();
    if let Some(added) = q.get("added").and_then(|n| n.parse::<u32>().ok()) {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\" id=\"added\">{added} report{} recorded; the crawler takes them next.</p>",
            if added == 1 { "" } else { "s" }
        ));
    }
    if s.actor.role() != aranea_store::UserRole::Auditor {
        body.push_str("<p><a href=\"/ui/reports/new\" id=\"submit-link\">Submit URLs</a></p>");
    }
    body.push_str(
        "<form method=\"get\" action=\"/ui/reports/find\" id=\"find\">\
         <label>Find by reference (as a public reporter was told it) \
         <input name=\"reference\" id=\"find-reference\" maxlength=\"40\" \
         placeholder=\"XXXX-XXXX-XXXX\" autocomplete=\"off\"></label>\
         <button type=\"submit\">Find</button></form>",
    );
    if views.is_empty() {
        body.push_str("<p id=\"no-reports\">No reports.</p>");
    } else {
        body.push_str(
            "<table id=\"reports\"><thead><tr><th>Report</th><th>Reference</th><th>Received (UTC)</th>\
             <th>URL</th><th>Reporter</th><th>Status</th><th>Fetched</th><th>Media</th>\
             <th>Matched</th><th>Notices</th><th>Removed</th></tr></thead><tbody>",
        );
        for view in &views {
            let r = &view.report;
            let o = &view.outcome;
            let hotline = if s.actor.is_platform_admin() {
                format!(" <small>({})</small>", esc(&r.hotline))
            } else {
                String::new()
            };
            body.push_str(&format!(
                "<tr><td><a href=\"/ui/reports/{id}\">{id}</a>{hotline}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td>\
                 <td>{}</td><td class=\"status\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.reference,
                when(r.reported_at),
                esc(&shortened(&r.url)),
                esc(&shortened(&r.reporter)),
                status_cell(view),
                o.fetched,
                o.media,
                o.matched,
                o.notices,
                o.removed,
                id = r.id.get(),
            ));
        }
        body.push_str("</tbody></table>");
    }
    if views.len() == PAGE_SIZE as usize
        && let Some(last) = views.last()
    {
        body.push_str(&format!(
            "<p><a href=\"/ui/reports?before={}\" id=\"older\">Older reports</a></p>",
            last.report.id.get()
        ));
    }
    page("Reports", Some((&s.actor, &s.csrf)), &body)
}

pub async fn detail(State(ui): State<UiState>, s: SignedIn, Path(id): Path<i64>) -> Response {
    let detail = match ui.review.report_for(&s.actor, ReportId::from_raw(id)).await {
        Ok(d) => d,
        Err(e) => return error_response(e),
    };
    let r = &detail.view.report;
    let o = &detail.view.outcome;
    let mut body = format!(
        "<dl id=\"report\"><dt>Reference</dt><dd><code id=\"reference\">{}</code></dd>\
         <dt>URL</dt><dd><code id=\"url\">{}</code></dd>\
         <dt>Status</dt><dd id=\"status\">{}</dd>{}\
         <dt>Hotline</dt><dd>{}</dd><dt>Reporter</dt><dd id=\"reporter\">{}</dd>\
         <dt>Received (UTC)</dt><dd>{}</dd><dt>Notes</dt><dd><pre id=\"notes\">{}</pre></dd></dl>",
        r.reference,
        esc(&r.url),
        r.status.as_str(),
        r.reason.as_ref().map_or_else(String::new, |reason| format!(
            "<dt>Why</dt><dd id=\"reason\">{}</dd>",
            esc(reason)
        )),
        esc(&r.hotline),
        esc(&r.reporter),
        when(r.reported_at),
        esc(&r.notes),
    );
    body.push_str(&format!(
        "<h2>What came of it</h2><p id=\"outcome\">{} of its URLs fetched; {} media found on them, \
         {} matching a bank; {} notices sent about them, {} items removed.</p>\
         <p><small>Counts cover every URL it reached: the URL reported, the redirects it \
         followed, and the pages and media found from them by links (a page first reached \
         through another report counts for that one).</small></p>",
        o.fetched, o.media, o.matched, o.notices, o.removed
    ));
    if !detail.urls.is_empty() {
        body.push_str(
            "<table id=\"urls\"><thead><tr><th>URL</th><th>Redirects</th><th>State</th>\
             <th>HTTP status</th><th>Last fetched (UTC)</th></tr></thead><tbody>",
        );
        for u in &detail.urls {
            body.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&u.url),
                u.redirects,
                u.state.as_str(),
                u.last_status
                    .map_or_else(|| "—".to_string(), |s| s.to_string()),
                u.last_fetched_at.map_or_else(|| "—".to_string(), when),
            ));
        }
        body.push_str("</tbody></table>");
    }
    if detail.may_correct {
        let options: String = CORRECTABLE_STATUSES
            .iter()
            .map(|st| format!("<option value=\"{0}\">{0}</option>", st.as_str()))
            .collect();
        body.push_str("<h2>Correct the status</h2><p>received: the crawler takes the report again and fetches its URL now; crawled or rejected: settles it as is. Recorded in the audit trail.</p>");
        body.push_str(&form(
            &format!("/ui/reports/{id}/status"),
            &s.csrf,
            &format!(
                "<label>New status <select name=\"status\" id=\"new-status\">{options}</select></label>\
                 <label>Why (shown with the status, kept in the audit trail) <input name=\"note\" id=\"status-note\" maxlength=\"{MAX_CORRECTION_NOTE_BYTES}\"></label>\
                 <button type=\"submit\" id=\"correct\">Correct status</button>"
            ),
        ));
    }
    body.push_str("<p><a href=\"/ui/reports\">All reports</a></p>");
    page(&format!("Report {id}"), Some((&s.actor, &s.csrf)), &body)
}

/// A report by its public reference: to its page, or "not found" (unknown, malformed, or
/// another hotline's).
pub async fn find(State(ui): State<UiState>, s: SignedIn, Query(q): Query<Fields>) -> Response {
    let reference = q.get("reference").map_or("", String::as_str);
    match ui.review.find_report(&s.actor, reference).await {
        Ok(id) => Redirect::to(&format!("/ui/reports/{}", id.get())).into_response(),
        Err(e) => error_response(e),
    }
}

pub async fn correct_status(
    State(ui): State<UiState>,
    s: SignedIn,
    Path(id): Path<i64>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let fields = match checked_form_within(&s, &headers, &body, 16 * 1024) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let asked = fields.get("status").map_or("", String::as_str);
    let Some(status) = CORRECTABLE_STATUSES
        .iter()
        .copied()
        .find(|st| st.as_str() == asked)
    else {
        return error_response(ReviewError::Invalid {
            field: "status",
            reason: "choose received, crawled or rejected".into(),
        });
    };
    let note = fields.get("note").map_or("", String::as_str);
    match ui
        .review
        .correct_report_status(&s.actor, ReportId::from_raw(id), status, note, now_millis())
        .await
    {
        Ok(()) => Redirect::to(&format!("/ui/reports/{id}")).into_response(),
        Err(e) => error_response(e),
    }
}

fn submission_form(csrf: &str, urls: &str, notes: &str, problems: &[String]) -> String {
    let mut out = String::new();
    if !problems.is_empty() {
        out.push_str(
            "<div class=\"error\" role=\"alert\" id=\"problems\"><p>Nothing was recorded:</p><ul>",
        );
        for p in problems {
            out.push_str(&format!("<li>{}</li>", esc(p)));
        }
        out.push_str("</ul></div>");
    }
    out.push_str(&form(
        "/ui/reports",
        csrf,
        &format!(
            "<label>URLs, one per line (http or https; at most {MAX_STAFF_URLS}) \
             <textarea name=\"urls\" id=\"urls\" rows=\"10\" cols=\"80\" required>{}</textarea></label>\
             <label>Notes (kept with every report) \
             <textarea name=\"notes\" id=\"notes\" rows=\"4\" cols=\"80\">{}</textarea></label>\
             <button type=\"submit\" id=\"submit\">Submit reports</button>",
            esc(urls),
            esc(notes)
        ),
    ));
    out
}

pub async fn new_form(s: SignedIn) -> Response {
    if s.actor.role() == aranea_store::UserRole::Auditor {
        return error_response(ReviewError::Forbidden("auditors do not submit reports"));
    }
    let body = format!(
        "<p>Each URL becomes a report received by {} from you; the crawler fetches it next.</p>{}",
        esc(&s.actor.hotline.code),
        submission_form(&s.csrf, "", "", &[])
    );
    page("Submit URLs", Some((&s.actor, &s.csrf)), &body)
}

/// Why a free-text field cannot be kept, if it cannot: too long, or a NUL (which the
/// store refuses).
pub(crate) fn text_problem(field: &str, text: &str, max: usize) -> Option<String> {
    if text.len() > max {
        Some(format!("{field}: at most {max} bytes"))
    } else if text.contains('\0') {
        Some(format!("{field}: contains a NUL character"))
    } else {
        None
    }
}

/// The URLs of a submission, one a line (blank lines skipped, repeats recorded once), or
/// a problem per refused line.
pub(crate) fn lines_to_urls(
    text: &str,
    max_urls: usize,
    max_url_bytes: usize,
) -> Result<Vec<String>, Vec<String>> {
    let mut urls: Vec<String> = Vec::new();
    // Repeats are found by hash: comparing each line with every URL before it made a form of
    // 70,000 lines cost a runtime thread seconds of CPU.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match form_url(line, max_url_bytes) {
            Ok(url) if !seen.insert(url) => {}
            Ok(url) => urls.push(url.to_string()),
            Err(refusal) => problems.push(format!("line {}: {refusal}", n + 1)),
        }
        if problems.len() >= 20 {
            problems.push("… and maybe more".to_string());
            break;
        }
    }
    if urls.len() > max_urls {
        problems.push(format!("{} URLs: at most {max_urls} at once", urls.len()));
    }
    if urls.is_empty() && problems.is_empty() {
        problems.push("no URL given".to_string());
    }
    if problems.is_empty() {
        Ok(urls)
    } else {
        Err(problems)
    }
}

pub async fn submit(
    State(ui): State<UiState>,
    s: SignedIn,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let fields = match checked_form_within(&s, &headers, &body, MAX_SUBMISSION_BYTES) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    if !is_urlencoded(&headers) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the form as application/x-www-form-urlencoded",
        )
            .into_response();
    }
    if s.actor.role() == aranea_store::UserRole::Auditor {
        return error_response(ReviewError::Forbidden("auditors do not submit reports"));
    }
    let text = fields.get("urls").map_or("", String::as_str);
    let notes = fields.get("notes").map_or("", String::as_str);
    let (urls, mut problems) = match lines_to_urls(text, MAX_STAFF_URLS, MAX_URL_BYTES) {
        Ok(urls) => (urls, Vec::new()),
        Err(problems) => (Vec::new(), problems),
    };
    problems.extend(text_problem("notes", notes, MAX_NOTES_BYTES));
    if problems.is_empty() {
        return match ui
            .review
            .add_reports(&s.actor, &urls, notes, now_millis())
            .await
        {
            Ok(ids) => Redirect::to(&format!("/ui/reports?added={}", ids.len())).into_response(),
            Err(e) => error_response(e),
        };
    }
    let mut response = page(
        "Submit URLs",
        Some((&s.actor, &s.csrf)),
        &submission_form(&s.csrf, text, notes, &problems),
    );
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

#[cfg(test)]
mod tests {
    use super::lines_to_urls;

    #[test]
    fn repeats_are_recorded_once_in_the_order_given() {
        let text = "http://a.example/x\n\n  \nhttp://a.example/y\nhttp://a.example/x\n";
        assert_eq!(
            lines_to_urls(text, 2, 2048),
            Ok(vec![
                "http://a.example/x".to_string(),
                "http://a.example/y".to_string()
            ])
        );
        assert_eq!(
            lines_to_urls(text, 1, 2048),
            Err(vec!["2 URLs: at most 1 at once".to_string()])
        );
    }

    #[test]
    fn a_huge_list_is_checked_in_linear_time() {
        // Each line compared with every earlier URL: 2·10^10 comparisons for these.
        let text: String = (0..200_000)
            .map(|n| format!("http://a.example/{n}\n"))
            .collect();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(lines_to_urls(&text, 100, 2048));
        });
        let checked = finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("200,000 lines must be checked in linear time");
        assert_eq!(
            checked,
            Err(vec!["200000 URLs: at most 100 at once".to_string()])
        );
    }
}
