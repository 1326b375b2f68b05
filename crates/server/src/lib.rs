//! Aranea's HTTP server: the Shield-compatible matching API (`/v1/...`), the native JSON API
//! (`/api/v1/...`), operations endpoints and the web UI (`ui`).
//!
//! The server only translates HTTP to calls on the other rooms (`index`, `store`, `crawl`,
//! `review`, `notice`); it must not bypass their rules.

pub mod ui;

use std::sync::Arc;

use axum::Router;

/// Everything a request handler needs, cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    live: Arc<aranea_index::LiveIndex>,
}

impl AppState {
    /// State over a live bank index.
    pub fn new(live: Arc<aranea_index::LiveIndex>) -> Self {
        AppState {
            inner: Arc::new(Shared { live }),
        }
    }

    /// The live bank index (a generation is loaded per request; readers never block).
    pub fn live(&self) -> &Arc<aranea_index::LiveIndex> {
        &self.inner.live
    }
}

/// The whole server: API routers plus the web UI.
pub fn router(state: AppState) -> Router {
    Router::new().merge(ui::router(state))
}
