//! The user's own account page: the authenticator (TOTP) second factor. Enrolment shows a
//! new secret as text and as an `otpauth://` URI, and enforces it only after the user types
//! a code from their app; switching it off needs the password and a current code. Every
//! form carries the CSRF token; every change is audited by the review crate.
//!
//! It must not show an enforced secret again: only one still being enrolled.

use super::session::FormBody;
use aranea_review::{ReviewError, now_millis};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::UiState;
use super::html::{esc, form, page};
use super::session::{Fields, SignedIn, checked_form, error_response};

const CODE_INPUT: &str = "<label>Code from the app <input name=\"code\" id=\"totp-code\" \
    inputmode=\"numeric\" autocomplete=\"one-time-code\" required></label>";

pub async fn account(State(ui): State<UiState>, s: SignedIn, Query(q): Query<Fields>) -> Response {
    let mut body = String::new();
    match q.get("done").map(String::as_str) {
        Some("enabled") => body.push_str(
            "<p class=\"notice\" role=\"status\" id=\"totp-done\">Two-step sign-in is on: \
             every sign-in now needs a code from your app.</p>",
        ),
        Some("disabled") => body.push_str(
            "<p class=\"notice\" role=\"status\" id=\"totp-done\">Two-step sign-in is off.</p>",
        ),
        _ => {}
    }
    if s.actor.user.totp_enrol_required {
        body.push_str(
            "<p class=\"notice\" role=\"status\" id=\"totp-required\">Your second factor \
             was reset by an administrator. Set up your authenticator app again to continue.</p>",
        );
    }
    if q.contains_key("wrong") {
        body.push_str(
            "<p class=\"error\" role=\"alert\" id=\"totp-wrong\">That did not match. Codes \
             work once, within about a minute.</p>",
        );
    }
    let enabled = match ui.review.totp_enabled(&s.actor).await {
        Ok(e) => e,
        Err(e) => return error_response(e),
    };
    let pending = match ui.review.pending_totp(&s.actor).await {
        Ok(p) => p,
        Err(e) => return error_response(e),
    };
    body.push_str("<h2>Two-step sign-in</h2>");
    if enabled {
        body.push_str(&format!(
            "<p id=\"totp-state\">On.</p><p>To switch it off, confirm with your password and \
             a code.</p>{}",
            form(
                "/ui/account/totp/disable",
                &s.csrf,
                &format!(
                    "<label>Password <input name=\"password\" type=\"password\" \
                     autocomplete=\"current-password\" required></label>{CODE_INPUT}\
                     <button type=\"submit\" id=\"totp-disable\">Switch off</button>"
                ),
            )
        ));
    } else if let Some(enrolment) = pending {
        body.push_str(&format!(
            "<p id=\"totp-state\">Being set up: not required yet.</p>\
             <p>Add this key to your authenticator app (type it in, or import the link), then \
             enter the code the app shows.</p>\
             <p>Key: <code id=\"totp-secret\">{}</code></p>\
             <p>Link: <code id=\"totp-uri\">{}</code></p>{}",
            esc(&enrolment.secret),
            esc(&enrolment.uri),
            form(
                "/ui/account/totp/confirm",
                &s.csrf,
                &format!(
                    "{CODE_INPUT}<button type=\"submit\" id=\"totp-confirm\">Turn on</button>"
                ),
            )
        ));
    } else {
        body.push_str(&format!(
            "<p id=\"totp-state\">Off.</p>{}",
            form(
                "/ui/account/totp/begin",
                &s.csrf,
                "<button type=\"submit\" id=\"totp-begin\">Set up an authenticator app</button>",
            )
        ));
    }
    page("Account", Some((&s.actor, &s.csrf)), &body)
}

/// What a TOTP form's outcome redirects to.
fn after(result: Result<(), ReviewError>, done: &str) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/ui/account?done={done}")).into_response(),
        Err(ReviewError::Invalid { field: "code", .. }) => {
            Redirect::to("/ui/account?wrong=1").into_response()
        }
        Err(e) => error_response(e),
    }
}

pub async fn begin(
    State(ui): State<UiState>,
    s: SignedIn,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    if let Err(r) = checked_form(&s, &headers, &body) {
        return r.into_response();
    }
    match ui.review.begin_totp(&s.actor, now_millis()).await {
        Ok(_) => Redirect::to("/ui/account").into_response(),
        Err(e) => error_response(e),
    }
}

pub async fn confirm(
    State(ui): State<UiState>,
    s: SignedIn,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let fields = match checked_form(&s, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let code = fields.get("code").map_or("", String::as_str);
    after(
        ui.review.confirm_totp(&s.actor, code, now_millis()).await,
        "enabled",
    )
}

pub async fn disable(
    State(ui): State<UiState>,
    s: SignedIn,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let fields = match checked_form(&s, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let get = |k: &str| fields.get(k).map_or("", String::as_str);
    if get("password").is_empty() {
        return (StatusCode::BAD_REQUEST, "password required").into_response();
    }
    after(
        ui.review
            .disable_totp(&s.actor, get("password"), get("code"), now_millis())
            .await,
        "disabled",
    )
}
