//! Request errors, answered as the Shield API does: a status code and `{"detail": "..."}`.
//!
//! The native API uses the same shape, so one client-side error path serves both.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answer to one request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    retry_after_secs: Option<u64>,
    challenge: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            retry_after_secs: None,
            challenge: false,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401 with a `WWW-Authenticate: Basic` challenge.
    pub fn unauthorized(detail: &str) -> ApiError {
        ApiError {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn not_found() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "Not found.")
    }

    pub fn too_large(limit: usize) -> ApiError {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than the limit of {limit} bytes."),
        )
    }

    pub fn unsupported_type(content_type: &str) -> ApiError {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported media type \"{content_type}\" in request."),
        )
    }

    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited(wait: std::time::Duration) -> ApiError {
        let secs = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        ApiError {
            retry_after_secs: Some(secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Request was throttled. Expected available in {} seconds.",
                    secs.max(1)
                ),
            )
        }
    }

    /// A 500; `what` is logged with its causes (the answer names none).
    pub fn internal(what: impl std::error::Error) -> ApiError {
        tracing::error!(error = %with_causes(&what), "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
    }

    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "detail": self.detail });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"api\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `error`'s message followed by each of its causes' (`message: cause: cause ...`): the
/// errors wrapped by others leave their cause out of their own message, so a text that is not
/// printed as a chain (an answer, a log field) adds it here.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

/// Turns an axum body rejection into our error shape (413 for the size limit, 408 for the body
/// deadline).
pub fn body_rejection(
    rejection: axum::extract::rejection::BytesRejection,
    limit: usize,
) -> ApiError {
    if let Some(expired) = crate::body_deadline::deadline_expired(&rejection) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "The request body did not arrive within {} s.",
                expired.limit().as_secs()
            ),
        )
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else {
        ApiError::bad_request(format!(
            "Could not read the request body: {}",
            rejection.body_text()
        ))
    }
}

/// Parses a JSON body after checking its content type, with Shield-style errors.
pub fn json_body<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::unsupported_type(content_type));
    }
    // Every request body of the APIs is a JSON object, but serde also fills a struct from an
    // array of its fields in order: `["name", "csam"]` would create a bank. Refused in the
    // words Shield (Django REST framework) uses.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{')
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
    {
        return Err(ApiError::bad_request(format!(
            "Invalid data. Expected a dictionary, but got {}.",
            python_type_name(&value)
        )));
    }
    // JSON text is UTF-8 (RFC 8259), but serde skips the strings of fields a request type
    // ignores (Shield's bodies allow unknown fields) without checking them: checked whole here.
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!("JSON parse error - the body is not UTF-8: {e}"))
    })?;
    serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("JSON parse error - {e}")))
}

/// The name Python gives the type a JSON value decodes to, as Django REST framework's
/// messages name it.
fn python_type_name(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}
