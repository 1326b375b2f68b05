//! Statistics for operators: live counters, the per-provider removal table (removals,
//! median and 90th-percentile time to removal, notices, re-notices, escalations), the
//! time-to-removal distribution, and notices, removals, matches and reports over time.
//! Served as a server-rendered page at `/ui/statistics` (charts are inline SVG; no
//! JavaScript) and as JSON at `/api/v1/statistics/removals` (API key with scope `read`).
//!
//! Who sees what: the page needs a web UI session (the review UI's `aranea_session`
//! cookie) of a hotline operator or auditor, who see their own hotline's notices and
//! reports, or of a platform administrator, who sees every hotline's. Analysts are refused:
//! the numbers name providers and hotlines, not media, but they are an operator's tool.
//! Matches and crawl counters are platform-wide for everyone (the crawl is shared).
//!
//! Read-only: this module must not write to the store or the banks.

mod notice_page;
pub mod page;
pub mod report;
mod svg;
pub mod window;

use std::net::SocketAddr;

use aranea_review::{Actor, Review, ReviewError, now_millis};
use aranea_store::UserRole;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;
use crate::problem::ApiError;
use window::{Window, WindowQuery};

/// The session cookie the review UI sets at sign-in (path `/ui`).
const SESSION_COOKIE: &str = "aranea_session";

#[derive(Clone)]
struct StatsState {
    app: AppState,
    review: Review,
}

/// The statistics page's routes (mounted beside the review UI, which signs users in).
pub fn router(app: AppState, review: Review) -> Router {
    Router::new()
        .route("/ui/statistics", get(statistics_page))
        .route("/ui/notices", get(notice_list))
        .route("/ui/notices/{id}", get(notice_timeline))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(StatsState { app, review })
}

/// Who may see statistics, and for which hotline (`None`: all).
pub fn scope_of(actor: &Actor) -> Option<Option<String>> {
    match actor.role() {
        UserRole::PlatformAdmin => Some(None),
        UserRole::HotlineOperator | UserRole::Auditor => Some(Some(actor.hotline.code.clone())),
        UserRole::Analyst | UserRole::SeniorAnalyst => None,
    }
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

fn html_error(status: StatusCode, viewer: Option<(&Actor, &str)>, message: &str) -> Response {
    let body = format!(
        "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/ui/statistics\">Statistics</a></p>",
        page::esc(message)
    );
    (
        status,
        Html(page::frame("Statistics", viewer, false, &body)),
    )
        .into_response()
}

/// The window a query names and the time the statistics are taken at: the later of now and
/// the newest recorded event ([`aranea_notice::stats::as_of`], as for `aranea notices
/// stats`); the default window ends on that day.
async fn window_of(
    app: &AppState,
    query: Result<Query<WindowQuery>, QueryRejection>,
    hotline: Option<&str>,
) -> Result<(Window, i64), ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("Bad query: {}", e.body_text())))?;
    let now = aranea_notice::stats::as_of(app.store(), hotline, crate::api::now_ms())
        .await
        .map_err(ApiError::internal)?;
    Ok((window::window(&query, now)?, now))
}

/// The signed-in user and their CSRF token, or the response to send instead (to the login
/// page without a session). Takes what it needs from the request before awaiting, so the
/// handlers' futures stay `Send`.
fn signed_in(
    s: &StatsState,
    request: &Request,
) -> impl Future<Output = Result<(Actor, String), Response>> + Send + 'static {
    let token = session_token(request.headers()).map(str::to_owned);
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let review = s.review.clone();
    async move {
        let Some(token) = token else {
            return Err(Redirect::to("/ui/login").into_response());
        };
        match review.session(&token, &source, now_millis()).await {
            Ok(signed_in) => Ok(signed_in),
            Err(ReviewError::NoSession) => Err(Redirect::to("/ui/login").into_response()),
            Err(e) => {
                tracing::error!(error = %e, "statistics: session check failed");
                Err(html_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "Internal error.",
                ))
            }
        }
    }
}

/// A signed-in reader of the statistics and notice pages, their CSRF token and the hotline
/// they may read (`None`: every hotline), or the response to send instead: the login page,
/// or a 403 naming `pages` for roles that may not read them.
fn reader(
    s: &StatsState,
    request: &Request,
    pages: &'static str,
) -> impl Future<Output = Result<(Actor, String, Option<String>), Response>> + Send + 'static {
    let signing_in = signed_in(s, request);
    async move {
        let (actor, csrf) = signing_in.await?;
        match scope_of(&actor) {
            Some(hotline) => Ok((actor, csrf, hotline)),
            None => Err(html_error(
                StatusCode::FORBIDDEN,
                Some((&actor, csrf.as_str())),
                &format!(
                    "{pages} are for hotline operators, auditors and platform administrators."
                ),
            )),
        }
    }
}

/// A store failure: logged with what failed, a plain 500 page for the reader.
fn internal_error(
    viewer: Option<(&Actor, &str)>,
    what: &str,
    error: &dyn std::fmt::Display,
) -> Response {
    tracing::error!(error = %error, "{what}: store query failed");
    html_error(StatusCode::INTERNAL_SERVER_ERROR, viewer, "Internal error.")
}

async fn statistics_page(
    State(s): State<StatsState>,
    query: Result<Query<WindowQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let (actor, csrf, hotline) = match reader(&s, &request, "Statistics").await {
        Ok(reader) => reader,
        Err(response) => return response,
    };
    let viewer = Some((&actor, csrf.as_str()));
    let (window, now) = match window_of(&s.app, query, hotline.as_deref()).await {
        Ok(w) => w,
        Err(e) => return html_error(e.status, viewer, &e.detail),
    };
    let gathered = report::gather(s.app.store(), window, hotline.as_deref(), now).await;
    let counts = s.app.store().counts().await;
    let (report, counts) = match (gathered, counts) {
        (Ok(r), Ok(c)) => (r, c),
        (Err(e), _) | (_, Err(e)) => return internal_error(viewer, "statistics", &e),
    };
    let (base, delta) = s.app.banks().live().load().segment_sizes();
    let body = page::body(&report, &counts, base + delta);
    Html(page::frame("Statistics", viewer, true, &body)).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeListQuery {
    before: Option<i64>,
}

/// `GET /ui/notices[?before=ID]`: the newest notices of the reader's hotline (all for a
/// platform administrator), a page at a time.
async fn notice_list(
    State(s): State<StatsState>,
    query: Result<Query<NoticeListQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let (actor, csrf, hotline) = match reader(&s, &request, "Notices").await {
        Ok(reader) => reader,
        Err(response) => return response,
    };
    let viewer = Some((&actor, csrf.as_str()));
    let before = match query {
        Ok(Query(NoticeListQuery { before: None })) => None,
        Ok(Query(NoticeListQuery { before: Some(id) })) if id > 0 => {
            Some(aranea_store::NoticeId(id))
        }
        _ => {
            return html_error(
                StatusCode::BAD_REQUEST,
                viewer,
                "Bad query: `before` must be a notice id from the previous page.",
            );
        }
    };
    let filter = aranea_store::NoticeFilter {
        hotline,
        limit: Some(notice_page::PAGE),
        ..aranea_store::NoticeFilter::default()
    };
    match s
        .app
        .store()
        .notices()
        .list_notices_page(&filter, before)
        .await
    {
        Ok((notices, next)) => {
            let body = notice_page::list_body(&notices, next.map(|n| n.0));
            Html(page::frame("Notices", viewer, false, &body)).into_response()
        }
        Err(e) => internal_error(viewer, "notice list", &e),
    }
}

/// `GET /ui/notices/{id}`: one notice and its timeline, for the statistics' readers.
async fn notice_timeline(
    State(s): State<StatsState>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    request: Request,
) -> Response {
    let (actor, csrf, _) = match reader(&s, &request, "Notices").await {
        Ok(reader) => reader,
        Err(response) => return response,
    };
    let viewer = Some((&actor, csrf.as_str()));
    let not_found = || html_error(StatusCode::NOT_FOUND, viewer, "No such notice.");
    let Ok(Path(id)) = id else {
        return not_found();
    };
    let notices = s.app.store().notices();
    let notice = match notices.notice(aranea_store::NoticeId(id)).await {
        Ok(Some(notice)) if notice_page::may_read(&actor, &notice.hotline) => notice,
        Ok(_) => return not_found(),
        Err(e) => return internal_error(viewer, "notice page", &e),
    };
    let timeline = match notices.timeline(aranea_store::NoticeId(id)).await {
        Ok(timeline) => timeline,
        Err(e) => return internal_error(viewer, "notice page", &e),
    };
    let body = notice_page::body(&notice, &timeline);
    Html(page::frame(&format!("Notice {id}"), viewer, false, &body)).into_response()
}

/// `GET /api/v1/statistics/removals` (scope `read`): the page's numbers for `hotline`
/// (the caller's own, for a client bound to one) or, with `None`, for every hotline.
pub async fn removals_json(
    app: &AppState,
    query: Result<Query<WindowQuery>, QueryRejection>,
    hotline: Option<&str>,
) -> Result<serde_json::Value, ApiError> {
    let (window, now) = window_of(app, query, hotline).await?;
    let report = report::gather(app.store(), window, hotline, now)
        .await
        .map_err(ApiError::internal)?;
    Ok(report::to_json(&report))
}

/// The review UI's headers: no scripts, no remote content, no framing, nothing cached.
async fn security_headers(request: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    set(header::CACHE_CONTROL, "no-store");
    set(header::X_FRAME_OPTIONS, "DENY");
    response
}

/// The JSON endpoint's part of the OpenAPI document: its path (given the document's
/// standard responses for a schema) and its schemas.
pub fn openapi(
    ok: impl Fn(&str, &str) -> serde_json::Value,
) -> (serde_json::Value, serde_json::Value) {
    use serde_json::json;
    let date = |name: &str, what: &str| {
        json!({ "name": name, "in": "query",
        "schema": { "type": "string", "format": "date", "pattern": "^2[0-9]{3}-[0-9]{2}-[0-9]{2}$" },
        "description": format!("{what} (UTC, YYYY-MM-DD, included). At most {} days.", window::MAX_DAYS) })
    };
    let paths = json!({
        "/api/v1/statistics/removals": { "get": {
            "summary": "Removal statistics per provider, time to removal, and counts over time (scope read)",
            "parameters": [date("from", "First day"), date("to", "Last day")],
            "responses": ok("The statistics of the window", "RemovalStatistics") } },
    });
    let count = json!({ "type": "integer" });
    let hours = json!({ "type": ["number", "null"] });
    let series = json!({ "type": "array", "items": count });
    let schemas = json!({
        "ProviderRemovals": { "type": "object",
            "required": ["provider", "items", "removed", "outstanding", "median_hours_to_removal",
                "p90_hours_to_removal", "share_removed_within_24h", "notices_sent", "renotices",
                "escalations", "reupload_notices", "reuploads"],
            "properties": { "provider": { "type": "string" }, "items": count, "removed": count,
                "outstanding": count, "median_hours_to_removal": hours, "p90_hours_to_removal": hours,
                "share_removed_within_24h": hours, "notices_sent": count, "renotices": count,
                "escalations": count, "reupload_notices": count, "reuploads": count } },
        "RemovalStatistics": { "type": "object",
            "required": ["from", "to", "bucket", "buckets", "providers", "time_to_removal", "series"],
            "properties": {
                "from": { "type": "string", "format": "date" }, "to": { "type": "string", "format": "date" },
                "bucket": { "enum": ["hour", "day"] },
                "buckets": { "type": "array", "items": { "type": "string" } },
                "providers": { "type": "array", "items": { "$ref": "#/components/schemas/ProviderRemovals" } },
                "time_to_removal": { "type": "array", "items": { "type": "object", "required": ["bucket", "items"],
                    "properties": { "bucket": { "type": "string" }, "items": count } } },
                "series": { "type": "object", "required": ["notices_sent", "removals", "matches", "reports"],
                    "properties": { "notices_sent": series, "removals": series, "matches": series, "reports": series } } } },
    });
    (paths, schemas)
}
