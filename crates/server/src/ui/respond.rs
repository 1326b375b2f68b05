//! The page a hosting provider reaches from a notice's signed link
//! (`respond_base_url?t=TOKEN`): it acknowledges or disputes the notice without an account.
//! The token is the capability (HMAC-signed notice reference with an expiry, see
//! [`aranea_notice::link`]); the answer goes through [`aranea_notice::respond`], which records
//! the first answer and restarts the items' unanswered count that escalation reads.

use std::sync::Arc;

use aranea_notice::link::LinkError;
use aranea_notice::{LinkKeys, NoticeError};
use aranea_store::{ProviderResponse, Store, StoreError};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::html::{esc, page};
use super::session::{FormBody, parse_form};

/// Where notices link to (the default `respond_base_url`'s path).
pub const RESPOND_PATH: &str = "/notice/respond";
/// Longest note a provider may leave (characters, as `aranea_notice::respond` keeps).
const MAX_NOTE_CHARS: usize = 1000;

#[derive(Clone)]
struct Links {
    store: Store,
    keys: Arc<LinkKeys>,
}

/// The respond page and its form, answering links signed with one of `keys`.
pub fn router(store: Store, keys: Arc<LinkKeys>) -> Router {
    Router::new()
        .route(RESPOND_PATH, get(respond_form).post(record_answer))
        .layer(axum::middleware::from_fn(super::html::security_headers))
        .with_state(Links { store, keys })
}

#[derive(serde::Deserialize)]
struct Token {
    #[serde(default)]
    t: String,
}

async fn respond_form(State(links): State<Links>, Query(token): Query<Token>) -> Response {
    let reference = match links.keys.verify(&token.t, now()).await {
        Ok(reference) => reference,
        Err(error) => return refusal(&error),
    };
    let notice = match links.store.notices().notice_by_report(&reference).await {
        Ok(Some(notice)) => notice,
        Ok(None) => return refusal(&NoticeError::UnknownNotice { reference }),
        Err(error) => return refusal(&NoticeError::Store(error)),
    };
    let answered = match &notice.response {
        Some(response) => format!(
            "<p>This notice was already answered: <strong>{}</strong>. Only the first answer \
             is recorded.</p>",
            esc(response)
        ),
        None => String::new(),
    };
    let body = format!(
        "<p>Notice <code>{}</code> to {} ({}): {}</p>{answered}\
         <form method=\"post\" action=\"{RESPOND_PATH}\">\
         <input type=\"hidden\" name=\"t\" value=\"{}\">\
         <p><label for=\"note\">Note (optional, at most {MAX_NOTE_CHARS} characters)</label><br>\
         <textarea id=\"note\" name=\"note\" maxlength=\"{MAX_NOTE_CHARS}\" rows=\"4\" cols=\"60\"></textarea></p>\
         <p><button type=\"submit\" name=\"answer\" value=\"acknowledged\">Acknowledge: we are removing it</button> \
         <button type=\"submit\" name=\"answer\" value=\"disputed\">Dispute this notice</button></p></form>",
        esc(&notice.report_id),
        esc(&notice.provider_name),
        esc(&notice.recipient),
        esc(&notice.subject),
        esc(&token.t),
    );
    page("Answer a removal notice", None, &body)
}

async fn record_answer(State(links): State<Links>, FormBody(body): FormBody) -> Response {
    let fields = match parse_form(&body) {
        Ok(fields) => fields,
        Err(refusal) => return refusal.into_response(),
    };
    let response = match fields.get("answer").map(String::as_str) {
        Some("acknowledged") => ProviderResponse::Acknowledged,
        Some("disputed") => ProviderResponse::Disputed,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "answer must be acknowledged or disputed",
            )
                .into_response();
        }
    };
    let note = fields.get("note").map_or("", String::as_str);
    if note.chars().count() > MAX_NOTE_CHARS {
        return (
            StatusCode::BAD_REQUEST,
            format!("the note is longer than {MAX_NOTE_CHARS} characters"),
        )
            .into_response();
    }
    let token = fields.get("t").map_or("", String::as_str);
    let answer =
        match aranea_notice::respond(&links.store, &links.keys, token, response, note, now()).await
        {
            Ok(answer) => answer,
            Err(error) => return refusal(&error),
        };
    let (notice, recorded) = (answer.notice, answer.recorded);
    let body = match (recorded, notice.response) {
        (true, _) => format!(
            "<p>Thank you. Your answer to notice <code>{}</code> was recorded: {}.</p>",
            esc(&notice.report_id),
            response.as_str()
        ),
        (false, Some(earlier)) => format!(
            "<p>Notice <code>{}</code> was already answered ({}); only the first answer is \
             recorded.</p>",
            esc(&notice.report_id),
            esc(&earlier)
        ),
        (false, None) => format!(
            "<p>Notice <code>{}</code> does not take answers (it was not sent, or was \
             withdrawn); nothing was recorded.</p>",
            esc(&notice.report_id)
        ),
    };
    let status = if recorded {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    (status, page("Your answer", None, &body)).into_response()
}

/// A refused link or answer: 400 for a malformed or forged token or a refused note, 410 for
/// an expired one, 404 for a notice that does not exist; the reason in plain words.
fn refusal(error: &NoticeError) -> Response {
    let status = match error {
        NoticeError::Link(LinkError::Expired { .. }) => StatusCode::GONE,
        NoticeError::Link(_) => StatusCode::BAD_REQUEST,
        NoticeError::UnknownNotice { .. } => StatusCode::NOT_FOUND,
        NoticeError::Store(
            StoreError::TooLong { .. } | StoreError::NulInText { .. } | StoreError::Empty { .. },
        ) => StatusCode::BAD_REQUEST,
        _ => {
            tracing::warn!(error = %crate::problem::with_causes(error), "recording a provider's answer failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the answer could not be recorded; please try again later",
            )
                .into_response();
        }
    };
    (status, crate::problem::with_causes(error)).into_response()
}

fn now() -> i64 {
    crate::api::now_ms()
}
