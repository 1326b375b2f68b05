//! HTML building blocks: escaping, the page frame with role-based navigation, forms with
//! the CSRF token, and the security headers every UI response carries.

use aranea_review::Actor;
use aranea_store::UserRole;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

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
main{max-width:60em;margin:1em auto;padding:0 1em}\
.blurred{filter:blur(6px) grayscale(1);max-width:320px}\
.frames{display:flex;flex-wrap:wrap;gap:.5em;list-style:none;padding:0}\
.frames img{max-width:120px;display:block}\
.revealed{max-width:100%}\
.notice{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em}\
.error{background:#f8d7da;border:1px solid #d08090;padding:.5em 1em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
:focus{outline:3px solid #1a73e8;outline-offset:2px}\
fieldset{margin:.5em 0}label{display:block;margin:.3em 0}";

/// A full page; `actor` decides the navigation shown.
pub fn page(title: &str, actor: Option<(&Actor, &str)>, body: &str) -> Response {
    let nav = match actor {
        Some((actor, csrf)) => {
            let mut links = String::new();
            if actor.reviews() {
                links.push_str("<a href=\"/ui/\" accesskey=\"q\">Queue</a><a href=\"/ui/history\">My history</a>");
            }
            if actor.is_senior() {
                links.push_str("<a href=\"/ui/disputes\">Disagreements</a>");
            }
            links.push_str("<a href=\"/ui/reports\">Reports</a>");
            if matches!(
                actor.role(),
                UserRole::HotlineOperator | UserRole::PlatformAdmin
            ) {
                links.push_str("<a href=\"/ui/admin\">Hotline administration</a>");
            }
            if matches!(actor.role(), UserRole::Auditor | UserRole::PlatformAdmin) {
                links.push_str("<a href=\"/ui/audit\">Audit trail</a>");
            }
            // The statistics page's own rule decides, so the link never leads to a refusal.
            if crate::stats::scope_of(actor).is_some() {
                links.push_str(
                    "<a href=\"/ui/statistics\">Statistics</a><a href=\"/ui/notices\">Notices</a>",
                );
            }
            links.push_str("<a href=\"/ui/account\" id=\"account\">Account</a>");
            format!(
                "<nav aria-label=\"main\">{links}<span>{} ({})</span>{}</nav>",
                esc(&actor.user.display_name),
                esc(&actor.hotline.code),
                form(
                    "/ui/logout",
                    csrf,
                    "<button type=\"submit\">Log out</button>"
                )
            )
        }
        None => "<nav aria-label=\"main\"><span>Aranea</span></nav>".to_string(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{} · Aranea</title>\
         <style>{STYLE}</style></head><body>{nav}<main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    );
    Html(html).into_response()
}

/// A POST form carrying the CSRF token.
pub fn form(action: &str, csrf: &str, inner: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">{inner}</form>",
        esc(action),
        esc(csrf)
    )
}

/// Scripts only from this server's own files (never inline), no remote content, no framing,
/// nothing cached, no referrer to other sites.
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; img-src 'self'; media-src 'self'; \
         style-src 'unsafe-inline'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Not `no-referrer`: with it Chromium sends `Origin: null` on form posts, which the
    // same-origin check must refuse.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    response
}
