//! The analyst and operator web UI (owned by the review room).
//!
//! Empty for now: the review crate's pages are mounted here.

use axum::Router;

use crate::AppState;

/// The web UI's routes, merged into the server's router.
pub fn router(_state: AppState) -> Router {
    Router::new()
}
