//! The public report form (`/report`): members of the public report URLs, optionally with a
//! description and a way to contact them, without signing in. Off unless configured
//! (`[report_form]`, [`ReportFormConfig`]); every report goes to the one hotline configured.
//!
//! Everything sent here is presumed hostile: the body, each URL, the texts and the count of
//! URLs are capped; URLs must be http(s) and parse ([`super::intake`], the API's rules);
//! each client address (an IPv6 client's /64) may submit a few times, then waits; a
//! cross-site post is refused. A report refused is refused whole, and the form shown again
//! with what was typed (escaped) and why. The confirmation repeats nothing that was sent,
//! only the reports' public references: random ([`ReportReference`]), never the sequential
//! ids, which would tell anyone how many reports the hotline gets.
//!
//! Reporters stay anonymous unless they give a contact: the report keeps the contact as its
//! reporter only if one was given ("public form" otherwise), and the client's address is
//! never stored (it lives in memory while its rate limit lasts).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aranea_store::{NewReport, ReportReference, Store};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::html::{esc, page};
use super::reports::{lines_to_urls, text_problem};
use super::session::{is_urlencoded, parse_form_within, same_origin};
use crate::body_deadline::deadline_expired;

/// Where the form is served.
pub const REPORT_PATH: &str = "/report";
/// Longest URL accepted, in bytes (longer ones are not links people copy from a browser).
pub const MAX_PUBLIC_URL_BYTES: usize = 2048;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4000;
/// Longest contact, in bytes.
pub const MAX_CONTACT_BYTES: usize = 200;
/// Most URLs one report may carry, whatever the configuration says.
pub const MAX_URLS_CEILING: usize = 100;
/// Client addresses remembered by the rate limit before the idle ones are forgotten.
const MAX_TRACKED_CLIENTS: usize = 100_000;
/// How long a new client waits when the rate limit remembers [`MAX_TRACKED_CLIENTS`] that
/// are all still limited (a flood from many addresses): memory stays bounded.
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// The `[report_form]` table of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportFormConfig {
    /// Serve the form at `/report`. Default: false.
    pub enabled: bool,
    /// The hotline (its code, `aranea hotline list`) that receives the reports; required
    /// when `enabled`.
    pub hotline: String,
    /// Most URLs in one report (at most 100). Default: 10.
    pub max_urls: usize,
    /// Reports one client address may send at once before it must wait. Default: 5.
    pub burst: u32,
    /// Reports one client address may send an hour, after its burst. Default: 20.
    pub per_hour: u32,
    /// A header in which a reverse proxy in front names the client (such as
    /// `X-Forwarded-For`; its last address is taken, the one the proxy added). Without it
    /// the connection's peer address is the client, so behind a proxy every reporter would
    /// share the proxy's limit. Default: none.
    pub client_address_header: Option<String>,
}

impl Default for ReportFormConfig {
    fn default() -> Self {
        ReportFormConfig {
            enabled: false,
            hotline: String::new(),
            max_urls: 10,
            burst: 5,
            per_hour: 20,
            client_address_header: None,
        }
    }
}

/// Why the form's configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ReportFormConfigError {
    #[error("[report_form] is enabled but names no hotline (hotline = \"CODE\")")]
    NoHotline,
    #[error("[report_form] max_urls must be 1 to {MAX_URLS_CEILING}, not {0}")]
    MaxUrls(usize),
    #[error("[report_form] per_hour and burst must be at least 1")]
    NoRate,
    #[error("[report_form] client_address_header {0:?} is not a header name")]
    Header(String),
    #[error("[report_form] hotline {0:?} is not registered (`aranea hotline list`)")]
    UnknownHotline(String),
    #[error("[report_form] cannot look up hotline {code:?}")]
    Store {
        code: String,
        #[source]
        source: aranea_store::StoreError,
    },
}

impl ReportFormConfig {
    /// Checks the values, and that the hotline is registered in `store` (unless none is
    /// registered yet, when the store keeps any name, as for every report).
    pub async fn check(&self, store: &Store) -> Result<(), ReportFormConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.hotline.trim().is_empty() {
            return Err(ReportFormConfigError::NoHotline);
        }
        if !(1..=MAX_URLS_CEILING).contains(&self.max_urls) {
            return Err(ReportFormConfigError::MaxUrls(self.max_urls));
        }
        if self.per_hour == 0 || self.burst == 0 {
            return Err(ReportFormConfigError::NoRate);
        }
        if let Some(name) = &self.client_address_header
            && header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(ReportFormConfigError::Header(name.clone()));
        }
        let desk = store.review_desk();
        let lookup = |source| ReportFormConfigError::Store {
            code: self.hotline.clone(),
            source,
        };
        let known = desk.hotline_by_code(&self.hotline).await.map_err(lookup)?;
        if known.is_none() && !desk.hotlines().await.map_err(lookup)?.is_empty() {
            return Err(ReportFormConfigError::UnknownHotline(self.hotline.clone()));
        }
        Ok(())
    }
}

/// Per-client token buckets: `burst` at once, refilled at `per_hour`.
struct ClientLimits {
    capacity: usize,
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl ClientLimits {
    fn new(burst: u32, per_hour: u32) -> ClientLimits {
        ClientLimits {
            capacity: MAX_TRACKED_CLIENTS,
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_hour.max(1)) / 3600.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client`, or says how long until it has one.
    fn try_acquire(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= self.capacity && !buckets.contains_key(&client) {
            // A client whose bucket has refilled is the same as one never seen.
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, (tokens, last)| {
                *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
            });
        }
        if buckets.len() >= self.capacity && !buckets.contains_key(&client) {
            return Err(BUSY_WAIT);
        }
        let (tokens, last) = buckets.entry(client).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

/// An IPv6 client is its /64: one subscriber gets a whole /64 and could walk through it.
fn rate_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Clone)]
struct FormState {
    store: Store,
    config: Arc<ReportFormConfig>,
    limits: Arc<ClientLimits>,
}

/// The form's routes (GET and POST `/report`), for `store`; serves nothing unless
/// `config.enabled`.
pub fn router(store: Store, config: ReportFormConfig) -> Router {
    if !config.enabled {
        return Router::new();
    }
    let limits = Arc::new(ClientLimits::new(config.burst, config.per_hour));
    let state = FormState {
        store,
        config: Arc::new(config),
        limits,
    };
    Router::new()
        .route(REPORT_PATH, get(show).post(submit))
        .layer(axum::middleware::from_fn(super::html::security_headers))
        .with_state(state)
}

/// What the reporter typed, to show again when the report is refused.
#[derive(Default)]
struct Typed<'a> {
    urls: &'a str,
    description: &'a str,
    contact: &'a str,
}

fn form_page(config: &ReportFormConfig, typed: &Typed<'_>, problems: &[String]) -> String {
    let mut out = String::from(
        "<p>Report web pages, images or videos that you believe show the sexual abuse of \
         children. Do not download or send the material itself: the address (URL) is enough. \
         You do not have to give your name.</p>",
    );
    if !problems.is_empty() {
        out.push_str(
            "<div class=\"error\" role=\"alert\" id=\"problems\"><p>Your report was not sent:</p><ul>",
        );
        for p in problems {
            out.push_str(&format!("<li>{}</li>", esc(p)));
        }
        out.push_str("</ul></div>");
    }
    out.push_str(&format!(
        "<form method=\"post\" action=\"{REPORT_PATH}\">\
         <label>Addresses (URLs), one per line, starting with http:// or https:// (at most {max}) \
         <textarea name=\"urls\" id=\"urls\" rows=\"5\" cols=\"80\" required>{urls}</textarea></label>\
         <label>What did you see? (optional) \
         <textarea name=\"description\" id=\"description\" rows=\"4\" cols=\"80\" maxlength=\"{MAX_DESCRIPTION_BYTES}\">{description}</textarea></label>\
         <label>How can we contact you? (optional: e-mail or telephone) \
         <input name=\"contact\" id=\"contact\" maxlength=\"{MAX_CONTACT_BYTES}\" value=\"{contact}\" autocomplete=\"email\"></label>\
         <button type=\"submit\" id=\"send\">Send report</button></form>",
        max = config.max_urls,
        urls = esc(typed.urls),
        description = esc(typed.description),
        contact = esc(typed.contact),
    ));
    out
}

fn refused(
    config: &ReportFormConfig,
    status: StatusCode,
    typed: &Typed<'_>,
    problems: &[String],
) -> Response {
    let mut response = page(
        "Report illegal content",
        None,
        &form_page(config, typed, problems),
    );
    *response.status_mut() = status;
    response
}

/// A refusal without the form (the body could not be read as one).
fn plain(status: StatusCode, message: &str) -> Response {
    let mut response = page(
        "Report not sent",
        None,
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"{REPORT_PATH}\">Back to the form</a></p>",
            esc(message)
        ),
    );
    *response.status_mut() = status;
    response
}

async fn show(State(state): State<FormState>) -> Response {
    page(
        "Report illegal content",
        None,
        &form_page(&state.config, &Typed::default(), &[]),
    )
}

/// The client's address: the last address of the configured proxy header if there is
/// one, else the connection's peer.
fn client_address(config: &ReportFormConfig, request: &Request) -> Option<IpAddr> {
    if let Some(name) = &config.client_address_header {
        return request
            .headers()
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Largest body read: the URLs, description and contact at their caps, percent-encoded.
fn max_body_bytes(config: &ReportFormConfig) -> usize {
    3 * (config.max_urls * (MAX_PUBLIC_URL_BYTES + 2) + MAX_DESCRIPTION_BYTES + MAX_CONTACT_BYTES)
        + 1024
}

async fn submit(State(state): State<FormState>, request: Request) -> Response {
    let config = &state.config;
    if !same_origin(request.headers()) {
        return plain(
            StatusCode::FORBIDDEN,
            "Reports are accepted from this site's own form only.",
        );
    }
    let Some(client) = client_address(config, &request) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "Your address could not be determined.",
        );
    };
    if let Err(wait) = state.limits.try_acquire(rate_key(client), Instant::now()) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut response = plain(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many reports from your address: please try again in {minutes} minutes."),
        );
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let headers: HeaderMap = request.headers().clone();
    if !is_urlencoded(&headers) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The report must be sent with the form on this page.",
        );
    }
    let limit = max_body_bytes(config);
    let body = match read_capped(request.into_body(), limit).await {
        Ok(body) => body,
        Err(BodyProblem::TooLarge) => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "The report is too large.");
        }
        Err(BodyProblem::TooSlow) => {
            return plain(
                StatusCode::REQUEST_TIMEOUT,
                "The report took too long to arrive.",
            );
        }
        Err(BodyProblem::Incomplete) => {
            return plain(StatusCode::BAD_REQUEST, "The report did not arrive whole.");
        }
    };
    let fields = match parse_form_within(&body, limit) {
        Ok(fields) => fields,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "The report is too large."),
    };
    let get = |name: &str| fields.get(name).map_or("", String::as_str);
    let typed = Typed {
        urls: get("urls"),
        description: get("description"),
        contact: get("contact").trim(),
    };
    let (urls, mut problems) =
        match lines_to_urls(typed.urls, config.max_urls, MAX_PUBLIC_URL_BYTES) {
            Ok(urls) => (urls, Vec::new()),
            Err(problems) => (Vec::new(), problems),
        };
    problems.extend(text_problem(
        "description",
        typed.description,
        MAX_DESCRIPTION_BYTES,
    ));
    problems.extend(text_problem("contact", typed.contact, MAX_CONTACT_BYTES));
    if typed.contact.chars().any(char::is_control) {
        problems.push("contact: one line, please".to_string());
    }
    if !problems.is_empty() {
        return refused(config, StatusCode::BAD_REQUEST, &typed, &problems);
    }
    let reporter = if typed.contact.is_empty() {
        "public form".to_string()
    } else {
        format!("public form: {}", typed.contact)
    };
    let now = crate::api::now_ms();
    let mut references = Vec::with_capacity(urls.len());
    for url in &urls {
        let report = NewReport {
            url: url.clone(),
            reporter: reporter.clone(),
            hotline: config.hotline.clone(),
            notes: typed.description.to_string(),
        };
        match state.store.reports().add_with_reference(&report, now).await {
            Ok((_, reference)) => references.push(reference),
            Err(error) => {
                tracing::warn!(error = %crate::problem::with_causes(&error), "cannot record a public report");
                let mut problems = Vec::new();
                if !references.is_empty() {
                    problems.push(format!(
                        "only the first {} addresses were recorded (references {}); please send the others again later",
                        references.len(),
                        join(&references)
                    ));
                } else {
                    problems.push(
                        "the report could not be recorded; please try again later".to_string(),
                    );
                }
                return refused(config, StatusCode::SERVICE_UNAVAILABLE, &typed, &problems);
            }
        }
    }
    let body = format!(
        "<p role=\"status\" id=\"thanks\">Thank you. Your report has been received and will be \
         checked by the hotline's staff.</p><p>Reference{}: <strong id=\"reference\">{}</strong></p>\
         <p>Please keep it if you want to contact us about this report. Do not visit the \
         addresses again.</p><p><a href=\"{REPORT_PATH}\">Report something else</a></p>",
        if references.len() == 1 { "" } else { "s" },
        join(&references)
    );
    page("Report received", None, &body)
}

enum BodyProblem {
    TooLarge,
    TooSlow,
    Incomplete,
}

/// The body, if it is at most `limit` bytes: a declared length over it is refused before
/// reading, and reading stops as soon as more arrives than it said or than `limit`.
async fn read_capped(
    mut body: axum::body::Body,
    limit: usize,
) -> Result<bytes::Bytes, BodyProblem> {
    use http_body::Body as _;
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyProblem::TooLarge);
    }
    let mut out = bytes::BytesMut::new();
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(out.freeze()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > limit {
                        return Err(BodyProblem::TooLarge);
                    }
                    out.extend_from_slice(&data);
                }
            }
            Some(Err(error)) => {
                return Err(match deadline_expired(&error) {
                    Some(_) => BodyProblem::TooSlow,
                    None => BodyProblem::Incomplete,
                });
            }
        }
    }
}

fn join(references: &[ReportReference]) -> String {
    references
        .iter()
        .map(ReportReference::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_waits_after_its_burst_and_ipv6_clients_are_their_64() {
        let limits = ClientLimits::new(2, 3600);
        let start = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limits.try_acquire(rate_key(a), start).is_ok());
        assert!(limits.try_acquire(rate_key(b), start).is_ok());
        let wait = limits.try_acquire(rate_key(a), start).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            limits
                .try_acquire(rate_key("2001:db8:1:3::1".parse().unwrap()), start)
                .is_ok()
        );
        assert!(
            limits
                .try_acquire(rate_key(a), start + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn a_flood_of_new_addresses_is_refused_once_the_table_is_full() {
        let mut limits = ClientLimits::new(1, 3600);
        limits.capacity = 2;
        let start = Instant::now();
        let client = |n: u8| IpAddr::from([192, 0, 2, n]);
        assert!(limits.try_acquire(client(1), start).is_ok());
        assert!(limits.try_acquire(client(2), start).is_ok());
        assert_eq!(limits.try_acquire(client(3), start), Err(BUSY_WAIT));
        // Known clients are still answered by their own bucket.
        assert!(
            limits
                .try_acquire(client(1), start)
                .is_err_and(|w| w < BUSY_WAIT)
        );
        // Once a bucket has refilled, its client is forgotten and a new one fits.
        assert!(
            limits
                .try_acquire(client(3), start + Duration::from_secs(2))
                .is_ok()
        );
    }
}
