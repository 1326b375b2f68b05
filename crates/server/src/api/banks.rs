//! `/api/v1/banks`: list, create, change the settings of, import into, disable and enable
//! banks. Changes go through the live banks' writer and are visible to matching at once.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use aranea_index::bank::MAX_CLASSIFICATION_BYTES;
use aranea_index::import::{ImportInto, ImportListError, ImportOptions, ListFormat};
use aranea_index::{BankKind, BankSpec, Origin, Provenance, SignalType, StoreError};

use crate::AppState;
use crate::api::{path_text, require};
use crate::clients::{Caller, scope};
use crate::problem::{ApiError, body_rejection, json_body, with_causes};

/// The check of every bank change: the `banks` scope, held by a platform client. A client
/// bound to a hotline is refused even with the scope (as `issue_hotline_client` refuses to
/// give it), since every hotline's matching reads these banks: an allow-list it filled, or a
/// bank it disabled, would blind matching for all of them.
fn require_bank_writer(caller: &Caller) -> Result<(), ApiError> {
    require(caller, &[scope::BANKS])?;
    match caller.hotline.as_deref() {
        None => Ok(()),
        Some(hotline) => Err(ApiError::forbidden(format!(
            "This API key acts for hotline {hotline:?} only, and the banks are shared by every hotline: only a platform key may change them."
        ))),
    }
}

/// Line errors quoted in a refused import.
const SHOWN_ERRORS: usize = 20;

pub fn router(state: AppState) -> Router<AppState> {
    let import_limit = state.config().max_import_bytes;
    // The JSON bodies get the API's JSON limit here: the parent's layer covers only the
    // routes added before it, so these fell back to axum's 2 MiB.
    let json_limit = DefaultBodyLimit::max(state.config().max_json_bytes);
    Router::new()
        .route(
            "/api/v1/banks",
            get(list_banks).post(create_bank).layer(json_limit),
        )
        .route("/api/v1/banks/{name}", patch(change_bank).layer(json_limit))
        .route("/api/v1/banks/{name}/disable", post(disable_bank))
        .route("/api/v1/banks/{name}/enable", post(enable_bank))
        .route(
            "/api/v1/banks/{name}/import",
            post(import_entries).layer(DefaultBodyLimit::max(import_limit)),
        )
}

fn bank_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NoSuchBank(_) => ApiError::not_found(),
        StoreError::BankExists(name) => ApiError::new(
            StatusCode::CONFLICT,
            format!("A bank named {name:?} exists."),
        ),
        StoreError::InvalidBankName(_)
        | StoreError::ThresholdTooHigh(_)
        | StoreError::BankTextTooLong { .. }
        | StoreError::BankTextControl { .. }
        | StoreError::EntryClassification { .. } => ApiError::bad_request(error.to_string()),
        other => ApiError::internal(other),
    }
}

/// Runs a bank change on the blocking pool.
async fn write<T: Send + 'static>(
    state: &AppState,
    change: impl FnOnce(&mut aranea_index::BankStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let banks = std::sync::Arc::clone(state.banks());
    tokio::task::spawn_blocking(move || banks.write(change))
        .await
        .map_err(ApiError::internal)?
        .map_err(bank_error)
}

fn bank_json(state: &AppState, name: &str) -> Result<Value, ApiError> {
    let generation = state.banks().live().load();
    let bank = generation
        .banks()
        .iter()
        .find(|b| b.spec.name == name)
        .ok_or_else(ApiError::not_found)?;
    serde_json::to_value(bank).map_err(ApiError::internal)
}

async fn list_banks(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    require(&caller, &[scope::READ, scope::BANKS])?;
    let generation = state.banks().live().load();
    let banks = serde_json::to_value(generation.banks()).map_err(ApiError::internal)?;
    Ok(Json(json!({ "banks": banks })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBank {
    name: String,
    #[serde(default = "default_source")]
    source: String,
    classification: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    kind: BankKind,
    #[serde(default, deserialize_with = "whole_number")]
    pdq_threshold: Option<u32>,
}

/// A `u32` written as any JSON number with no fraction: the OpenAPI document declares the
/// field `integer`, and JSON Schema counts `16.0` and `1.6e1` as integers (a Python `float` or
/// a generated client may send them), while serde's `u32` takes only `16`. `16.5` is refused.
fn whole_number<'de, D: serde::Deserializer<'de>>(input: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(input)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{number} is not a whole number from 0 to {}",
                u32::MAX
            ))
        })
}

fn default_source() -> String {
    "local".to_owned()
}

async fn create_bank(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_bank_writer(&caller)?;
    let body = body.map_err(|r| body_rejection(r, state.config().max_json_bytes))?;
    let request: CreateBank = json_body(&headers, &body)?;
    check_classification(&request.classification)?;
    let mut spec = BankSpec::new(&request.name, &request.source, &request.classification);
    spec.description = request.description;
    spec.kind = request.kind;
    if let Some(threshold) = request.pdq_threshold {
        spec.pdq_threshold = threshold;
    }
    let name = spec.name.clone();
    write(&state, move |store| store.create_bank(spec)).await?;
    Ok((StatusCode::CREATED, Json(bank_json(&state, &name)?)).into_response())
}

fn check_classification(classification: &str) -> Result<(), ApiError> {
    if classification.is_empty() || classification.len() > MAX_CLASSIFICATION_BYTES {
        return Err(ApiError::bad_request(format!(
            "classification: 1 to {MAX_CLASSIFICATION_BYTES} bytes."
        )));
    }
    Ok(())
}

/// The settings `PATCH /api/v1/banks/{name}` changes; an absent (or null) field stays as it
/// is. The name and the enabled flag have operations of their own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BankChange {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    classification: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    kind: Option<BankKind>,
    #[serde(default, deserialize_with = "whole_number")]
    pdq_threshold: Option<u32>,
}

impl BankChange {
    fn is_empty(&self) -> bool {
        self.source.is_none()
            && self.classification.is_none()
            && self.description.is_none()
            && self.kind.is_none()
            && self.pdq_threshold.is_none()
    }

    fn apply(self, spec: &mut BankSpec) {
        if let Some(source) = self.source {
            spec.source = source;
        }
        if let Some(classification) = self.classification {
            spec.classification = classification;
        }
        if let Some(description) = self.description {
            spec.description = description;
        }
        if let Some(kind) = self.kind {
            spec.kind = kind;
        }
        if let Some(threshold) = self.pdq_threshold {
            spec.pdq_threshold = threshold;
        }
    }
}

async fn change_bank(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    require_bank_writer(&caller)?;
    let name = path_text(path)?;
    let body = body.map_err(|r| body_rejection(r, state.config().max_json_bytes))?;
    // serde would also read the struct from a JSON array, field by field in order; the
    // document, and so a client, knows only an object.
    let fields: serde_json::Map<String, Value> = json_body(&headers, &body)?;
    let change: BankChange = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::bad_request(format!("JSON parse error - {e}")))?;
    if change.is_empty() {
        return Err(ApiError::bad_request(
            "Nothing to change: give at least one of source, classification, description, \
             kind, pdq_threshold.",
        ));
    }
    if let Some(classification) = &change.classification {
        check_classification(classification)?;
    }
    let target = name.clone();
    // The index checks the changed settings as a whole and records nothing if it refuses
    // any of them.
    write(&state, move |store| {
        store.update_bank(&target, |spec| change.apply(spec))
    })
    .await?;
    Ok(Json(bank_json(&state, &name)?))
}

async fn set_enabled(
    state: &AppState,
    name: String,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let target = name.clone();
    write(state, move |store| {
        store.update_bank(&target, |spec| spec.enabled = enabled)
    })
    .await?;
    Ok(Json(bank_json(state, &name)?))
}

async fn disable_bank(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    require_bank_writer(&caller)?;
    set_enabled(&state, path_text(path)?, false).await
}

async fn enable_bank(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    require_bank_writer(&caller)?;
    set_enabled(&state, path_text(path)?, true).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    format: String,
    signal_type: Option<String>,
}

async fn import_entries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ImportQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    require_bank_writer(&caller)?;
    let name = path_text(path)?;
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("Bad query: {}", e.body_text())))?;
    let format: ListFormat = query
        .format
        .parse()
        .map_err(|e: String| ApiError::bad_request(format!("format: {e}")))?;
    let signal_type = match query.signal_type.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<SignalType>()
                .map_err(|_| ApiError::bad_request(format!("signal_type {text:?} is unknown.")))?,
        ),
    };
    let body = body.map_err(|r| body_rejection(r, state.config().max_import_bytes))?;
    let mut options = ImportOptions::new(format);
    options.read.signal_type = signal_type;
    options.keep_problems = SHOWN_ERRORS;
    let provenance = Provenance {
        added_by: caller.name.to_string(),
        added_at: aranea_index::bank::unix_now(),
        origin: Origin::Import {
            file: "api".to_owned(),
        },
    };
    // The index's one import: every line checked first (a list with any bad line imports
    // nothing), then one transaction. Only a failure while writing is the writer's error
    // (the bank writer then reopens the store, which discards the open transaction); the
    // others wrote nothing.
    let imported = write(&state, move |store| {
        let bank = store.bank_id(&name)?;
        match store.import_list(
            ImportInto::Bank(bank),
            &mut || Ok(&body[..]),
            &options,
            provenance,
        ) {
            Err(ImportListError::Store(error)) => Err(error),
            imported => Ok(imported),
        }
    })
    .await?;
    match imported {
        Ok(summary) => Ok(Json(json!({
            "rows": summary.rows,
            "invalid": summary.invalid,
            "added": summary.added,
            "duplicates": summary.duplicates,
        }))),
        Err(ImportListError::Refused(summary)) => {
            let errors: Vec<String> = summary.errors.iter().map(ToString::to_string).collect();
            Err(ApiError::bad_request(format!(
                "{} invalid lines; nothing imported. {}",
                summary.invalid,
                errors.join("; ")
            )))
        }
        Err(ImportListError::Unreadable(error)) => Err(ApiError::bad_request(format!(
            "The list could not be read: {}.",
            with_causes(&error)
        ))),
        Err(ImportListError::Bank(error) | ImportListError::Store(error)) => Err(bank_error(error)),
        Err(error @ ImportListError::Classification(_)) => {
            Err(ApiError::bad_request(with_causes(&error)))
        }
    }
}
