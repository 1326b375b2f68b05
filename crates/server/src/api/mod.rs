//! The native JSON API under `/api/v1`: intake (reports), banks, matches, sightings and
//! statistics, for API keys with scopes and per-key rate limits. Errors use the same
//! `{"detail": ...}` shape as the Shield API. The OpenAPI 3.1 description is [`openapi`].
//!
//! Handlers call the rooms' own operations (store, index); they must not write tables or bank
//! files around them.

mod banks;
mod notices;
pub mod openapi;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use aranea_store::{NewReport, ReportId, ReportReference};

use crate::AppState;
use crate::clients::{Caller, Refusal, scope};
use crate::problem::{ApiError, body_rejection, json_body};

/// Most rows one list request returns.
pub const MAX_PAGE: u32 = 1000;

pub fn router(state: AppState) -> Router {
    let json_limit = state.config().max_json_bytes;
    let authed = Router::new()
        .route("/api/v1/reports", post(submit_report))
        .route("/api/v1/reports/{id}", get(get_report))
        .route("/api/v1/matches", get(list_matches))
        .route("/api/v1/sightings", get(list_sightings))
        .route("/api/v1/statistics", get(statistics))
        .route("/api/v1/statistics/removals", get(removal_statistics))
        .layer(axum::extract::DefaultBodyLimit::max(json_limit))
        .merge(banks::router(state.clone()))
        .merge(notices::router())
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), api_auth));
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(openapi::document).fallback(method_not_allowed),
        )
        .route("/api/v1/", any(no_such_operation))
        .route("/api/v1/{*rest}", any(no_such_operation))
        .merge(authed)
        .with_state(state)
}

/// Any path under `/api/v1` or `/v1` that names no operation: a 404 in the API's JSON error
/// shape (axum's own is an empty body), whatever the method.
pub(crate) async fn no_such_operation() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method \"{method}\" not allowed."),
    )
}

/// Authenticates (Basic or `Bearer NAME:SECRET`), applies the key's rate limit and hands the
/// caller to the handler.
async fn api_auth(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match state.clients().authenticate(header).await {
        Ok(caller) => {
            if let Some(limiter) = &caller.limiter
                && let Err(wait) = limiter.try_acquire()
            {
                return ApiError::rate_limited(wait).into_response();
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(Refusal::Missing) => {
            ApiError::unauthorized("Authentication credentials were not provided.").into_response()
        }
        Err(Refusal::Invalid) => {
            ApiError::unauthorized("Invalid username/password.").into_response()
        }
    }
}

/// A path parameter, or a JSON 400 when it is not one (it percent-decodes to bytes that are not
/// UTF-8): axum's own answer would be plain text, which the document does not declare.
pub(crate) fn path_text(
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    path.map(|Path(text)| text)
        .map_err(|e| ApiError::bad_request(format!("Bad path: {}", e.body_text())))
}

/// Refuses callers without one of `scopes`.
pub(crate) fn require(caller: &Caller, scopes: &[&str]) -> Result<(), ApiError> {
    if scopes.iter().any(|s| caller.has_scope(s)) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "This API key lacks the scope this call needs ({}).",
            scopes.join(" or ")
        )))
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn store_error(error: aranea_store::StoreError) -> ApiError {
    use aranea_store::StoreError as E;
    match error {
        E::TooLong { .. }
        | E::Empty { .. }
        | E::NulInText { .. }
        | E::ControlInLine { .. }
        | E::OutOfRange { .. } => ApiError::bad_request(error.to_string()),
        E::UnknownHotline { .. } => ApiError::bad_request(format!("hotline: {error}.")),
        other => ApiError::internal(other),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportRequest {
    url: String,
    #[serde(default)]
    reporter: Option<String>,
    #[serde(default)]
    hotline: Option<String>,
    #[serde(default)]
    notes: String,
}

async fn submit_report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    require(&caller, &[scope::INTAKE])?;
    let body = body.map_err(|r| body_rejection(r, state.config().max_json_bytes))?;
    let request: ReportRequest = json_body(&headers, &body)?;
    // The intake's URL rules, shared with the UI's report forms.
    let url = crate::ui::intake::reported_url(&request.url)
        .map_err(|refusal| ApiError::bad_request(format!("url: {refusal}.")))?
        .to_owned();
    let hotline = match (&caller.hotline, request.hotline) {
        (None, requested) => requested.unwrap_or_else(|| "default".to_owned()),
        (Some(own), None) => own.to_string(),
        (Some(own), Some(requested)) if **own == *requested => requested,
        (Some(own), Some(requested)) => {
            return Err(ApiError::forbidden(format!(
                "hotline: this client reports to hotline {own:?} only, not {requested:?}."
            )));
        }
    };
    let report = NewReport {
        url,
        reporter: request.reporter.unwrap_or_else(|| caller.name.to_string()),
        hotline,
        notes: request.notes,
    };
    let id = state
        .store()
        .reports()
        .add(&report, now_ms())
        .await
        .map_err(store_error)?;
    let stored = state.store().reports().get(id).await.map_err(store_error)?;
    let body = stored.as_ref().map_or(Value::Null, report_json);
    let location = format!("/api/v1/reports/{}", id.get());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

fn report_json(report: &aranea_store::Report) -> Value {
    json!({
        "id": report.id.get(),
        "reference": report.reference.as_str(),
        "url": report.url,
        "reporter": report.reporter,
        "hotline": report.hotline,
        "notes": report.notes,
        "reported_at": report.reported_at,
        "status": report.status.as_str(),
        "reason": report.reason,
    })
}

async fn get_report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, ApiError> {
    require(&caller, &[scope::INTAKE, scope::READ])?;
    let key = path_text(path)?;
    let reports = state.store().reports();
    // The internal id (digits), or the public reference (which always holds dashes or
    // letters as written: `7KQ3-M9XD-2FHA`).
    let found = match key.parse::<i64>() {
        Ok(id) => reports.get(ReportId::from_raw(id)).await,
        Err(_) => match ReportReference::parse(&key) {
            Some(reference) => reports.by_reference(&reference).await,
            None => return Err(ApiError::not_found()),
        },
    };
    let report = found
        .map_err(store_error)?
        .filter(|report| caller.may_read_hotline(&report.hotline))
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(report_json(&report)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<u32>,
    before: Option<i64>,
}

impl Page {
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!(
                "limit {n}: use 1 to {MAX_PAGE}."
            ))),
        }
    }
}

fn page(
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Page, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("Bad query: {}", e.body_text())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn list_matches(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require(&caller, &[scope::READ])?;
    let page = page(query)?;
    let rows = state
        .store()
        .server_views()
        .matches(page.limit()?, page.before)
        .await
        .map_err(store_error)?;
    let matches: Vec<Value> = rows
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "sighting_id": m.sighting_id, "media_sha256": hex(&m.media_sha256),
                "url": m.url, "page_url": m.page_url, "bank": m.bank_name, "entry": m.entry_id,
                "signal_type": m.signal_type, "distance": m.distance,
                "classification": m.classification, "matched_at": m.matched_at,
            })
        })
        .collect();
    Ok(Json(json!({ "matches": matches })))
}

async fn list_sightings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require(&caller, &[scope::READ])?;
    let page = page(query)?;
    let rows = state
        .store()
        .server_views()
        .sightings(page.limit()?, page.before)
        .await
        .map_err(store_error)?;
    let sightings: Vec<Value> = rows
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "media_sha256": hex(&s.media_sha256), "url": s.url,
                "page_url": s.page_url, "member_path": s.member_path,
                "first_seen_at": s.first_seen_at, "last_seen_at": s.last_seen_at,
                "server_ip": s.server_ip,
            })
        })
        .collect();
    Ok(Json(json!({ "sightings": sightings })))
}

async fn statistics(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    require(&caller, &[scope::READ])?;
    let c = state.store().counts().await.map_err(store_error)?;
    let generation = state.banks().live().load();
    let (base, delta) = generation.segment_sizes();
    Ok(Json(json!({
        "reports": c.reports, "hosts": c.hosts, "urls": c.urls, "urls_queued": c.urls_queued,
        "fetches": c.fetches, "media": c.media, "sightings": c.sightings, "matches": c.matches,
        "review_backlog": c.review, "banks": generation.banks().len(),
        "bank_entries": base + delta,
    })))
}

/// The statistics page's numbers (scope read): a hotline client's own hotline, a platform
/// client's every hotline; see [`crate::stats`].
async fn removal_statistics(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<
        Query<crate::stats::window::WindowQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Json<Value>, ApiError> {
    require(&caller, &[scope::READ])?;
    crate::stats::removals_json(&state, query, caller.hotline.as_deref())
        .await
        .map(Json)
}
