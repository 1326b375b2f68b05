//! The analyst and operator web UI (owned by the review room): server-rendered HTML,
//! plain forms, usable with a keyboard alone and without JavaScript. The one script, the
//! live exposure clock, is a same-origin file (the Content-Security-Policy forbids inline
//! and foreign scripts) that only counts on from figures the page already shows.
//!
//! Every page but the login form needs a session (cookie `aranea_session`, HttpOnly,
//! SameSite=Strict); every form carries the session's CSRF token and every POST is also
//! checked for a same-origin `Origin`/`Sec-Fetch-Site`. Access rules are the review
//! crate's: handlers pass the signed-in [`aranea_review::Actor`] and render what it
//! returns; a refusal is a 404/403, never another hotline's data.
//!
//! Media safety: media appear as server-blurred grayscale thumbnails (and CSS blur on top);
//! the original is served only after the analyst presses "Reveal" for that one media, and
//! each serving is audited. Videos play muted, never on their own, blurred and gray by CSS
//! until revealed, beside blurred thumbnails of the frames vPDQ samples.

mod account;
mod admin;
mod exposure;
mod html;
pub(crate) mod intake;
mod items;
pub mod report_form;
pub(crate) mod reports;
pub mod respond;
pub(crate) mod session;
mod video;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aranea_review::Review;
use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

/// Reveal grants: (user id, media SHA-256) → expiry (Unix ms).
type RevealGrants = Arc<Mutex<HashMap<(i64, [u8; 32]), i64>>>;

/// What the UI handlers share.
#[derive(Clone)]
pub struct UiState {
    review: Review,
    grants: RevealGrants,
    secure_cookies: bool,
}

static INSTALLED: OnceLock<(Review, bool)> = OnceLock::new();

/// Makes [`router`] serve the review UI with this service (called once at start-up by
/// `aranea serve`). `secure_cookies` should be true unless served over plain HTTP on loopback.
pub fn install_review(review: Review, secure_cookies: bool) {
    let _ = INSTALLED.set((review, secure_cookies));
}

/// How often [`review_upkeep`] runs.
pub const REVIEW_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What the review service must do even when no one acts, at start-up and then every
/// [`REVIEW_UPKEEP_EVERY`], for every process sharing the database; runs until the process
/// ends:
/// - turns media the crawlers queued into review items ([`Review::intake`], which an analyst
///   asking for the next item also runs), so items and their blurred thumbnails are ready
///   before anyone opens the queue;
/// - finishes the consequences (bank entries, matches, the vault's bytes purged) of decisions
///   that a crash or a failed bank write left unapplied ([`Review::apply_pending`]): without
///   it such a decision's media would never become known and its bytes would stay;
/// - purges the vault's bytes whose retention ended without a decision
///   ([`aranea_review::vault::purge_expired`], what `aranea vault purge` does), so that
///   promise does not depend on an operator's cron job.
pub async fn review_upkeep(review: Review) {
    let mut ticks = tokio::time::interval(REVIEW_UPKEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = crate::api::now_ms();
        match review.intake(now).await {
            Ok(report) if report.opened + report.grouped + report.known_negative > 0 => {
                tracing::info!(
                    opened = report.opened,
                    grouped = report.grouped,
                    known_negative = report.known_negative,
                    "queued media taken into review"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(
                error = %crate::problem::with_causes(&error),
                "cannot take queued media into review; retrying later"
            ),
        }
        match review.apply_pending(now).await {
            Ok(outcome) => {
                if !outcome.applied.is_empty() {
                    tracing::info!(
                        decisions = ?outcome.applied,
                        "finished the consequences of decisions left unapplied"
                    );
                }
                for (decision, error) in &outcome.failed {
                    tracing::warn!(
                        decision = decision.0,
                        error = %crate::problem::with_causes(error),
                        held = outcome.held.len(),
                        "a decision's consequences still cannot be applied; retrying later"
                    );
                }
            }
            Err(error) => tracing::warn!(
                error = %crate::problem::with_causes(&error),
                "cannot look for decisions left unapplied"
            ),
        }
        match aranea_review::vault::purge_expired(review.store(), now).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged media whose retention ended"),
            Err(error) => tracing::warn!(
                error = %crate::problem::with_causes(&error),
                "cannot purge media whose retention ended; retrying later"
            ),
        }
    }
}

/// Review decisions write through the server's live banks, which catch up with other
/// processes before each change.
impl aranea_review::BankWriter for crate::LiveBanks {
    fn write_banks(
        &self,
        change: &mut dyn FnMut(
            &mut aranea_index::BankStore,
        ) -> Result<(), aranea_index::StoreError>,
    ) -> Result<(), aranea_index::StoreError> {
        self.write(|store| change(store))
    }
}

/// The web UI's routes, merged into the server's router: the review UI once a review service
/// is installed, the public report form once enabled, the notices' respond page once their
/// link key is.
pub fn router(state: AppState) -> Router {
    let ui = match INSTALLED.get() {
        Some((review, secure)) => review_router(review.clone(), *secure)
            .merge(crate::stats::router(state.clone(), review.clone())),
        None => Router::new(),
    };
    let ui = match REPORT_FORM.get() {
        Some(config) => ui.merge(report_form::router(state.store().clone(), config.clone())),
        None => ui,
    };
    match NOTICE_LINK_KEYS.get() {
        Some(keys) => ui.merge(respond::router(state.store().clone(), keys.clone())),
        None => ui,
    }
}

static REPORT_FORM: OnceLock<report_form::ReportFormConfig> = OnceLock::new();

/// Makes [`router`] serve the public report form ([`report_form::REPORT_PATH`]) as
/// `config` says (nothing when it is not enabled); called once at start-up by `aranea
/// serve` and `aranea demo`, after [`report_form::ReportFormConfig::check`].
pub fn install_report_form(config: report_form::ReportFormConfig) {
    let _ = REPORT_FORM.set(config);
}

static NOTICE_LINK_KEYS: OnceLock<Arc<aranea_notice::LinkKeys>> = OnceLock::new();

/// Makes [`router`] serve the page hosting providers reach from a notice's signed link
/// ([`respond::RESPOND_PATH`]), verifying links with `keys` (of the `[notice]`
/// configuration the notices are sent with: its `link_secret`, or the database's current
/// key and those rotated out lately, read again as [`aranea_notice::link_keys`] says);
/// called once at start-up by `aranea serve` and `aranea demo`.
pub fn install_notice_links(keys: aranea_notice::LinkKeys) {
    let _ = NOTICE_LINK_KEYS.set(Arc::new(keys));
}

/// The review UI under `/ui/`.
pub fn review_router(review: Review, secure_cookies: bool) -> Router {
    let state = UiState {
        review,
        grants: Arc::new(Mutex::new(HashMap::new())),
        secure_cookies,
    };
    Router::new()
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/", get(items::queue))
        .route("/ui/next", post(items::next))
        .route("/ui/items/{id}", get(items::item))
        .route("/ui/items/{id}/vote", post(items::vote))
        .route("/ui/items/{id}/settle", post(items::settle))
        .route("/ui/items/{id}/reopen", post(items::reopen))
        .route("/ui/items/{id}/media/{sha}/thumb", get(items::thumb))
        .route("/ui/items/{id}/media/{sha}/reveal", post(items::reveal))
        .route("/ui/items/{id}/media/{sha}/original", get(items::original))
        .route("/ui/items/{id}/media/{sha}/video", get(video::playback))
        .route("/ui/items/{id}/media/{sha}/frames/{n}", get(video::frame))
        .route("/ui/history", get(items::history))
        .route("/ui/disputes", get(items::disputes))
        .route("/ui/admin", get(admin::admin))
        .route("/ui/admin/hotlines/{id}", post(admin::hotline_settings))
        .route("/ui/admin/users", post(admin::add_user))
        .route("/ui/admin/users/{id}/disabled", post(admin::user_disabled))
        .route("/ui/admin/users/{id}/totp-reset", post(admin::totp_reset))
        .route("/ui/audit", get(admin::audit))
        .route("/ui/reports", get(reports::list).post(reports::submit))
        .route("/ui/reports/new", get(reports::new_form))
        .route("/ui/reports/find", get(reports::find))
        .route("/ui/reports/{id}", get(reports::detail))
        .route("/ui/reports/{id}/status", post(reports::correct_status))
        .route("/ui/account", get(account::account))
        .route("/ui/account/totp/begin", post(account::begin))
        .route("/ui/account/totp/confirm", post(account::confirm))
        .route("/ui/account/totp/disable", post(account::disable))
        .route(exposure::SCRIPT_PATH, get(exposure::script))
        .layer(axum::middleware::from_fn(html::security_headers))
        .with_state(state)
}
