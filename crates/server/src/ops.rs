//! Operations endpoints: `/metrics` (Prometheus), `/healthz` (the process answers) and
//! `/readyz` (the database answers and the banks are loaded), and the request observer that
//! counts and logs every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::metrics::LabelledGauge;

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

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store().schema_version().await {
        Ok(version) => Json(serde_json::json!({
            "status": "ready",
            "schema_version": version,
            "bank_generation": state.banks().live().load().seq(),
        }))
        .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable", "detail": error.to_string() })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let generation = state.banks().live().load();
    let (base, delta) = generation.segment_sizes();
    let mut gauges = vec![
        (
            "aranea_bank_entries",
            "Entries in the live index (base and delta segments).",
            (base + delta) as f64,
        ),
        (
            "aranea_banks",
            "Banks defined.",
            generation.banks().len() as f64,
        ),
    ];
    let counts = state.store().counts().await.ok();
    if let Some(c) = &counts {
        gauges.extend([
            ("aranea_reports", "Reports recorded.", c.reports as f64),
            (
                "aranea_urls_queued",
                "URLs waiting in the crawl frontier.",
                c.urls_queued as f64,
            ),
            ("aranea_fetches", "Fetches recorded.", c.fetches as f64),
            (
                "aranea_media_hashed",
                "Distinct media hashed.",
                c.media as f64,
            ),
            (
                "aranea_sightings",
                "Sightings of media at URLs.",
                c.sightings as f64,
            ),
            ("aranea_matches", "Bank matches recorded.", c.matches as f64),
            (
                "aranea_review_backlog",
                "Media waiting in the review queue.",
                c.review as f64,
            ),
        ]);
    }
    let mut labelled = Vec::new();
    if let Ok(counts) = state.store().notices().state_counts().await {
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
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(&gauges, &labelled),
    )
        .into_response()
}
