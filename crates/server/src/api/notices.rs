//! `/api/v1/notices`: read-only views of removal notices, their items (with re-checks) and
//! timelines, for keys with the `read` scope. The list pages by keyset: each full page
//! carries a `next_cursor` (opaque to clients; the oldest notice id on the page) that asks
//! for the notices older than it, so pages stay stable while new notices arrive. The JSON is the notice room's own views (the
//! same shapes `aranea notices list|show --json` prints). Sending, resending and withdrawing
//! stay with the notice room; nothing here writes.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use aranea_notice::views;
use aranea_store::{CheckRecord, ItemId, NoticeFilter, NoticeId, NoticeState};

use crate::AppState;
use crate::api::{MAX_PAGE, path_text, require};
use crate::clients::{Caller, scope};
use crate::problem::ApiError;

const STATES: [NoticeState; 7] = [
    NoticeState::Queued,
    NoticeState::Sending,
    NoticeState::Committing,
    NoticeState::Sent,
    NoticeState::Uncertain,
    NoticeState::Failed,
    NoticeState::Withdrawn,
];

/// Longest provider key accepted as a filter (keys are like `asn:64501`).
const MAX_PROVIDER_BYTES: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notices", get(list_notices))
        .route("/api/v1/notices/{id}", get(show_notice))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    provider: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Longest cursor accepted: an i64 in decimal has at most 19 digits.
const MAX_CURSOR_BYTES: usize = 19;

/// A cursor from a previous page: a positive decimal id with no leading zero, as next_cursor
/// writes it, else a 400 that says what a cursor is. A value past `i64::MAX` (the document's
/// pattern allows 19 digits) asks, like `i64::MAX`, for the notices older than any id.
fn cursor(text: &str) -> Result<NoticeId, ApiError> {
    let refuse = || {
        ApiError::bad_request(
            "cursor: pass the next_cursor value of a previous page unchanged (a positive integer).",
        )
    };
    if text.is_empty()
        || text.len() > MAX_CURSOR_BYTES
        || text.starts_with('0')
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(refuse());
    }
    let id = text.parse::<u64>().map_err(|_| refuse())?;
    Ok(NoticeId(i64::try_from(id).unwrap_or(i64::MAX)))
}

fn state_filter(text: &str) -> Result<NoticeState, ApiError> {
    STATES
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            let known: Vec<&str> = STATES.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(format!(
                "state {text:?} is unknown; use one of {}.",
                known.join(", ")
            ))
        })
}

/// The page's filter; a client bound to a hotline sees only that hotline's notices.
fn filter(query: ListQuery, caller: &Caller) -> Result<(NoticeFilter, Option<NoticeId>), ApiError> {
    let limit = match query.limit {
        None => 100,
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "limit {n}: use 1 to {MAX_PAGE}."
            )));
        }
    };
    let state = query.state.as_deref().map(state_filter).transpose()?;
    if let Some(p) = &query.provider
        && (p.is_empty() || p.len() > MAX_PROVIDER_BYTES || p.contains('\0'))
    {
        return Err(ApiError::bad_request(format!(
            "provider: a provider key of 1 to {MAX_PROVIDER_BYTES} bytes."
        )));
    }
    let before = query.cursor.as_deref().map(cursor).transpose()?;
    let filter = NoticeFilter {
        state,
        provider_key: query.provider,
        hotline: caller.hotline.as_deref().map(str::to_owned),
        limit: Some(i64::from(limit)),
    };
    Ok((filter, before))
}

async fn list_notices(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require(&caller, &[scope::READ])?;
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("Bad query: {}", e.body_text())))?;
    let (filter, before) = filter(query, &caller)?;
    let (rows, next) = state
        .store()
        .notices()
        .list_notices_page(&filter, before)
        .await
        .map_err(ApiError::internal)?;
    let notices: Vec<Value> = rows.iter().map(views::notice_summary).collect();
    // A string, so clients treat it as opaque and it survives JSON number limits.
    let next_cursor = next.map(|id| id.0.to_string());
    Ok(Json(
        json!({ "notices": notices, "next_cursor": next_cursor }),
    ))
}

/// A notice id from the path: a positive integer, else a 400 that says so.
fn notice_id(text: &str) -> Result<NoticeId, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(NoticeId(id)),
        _ => Err(ApiError::bad_request(
            "id: a notice id is a positive integer.",
        )),
    }
}

fn check(c: &CheckRecord) -> Value {
    json!({
        "at": c.at,
        "outcome": c.outcome,
        "http_status": c.http_status,
        "detail": c.detail,
    })
}

async fn show_notice(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    require(&caller, &[scope::READ])?;
    let id = notice_id(&path_text(path)?)?;
    let store = state.store().notices();
    let notice = store
        .notice(id)
        .await
        .map_err(ApiError::internal)?
        // Another hotline's notice is not this client's to know of: the same 404 as none.
        .filter(|notice| caller.may_read_hotline(&notice.hotline))
        .ok_or_else(ApiError::not_found)?;
    let mut items = Vec::new();
    for item in store
        .items_of_notice(id)
        .await
        .map_err(ApiError::internal)?
    {
        let checks = store
            .checks_of_item(ItemId(item.id))
            .await
            .map_err(ApiError::internal)?;
        let mut value = views::item(&item);
        value["checks"] = checks.iter().map(check).collect();
        items.push(value);
    }
    let timeline: Vec<Value> = store
        .timeline(id)
        .await
        .map_err(ApiError::internal)?
        .iter()
        .map(views::event)
        .collect();
    Ok(Json(json!({
        "notice": views::notice_full(&notice),
        "items": items,
        "timeline": timeline,
    })))
}

/// The endpoints' part of the OpenAPI document: paths.
pub fn openapi_paths(ok: impl Fn(&str, &str) -> Value) -> Value {
    let mut shown = ok(
        "The notice, its items with their re-checks, and its timeline",
        "NoticeDetail",
    );
    shown["404"] = json!({ "description": "No such notice",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    json!({
        "/api/v1/notices": { "get": { "summary": "Removal notices, newest first, in pages (scope read)",
            "parameters": [
                { "name": "state", "in": "query", "schema": { "enum": STATES.iter().map(|s| s.as_str()).collect::<Vec<_>>() } },
                { "name": "provider", "in": "query", "schema": super::openapi::at_most_bytes(json!({ "type": "string", "minLength": 1, "pattern": super::openapi::NO_NUL }), MAX_PROVIDER_BYTES),
                  "description": "Provider key, e.g. asn:64501." },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE } },
                { "name": "cursor", "in": "query", "schema": { "type": "string", "pattern": "^[1-9][0-9]{0,18}$" },
                  "description": "The next_cursor of the previous page, unchanged: the notices older than that page (same filters)." }
            ],
            "responses": ok("Notices (without their rendered bodies)", "NoticeList") } },
        "/api/v1/notices/{id}": { "get": { "summary": "One notice with its items and timeline (scope read)",
            "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1, "maximum": i64::MAX } } ],
            "responses": shown } },
    })
}

fn properties(fields: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    let props: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    json!({ "type": "object", "required": required, "properties": props })
}

/// The endpoints' part of the OpenAPI document: schemas.
pub fn openapi_schemas() -> Value {
    let t = |kind: &str| json!({ "type": kind });
    let maybe = |kind: &str| json!({ "type": [kind, "null"] });
    let time = json!({ "type": "string", "format": "date-time" });
    let maybe_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let summary = [
        ("id", t("integer")),
        ("reference", t("string")),
        ("idempotency_key", t("string")),
        ("provider", t("string")),
        ("provider_key", t("string")),
        ("hotline", t("string")),
        ("kind", t("string")),
        ("escalation_step", maybe("string")),
        ("via_cdn", maybe("string")),
        ("channel", t("string")),
        ("recipient", t("string")),
        ("language", t("string")),
        (
            "state",
            json!({ "enum": STATES.iter().map(|s| s.as_str()).collect::<Vec<_>>() }),
        ),
        ("attempts", t("integer")),
        ("last_error", maybe("string")),
        ("created_at", time.clone()),
        ("sent_at", maybe_time.clone()),
        ("response", maybe("string")),
        ("response_at", maybe_time.clone()),
        ("parent_id", maybe("integer")),
        ("test", t("boolean")),
        ("subject", t("string")),
    ];
    let mut full = summary.to_vec();
    full.push(("body_text", t("string")));
    full.push(("body_html", t("string")));
    full.push(("xarf", json!({ "type": ["object", "array", "null"] })));
    let item = [
        ("id", t("integer")),
        ("url", t("string")),
        ("host", t("string")),
        ("sha256", t("string")),
        ("md5", t("string")),
        ("classification", t("string")),
        ("provider", t("string")),
        ("provider_key", t("string")),
        ("asn", maybe("integer")),
        ("prefix", maybe("string")),
        ("country", maybe("string")),
        ("hotline", t("string")),
        ("via_cdn", maybe("string")),
        ("attribution_method", t("string")),
        ("confidence", t("integer")),
        ("state", json!({ "enum": ["open", "removed", "withdrawn"] })),
        ("removed_at", maybe_time.clone()),
        ("removal_kind", maybe("string")),
        ("notices_sent", t("integer")),
        ("escalation_level", t("integer")),
        ("next_check_at", maybe_time),
        ("reupload_of", maybe("integer")),
        (
            "checks",
            json!({ "type": "array", "items": { "$ref": "#/components/schemas/NoticeCheck" } }),
        ),
    ];
    let check = [
        ("at", t("integer")),
        ("outcome", t("string")),
        ("http_status", maybe("integer")),
        ("detail", t("string")),
    ];
    let event = [
        ("at", time),
        ("notice_id", maybe("integer")),
        ("item_id", maybe("integer")),
        ("kind", t("string")),
        ("detail", t("string")),
    ];
    let array = |of: &str| json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{of}") } });
    json!({
        "NoticeSummary": properties(&summary),
        "Notice": properties(&full),
        "NoticeItem": properties(&item),
        "NoticeCheck": properties(&check),
        "NoticeEvent": properties(&event),
        "NoticeList": properties(&[
            ("notices", array("NoticeSummary")),
            ("next_cursor", json!({ "type": ["string", "null"],
                "description": "Set when the page was full: pass it as cursor for the next page. A full last page leads to one empty page." })),
        ]),
        "NoticeDetail": properties(&[
            ("notice", json!({ "$ref": "#/components/schemas/Notice" })),
            ("items", array("NoticeItem")),
            ("timeline", array("NoticeEvent")),
        ]),
    })
}
