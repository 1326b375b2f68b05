//! Sessions in the UI: the cookie, the signed-in user extractor, CSRF and same-origin
//! checks on every POST, the login and logout handlers, and how review errors become
//! responses (never with another hotline's data in them).

use std::collections::HashMap;
use std::net::SocketAddr;

use aranea_review::{Actor, ReviewError, constant_time_eq, now_millis};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::UiState;
use super::html::{esc, page};
use crate::body_deadline::deadline_expired;

const COOKIE: &str = "aranea_session";
/// Largest form body read (the user form is the largest; a few KiB).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The client's address, for the audit trail.
pub fn client_address(parts_extensions: &axum::http::Extensions) -> String {
    parts_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

/// What a user who must enrol a new second factor may reach (everything else redirects to
/// the account page).
const ENROLMENT_PATHS: [&str; 4] = [
    "/ui/account",
    "/ui/account/totp/begin",
    "/ui/account/totp/confirm",
    "/ui/logout",
];

/// A signed-in user: the request had a live session cookie.
pub struct SignedIn {
    pub actor: Actor,
    pub csrf: String,
    pub token: String,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

impl FromRequestParts<UiState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ui: &UiState) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/ui/login").into_response();
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(to_login());
        };
        let source = client_address(&parts.extensions);
        match ui
            .review
            .enrolment_session(&token, &source, now_millis())
            .await
        {
            // After an operator's reset, enrolling a new second factor comes first.
            Ok((actor, _))
                if actor.user.totp_enrol_required
                    && !ENROLMENT_PATHS.contains(&parts.uri.path()) =>
            {
                Err(Redirect::to("/ui/account").into_response())
            }
            Ok((actor, csrf)) => Ok(SignedIn { actor, csrf, token }),
            Err(ReviewError::NoSession) => Err(to_login()),
            Err(e) => Err(error_response(e)),
        }
    }
}

/// A form's body, read within the body deadline: a client too slow with it gets a plain 408
/// (and its connection closed), other failures axum's plain answers.
pub struct FormBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        match Bytes::from_request(request, state).await {
            Ok(body) => Ok(FormBody(body)),
            Err(rejection) => Err(match deadline_expired(&rejection) {
                Some(expired) => too_slow(expired),
                None => rejection.into_response(),
            }),
        }
    }
}

fn too_slow(expired: &crate::body_deadline::BodyDeadlineExpired) -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the form did not arrive within {} s",
            expired.limit().as_secs()
        ),
    )
        .into_response()
}

/// Parsed form fields (last value wins).
pub type Fields = HashMap<String, String>;

/// Why a form was refused (small, so results stay small).
#[derive(Debug)]
pub struct Refusal(pub StatusCode, pub &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

pub fn parse_form(body: &Bytes) -> Result<Fields, Refusal> {
    parse_form_within(body, MAX_FORM_BYTES)
}

/// [`parse_form`] for a form allowed up to `max` bytes.
pub fn parse_form_within(body: &Bytes, max: usize) -> Result<Fields, Refusal> {
    if body.len() > max {
        return Err(Refusal(StatusCode::PAYLOAD_TOO_LARGE, "form too large"));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

/// Whether the body is declared a URL-encoded form (what every form here sends).
pub fn is_urlencoded(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A browser-sent POST from another site is refused: a cross-site `Sec-Fetch-Site` or an
/// `Origin` whose host differs from `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some("null"), _) => false,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The form of a signed-in user's POST, after the CSRF and origin checks.
pub fn checked_form(
    signed_in: &SignedIn,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Fields, Refusal> {
    checked_form_within(signed_in, headers, body, MAX_FORM_BYTES)
}

/// [`checked_form`] for a form allowed up to `max` bytes.
pub fn checked_form_within(
    signed_in: &SignedIn,
    headers: &HeaderMap,
    body: &Bytes,
    max: usize,
) -> Result<Fields, Refusal> {
    let fields = parse_form_within(body, max)?;
    let token = fields.get("csrf").map_or("", String::as_str);
    if !same_origin(headers) || !constant_time_eq(token, &signed_in.csrf) {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            "request refused: missing or wrong form token",
        ));
    }
    Ok(fields)
}

/// How review errors look to the browser.
pub fn error_response(error: ReviewError) -> Response {
    let (status, message) = match &error {
        ReviewError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
        ReviewError::Forbidden(why) => (StatusCode::FORBIDDEN, (*why).to_string()),
        ReviewError::Invalid { .. } => (StatusCode::BAD_REQUEST, error.to_string()),
        ReviewError::NotOpen(_) => (StatusCode::CONFLICT, error.to_string()),
        ReviewError::NoSession => return Redirect::to("/ui/login").into_response(),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_string(),
        ),
    };
    let mut response = page(
        "Error",
        None,
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/ui/\">Back</a></p>",
            esc(&message)
        ),
    );
    *response.status_mut() = status;
    response
}

fn login_page(message: Option<&str>) -> Response {
    let alert = message.map_or_else(String::new, |m| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m))
    });
    page(
        "Sign in",
        None,
        &format!(
            "{alert}<form method=\"post\" action=\"/ui/login\">\
             <label>Username <input name=\"username\" autocomplete=\"username\" required autofocus></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <label>Authenticator code (if enabled) <input name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\"></label>\
             <button type=\"submit\">Sign in</button></form>"
        ),
    )
}

pub async fn login_form() -> Response {
    login_page(None)
}

pub async fn login(State(ui): State<UiState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    if !same_origin(&parts.headers) {
        return (StatusCode::FORBIDDEN, "cross-site login refused").into_response();
    }
    let body = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            return match deadline_expired(&error) {
                Some(expired) => too_slow(expired),
                None => (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
            };
        }
    };
    let fields = match parse_form(&body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let get = |k: &str| fields.get(k).map_or("", String::as_str);
    let totp = Some(get("totp")).filter(|t| !t.trim().is_empty());
    let source = client_address(&parts.extensions);
    match ui
        .review
        .login(
            get("username"),
            get("password"),
            totp,
            &source,
            now_millis(),
        )
        .await
    {
        Ok(login) => {
            let secure = if ui.secure_cookies { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict{secure}",
                login.token
            );
            let home = if login.actor.user.totp_enrol_required {
                "/ui/account"
            } else {
                "/ui/"
            };
            let mut response = Redirect::to(home).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(ReviewError::LoginFailed) => {
            let mut r = login_page(Some("Sign-in failed."));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
        Err(ReviewError::LockedOut { .. }) => {
            let mut r = login_page(Some(
                "Too many failed attempts: the account is locked for a while.",
            ));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r
        }
        Err(e) => error_response(e),
    }
}

pub async fn logout(
    State(ui): State<UiState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    if let Err(r) = checked_form(&signed_in, &headers, &body) {
        return r.into_response();
    }
    if let Err(e) = ui
        .review
        .logout(&signed_in.token, &signed_in.actor, now_millis())
        .await
    {
        return error_response(e);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("aranea_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}
