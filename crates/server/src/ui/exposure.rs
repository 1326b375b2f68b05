//! The analyst's exposure box (items today against the cap, the current stretch of review,
//! the break reminder) shown on the queue and item pages, and the small same-origin script
//! that makes the stretch a live clock. The figures are rendered on the server, so the box
//! is complete without the script; the script only counts on from them.
//!
//! It must not load anything from elsewhere nor run inline: the Content-Security-Policy
//! allows scripts from this server's own path only.

use aranea_review::Wellness;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::session::SignedIn;

/// Where the clock's script is served.
pub const SCRIPT_PATH: &str = "/ui/static/exposure.js";
const SCRIPT: &str = include_str!("static/exposure.js");

/// The exposure box for `wellness`.
pub fn exposure_box(wellness: &Wellness) -> String {
    let running = wellness.stretch_ms.map_or_else(String::new, |ms| {
        format!(
            " data-stretch-ms=\"{ms}\" data-break-after-ms=\"{}\"",
            u64::from(wellness.break_after_minutes) * 60_000
        )
    });
    let hidden = if wellness.break_due { "" } else { " hidden" };
    format!(
        "<div id=\"exposure\"{running}><p>Reviewed today: <strong id=\"served-today\">{}</strong> \
         of {} items. Current stretch: <strong id=\"stretch-clock\" aria-live=\"off\">{} min</strong>.</p>\
         <p class=\"notice\" role=\"status\" id=\"break-reminder\"{hidden}>You have been reviewing \
         for a long stretch. Please take a break away from the screen.</p></div>\
         <script src=\"{SCRIPT_PATH}\" defer></script>",
        wellness.served_today, wellness.daily_cap, wellness.stretch_minutes
    )
}

/// Serves the clock's script to signed-in users (like every UI route, nothing without a
/// session).
pub async fn script(_signed_in: SignedIn) -> Response {
    let mut response = SCRIPT.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    response
}
