//! The matching API, compatible with Arachnid Shield v1: `POST /v1/media/`, `POST /v1/url/`
//! and `POST /v1/pdq/`, HTTP Basic authentication, `ScannedMedia` answers and
//! `{"detail": ...}` errors, so clients written for Shield (its Python and Rust SDKs among
//! them) work unchanged.
//!
//! Shield knows two classifications; a bank label `csam` is reported as `csam` and every other
//! label as `harmful-abusive-material` (a hit in an ordinary bank is always something to act
//! on; allow-list hits suppress and are never reported). This module must not store media.

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, HashMap};

use aranea_hash::MediaHashes;
use aranea_index::{BankFilter, EntryId, Generation, Hit, MatchResult, Signal, SignalType};

use crate::AppState;
use crate::banks::MediaRef;
use crate::clients::{Refusal, scope};
use crate::problem::{ApiError, body_rejection, json_body};
use crate::video::FrameRow;

/// `classification` of a piece of media or hash with no hit.
pub const NO_KNOWN_MATCH: &str = "no-known-match";

/// A record of a scanned piece of media (Shield's `ScannedMedia`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ScannedMedia {
    pub sha1_base32: String,
    pub sha256_hex: String,
    pub size_bytes: u64,
    pub classification: String,
    /// `exact` (a cryptographic hash matched), `near` (PDQ only) or null.
    pub match_type: Option<String>,
    /// PDQ hits, nearest first.
    /// PDQ hits, nearest first; for a video, the frames that matched, by timestamp.
    pub near_match_details: Vec<NearMatchDetail>,
}

/// One near match (Shield's `NearMatchDetails`, with the PDQ distance as `distance`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct NearMatchDetail {
    /// Seconds into a video; 0 for still images.
    pub timestamp: f64,
    /// Of the known media, when its bank entry says (empty otherwise).
    pub sha1_base32: String,
    pub sha256_hex: String,
    pub classification: String,
    /// PDQ Hamming distance.
    pub distance: u32,
}

/// The answer for one queried PDQ hash.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ScannedPdq {
    pub classification: String,
    pub match_type: Option<String>,
    pub near_match_details: Option<NearMatchDetail>,
}

/// The answer of `POST /v1/pdq/`: each queried hash, as sent, to its answer.
#[derive(Debug, Serialize)]
struct ScannedHashes<'a> {
    scanned_hashes: BTreeMap<&'a str, ScannedPdq>,
}

#[derive(Debug, Deserialize)]
struct UrlRequest {
    url: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PdqRequest {
    pub(crate) hashes: Vec<String>,
}

/// The `/v1/...` routes, behind Basic authentication with the `shield` scope.
pub fn router(state: AppState) -> Router {
    let media_limit = state.config().max_media_bytes;
    let json_limit = state.config().max_json_bytes;
    Router::new()
        .route("/v1/media/", post(scan_media))
        .route("/v1/media", post(scan_media))
        .layer(DefaultBodyLimit::max(media_limit))
        .merge(
            Router::new()
                .route("/v1/url/", post(scan_url))
                .route("/v1/url", post(scan_url))
                .route("/v1/pdq/", post(scan_pdq))
                .route("/v1/pdq", post(scan_pdq))
                .layer(DefaultBodyLimit::max(json_limit)),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), shield_auth))
        .route("/v1/", any(crate::api::no_such_operation))
        .route("/v1/{*rest}", any(crate::api::no_such_operation))
        .with_state(state)
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("Method \"{method}\" not allowed."),
    )
}

async fn shield_auth(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match state.clients().authenticate(header).await {
        Ok(caller) if caller.has_scope(scope::SHIELD) => {
            if let Some(limiter) = &caller.limiter
                && let Err(wait) = limiter.try_acquire()
            {
                return ApiError::rate_limited(wait).into_response();
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(_) => ApiError::forbidden("You do not have permission to perform this action.")
            .into_response(),
        Err(Refusal::Missing) => {
            ApiError::unauthorized("Authentication credentials were not provided.").into_response()
        }
        Err(Refusal::Invalid) => {
            ApiError::unauthorized("Invalid username/password.").into_response()
        }
    }
}

async fn scan_media(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ScannedMedia>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let accepted = essence.starts_with("image/")
        || essence.starts_with("video/")
        || essence == "application/octet-stream";
    if !accepted {
        return Err(ApiError::unsupported_type(content_type));
    }
    let body = body.map_err(|r| body_rejection(r, state.config().max_media_bytes))?;
    scan_bytes(&state, body).await.map(Json)
}

async fn scan_url(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ScannedMedia>, ApiError> {
    let body = body.map_err(|r| body_rejection(r, state.config().max_json_bytes))?;
    let request: UrlRequest = json_body(&headers, &body)?;
    let url = url::Url::parse(request.url.trim())
        .map_err(|e| ApiError::bad_request(format!("Enter a valid URL ({e}).")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request("Enter a valid URL (http or https)."));
    }
    let fetched = state.fetcher().fetch(&url).await;
    let response = fetched
        .outcome
        .map_err(|e| ApiError::bad_request(format!("Could not download the media: {e}.")))?;
    if !response.is_success() {
        return Err(ApiError::bad_request(format!(
            "Could not download the media: the server answered {}.",
            response.status
        )));
    }
    if response.truncated {
        return Err(ApiError::too_large(state.config().max_media_bytes));
    }
    scan_bytes(&state, response.body).await.map(Json)
}

/// Hashes and matches one piece of media on the bounded blocking pool; videos and
/// animations also by their frames ([`crate::video`]).
async fn scan_bytes(state: &AppState, body: Bytes) -> Result<ScannedMedia, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("The submitted media is empty."));
    }
    let hashes = state.hash(body.clone()).await?;
    let frames = state.hash_video(body, hashes.kind).await?;
    let generation = state.banks().live().load();
    let mut digests = vec![
        Signal::from_bytes(SignalType::Md5, &hashes.md5),
        Signal::from_bytes(SignalType::Sha1, &hashes.sha1),
        Signal::from_bytes(SignalType::Sha256, &hashes.sha256),
    ];
    if frames.is_some() {
        digests.push(Signal::from_bytes(SignalType::VideoMd5, &hashes.md5));
    }
    let digests: Vec<Signal> = digests.into_iter().flatten().collect();
    let pdq: Vec<aranea_hash::PdqHash> = hashes
        .pdq
        .as_ref()
        .filter(|p| p.quality >= state.config().min_pdq_quality)
        .map(|p| p.hash)
        .into_iter()
        .collect();
    let result = generation.match_media(&digests, &pdq, &BankFilter::All);
    // An allow-listed file is allowed whole: its frames are not searched.
    let video = match frames {
        Some(features) if result.allowed_by.is_empty() => {
            let matcher = state.clone();
            let generation = std::sync::Arc::clone(&generation);
            let query = MediaRef {
                sha1_base32: hashes.sha1_base32(),
                sha256_hex: hashes.sha256_hex(),
            };
            tokio::task::spawn_blocking(move || {
                crate::video::near_matches(&matcher, &generation, &features, &query)
            })
            .await
            .map_err(ApiError::internal)?
        }
        _ => Vec::new(),
    };
    state
        .metrics()
        .record_match(!result.hits.is_empty() || !video.is_empty());
    Ok(scanned_media(state, &hashes, &result, video))
}

/// The rows in order, a bank entry's rows folded into its earliest (then nearest) one, in the
/// place of the first: an animation's first frame matches as a still picture and as a frame.
fn one_row_per_entry(rows: impl Iterator<Item = FrameRow>) -> Vec<NearMatchDetail> {
    let mut kept: Vec<NearMatchDetail> = Vec::new();
    let mut place: HashMap<EntryId, usize> = HashMap::new();
    for row in rows {
        let Some(entry) = row.entry else {
            kept.push(row.detail);
            continue;
        };
        match place.get(&entry).and_then(|&i| kept.get_mut(i)) {
            Some(seen) => {
                let better =
                    (row.detail.timestamp, row.detail.distance) < (seen.timestamp, seen.distance);
                if better {
                    *seen = row.detail;
                }
            }
            None => {
                place.insert(entry, kept.len());
                kept.push(row.detail);
            }
        }
    }
    kept
}

/// Shield's label for a bank classification.
pub(crate) fn shield_label(label: &str) -> &'static str {
    if label == "csam" {
        "csam"
    } else {
        "harmful-abusive-material"
    }
}

fn overall_classification(hits: &[Hit]) -> String {
    if hits.is_empty() {
        NO_KNOWN_MATCH
    } else if hits
        .iter()
        .any(|h| shield_label(&h.classification) == "csam")
    {
        "csam"
    } else {
        "harmful-abusive-material"
    }
    .to_owned()
}

fn near_detail(state: &AppState, hit: &Hit) -> NearMatchDetail {
    let media = state.banks().media_ref(hit.entry).unwrap_or_default();
    NearMatchDetail {
        timestamp: 0.0,
        sha1_base32: media.sha1_base32,
        sha256_hex: media.sha256_hex,
        classification: shield_label(&hit.classification).to_owned(),
        distance: hit.distance,
    }
}

fn scanned_media(
    state: &AppState,
    hashes: &MediaHashes,
    result: &MatchResult,
    video: Vec<FrameRow>,
) -> ScannedMedia {
    let exact = result
        .hits
        .iter()
        .any(|h| !matches!(h.value, Signal::Pdq(_)));
    let still = result
        .hits
        .iter()
        .filter(|h| matches!(h.value, Signal::Pdq(_)))
        .map(|h| FrameRow {
            entry: Some(h.entry),
            detail: near_detail(state, h),
        });
    let near = one_row_per_entry(still.chain(video));
    let match_type = if exact {
        Some("exact")
    } else if !near.is_empty() {
        Some("near")
    } else {
        None
    };
    let classification = if near.iter().any(|d| d.classification == "csam") {
        "csam".to_owned()
    } else if result.hits.is_empty() && !near.is_empty() {
        "harmful-abusive-material".to_owned()
    } else {
        overall_classification(&result.hits)
    };
    ScannedMedia {
        sha1_base32: hashes.sha1_base32(),
        sha256_hex: hashes.sha256_hex(),
        size_bytes: hashes.size_bytes,
        classification,
        match_type: match_type.map(str::to_owned),
        near_match_details: near,
    }
}

/// The results of PDQ `signals`, in order, searched here on the runtime worker (measured
/// against a pool of matching threads that batched concurrent requests: at 1M and 10M
/// entries the pool answered about half as many requests per CPU second; docs/server.md).
/// One hash is searched alone: `match_batch` of one query costs 2-3 times `match_signal`.
fn search_pdq(generation: &Generation, signals: &[Signal]) -> Vec<MatchResult> {
    match signals {
        [one] => vec![generation.match_signal(one, &BankFilter::All)],
        many => generation.match_batch(many, &BankFilter::All),
    }
}

/// A `POST /v1/pdq/` body read: the hashes as sent and their PDQ values, in order, or the
/// error answered (at most `limit` hashes, each the base64 of 32 bytes once trimmed; the first
/// bad one is named).
pub(crate) fn pdq_request(
    headers: &HeaderMap,
    body: &[u8],
    limit: usize,
) -> Result<(PdqRequest, Vec<Signal>), ApiError> {
    let request: PdqRequest = json_body(headers, body)?;
    if request.hashes.len() > limit {
        return Err(ApiError::bad_request(format!(
            "Too many hashes: at most {limit} per request."
        )));
    }
    let mut signals = Vec::with_capacity(request.hashes.len());
    for text in &request.hashes {
        let signal = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|raw| Signal::from_bytes(SignalType::Pdq, &raw))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid PDQ hash {:?}: expected the base64 of 32 bytes.",
                    text.chars().take(64).collect::<String>()
                ))
            })?;
        signals.push(signal);
    }
    Ok((request, signals))
}

async fn scan_pdq(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| body_rejection(r, state.config().max_json_bytes))?;
    let (request, signals) = pdq_request(&headers, &body, state.config().max_pdq_hashes)?;
    let results = search_pdq(&state.banks().live().load(), &signals);
    // Serialized straight from these types (no `serde_json::Value` tree built per request);
    // sorted by hash, the later of two equal hashes kept, as a JSON object is.
    let mut scanned = BTreeMap::new();
    for (text, result) in request.hashes.iter().zip(&results) {
        state.metrics().record_match(!result.hits.is_empty());
        let answer = match result.hits.first() {
            None => ScannedPdq {
                classification: NO_KNOWN_MATCH.to_owned(),
                match_type: None,
                near_match_details: None,
            },
            Some(nearest) => ScannedPdq {
                classification: overall_classification(&result.hits),
                match_type: Some("near".to_owned()),
                near_match_details: Some(near_detail(&state, nearest)),
            },
        };
        scanned.insert(text.as_str(), answer);
    }
    Ok(Json(ScannedHashes {
        scanned_hashes: scanned,
    })
    .into_response())
}
