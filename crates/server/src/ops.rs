//! Operations endpoints: `/metrics` (Prometheus), `/healthz` (the process answers) and
//! `/readyz` (the database answers and the banks are loaded), and the request observer that
//! counts and logs every request.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::metrics::{LabelledGauge, ScrapedValue};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Counts the request by route pattern and logs failures.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // A shared pointer to the pattern, not a copy: nothing is allocated per request here.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let status = response.status();
    let elapsed = started.elapsed();
    state
        .metrics()
        .record_request(method.as_str(), route, status.as_u16(), elapsed);
    if status.is_server_error() {
        tracing::warn!(%method, route, status = status.as_u16(), ?elapsed, "request failed");
    } else {
        tracing::debug!(%method, route, status = status.as_u16(), ?elapsed, "request");
    }
    response
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database. The pool waits up to its acquire timeout (10 s)
/// for a connection to a database that refuses them, longer than a probe waits (Kubernetes'
/// default probe timeout is 1 s): past this bound the answer is "unavailable" rather than none.
const READY_DEADLINE: Duration = Duration::from_secs(2);

/// How long a scrape of `/metrics` waits for the store's row counts: under Prometheus' default
/// scrape timeout (10 s), so a scrape answers `aranea_store_up 0` instead of timing out, and
/// longer than [`READY_DEADLINE`], since counting the rows of a large crawl takes a moment.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(5);

async fn readyz(State(state): State<AppState>) -> Response {
    let detail = match tokio::time::timeout(READY_DEADLINE, state.store().schema_version()).await {
        Ok(Ok(version)) => {
            return Json(serde_json::json!({
                "status": "ready",
                "schema_version": version,
                "bank_generation": state.banks().live().load().seq(),
            }))
            .into_response();
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!(
            "the database did not answer within {} s",
            READY_DEADLINE.as_secs()
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "status": "unavailable", "detail": detail })),
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let generation = state.banks().live().load();
    let (base, delta) = generation.segment_sizes();
    let mut values = vec![
        ScrapedValue::gauge(
            "aranea_bank_entries",
            "Entries in the live index (base and delta segments).",
            (base + delta) as f64,
        ),
        ScrapedValue::gauge(
            "aranea_banks",
            "Banks defined.",
            generation.banks().len() as f64,
        ),
    ];
    let store = state.store();
    let notices = store.notices();
    let read = tokio::time::timeout(SCRAPE_DEADLINE, async {
        tokio::join!(store.counts(), notices.state_counts())
    })
    .await;
    let (counts, states) = match read {
        Ok((Ok(counts), Ok(states))) => (Some(counts), Some(states)),
        _ => (None, None),
    };
    values.push(ScrapedValue::gauge(
        "aranea_store_up",
        "1 if the database answered this scrape within 5 s, 0 if not (its values are then left out).",
        if counts.is_some() { 1.0 } else { 0.0 },
    ));
    if let Some(c) = &counts {
        // Rows of these tables are never deleted: counters, so `rate()` gives reports, fetches
        // and matches per second. The ones that go down too are gauges.
        values.extend([
            ScrapedValue::counter("aranea_reports_total", "Reports recorded.", c.reports),
            ScrapedValue::gauge(
                "aranea_urls_queued",
                "URLs waiting in the crawl frontier.",
                c.urls_queued as f64,
            ),
            ScrapedValue::counter("aranea_fetches_total", "Fetches recorded.", c.fetches),
            ScrapedValue::counter(
                "aranea_media_hashed_total",
                "Distinct media hashed.",
                c.media,
            ),
            ScrapedValue::counter(
                "aranea_sightings_total",
                "Sightings of media at URLs.",
                c.sightings,
            ),
            ScrapedValue::counter("aranea_matches_total", "Bank matches recorded.", c.matches),
            ScrapedValue::gauge(
                "aranea_review_backlog",
                "Media waiting in the review queue.",
                c.review as f64,
            ),
        ]);
    }
    let mut labelled = Vec::new();
    if let Some(counts) = &states {
        let samples = |rows: &[(&'static str, i64)]| {
            rows.iter()
                .map(|(s, n)| (*s, *n as f64))
                .collect::<Vec<_>>()
        };
        labelled.push(LabelledGauge {
            name: "aranea_notices",
            help: "Removal notices by delivery state (failed ones wait for an operator's resend).",
            label: "state",
            samples: samples(&counts.notices),
        });
        labelled.push(LabelledGauge {
            name: "aranea_notice_items",
            help: "Noticed URLs by state (open: still online or not yet re-checked).",
            label: "state",
            samples: samples(&counts.items),
        });
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(&values, &labelled),
    )
        .into_response()
}
