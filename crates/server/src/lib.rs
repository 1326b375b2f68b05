//! Aranea's HTTP server: the Shield-compatible matching API (`/v1/...`, [`shield`]), the
//! native JSON API (`/api/v1/...`), operations endpoints ([`ops`]: metrics, health) and the
//! web UI ([`ui`]) with the operators' statistics pages ([`stats`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use aranea_server::{AppState, ServerConfig};
//! let store = aranea_store::Store::open("sqlite://./aranea-data/aranea.db").await?;
//! let config = ServerConfig::default();
//! let state = AppState::open(config, std::path::Path::new("./aranea-data/banks"), store).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! aranea_server::serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! The server only translates HTTP to calls on the other rooms (`index`, `store`, `crawl`,
//! `review`, `notice`); it must not bypass their rules, and never stores or returns media.

pub mod api;
pub mod banks;
pub mod body_deadline;
pub mod clients;
mod config;
mod error;
mod limits;
mod logging;
pub mod metrics;
pub mod ops;
pub mod problem;
pub mod shared_journal;
pub mod shield;
pub mod stats;
pub mod ui;
pub mod video;

/// Readers of outside input that are private to the server, for the fuzz targets in `fuzz/`
/// only: not API (hidden from the docs, no stability promise). Each reads bodies from any
/// client but is reached only through HTTP (with a session and a CSRF token for the UI's
/// forms), too slow and too narrow a way in for a fuzzer.
#[doc(hidden)]
pub mod fuzzing {
    use aranea_index::Signal;

    use crate::problem::ApiError;

    /// The UI's form reader (`ui_form`); the public report form reads with its own limit.
    pub use crate::ui::session::{Fields, Refusal, parse_form, parse_form_within};

    /// The intake's URL rules (`report_urls`): the native API's and the report forms'.
    pub use crate::ui::intake::{UrlRefusal, form_url, reported_url};

    /// The report forms' URL list check (`report_urls`).
    pub fn lines_to_urls(
        text: &str,
        max_urls: usize,
        max_url_bytes: usize,
    ) -> Result<Vec<String>, Vec<String>> {
        crate::ui::reports::lines_to_urls(text, max_urls, max_url_bytes)
    }

    /// A `POST /v1/pdq/` body sent as `application/json` (`shield_pdq`): the hashes as sent
    /// and their values, or the error answered.
    pub fn pdq_request(body: &[u8], limit: usize) -> Result<(Vec<String>, Vec<Signal>), ApiError> {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        crate::shield::pdq_request(&headers, body, limit)
            .map(|(request, signals)| (request.hashes, signals))
    }
}

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;

use aranea_crawl::fetch::{FetchConfig, Fetcher};
use aranea_hash::{Limits, MediaHashes};
use aranea_store::Store;

pub use banks::{BankHome, BankWriteLock, LiveBanks};
pub use clients::{ClientRegistry, IssueError, IssuedClient, issue_client, issue_hotline_client};
pub use config::ServerConfig;
pub use error::ServerError;
pub use logging::{init_logging, shutdown_signal};

use crate::metrics::Metrics;
use crate::problem::ApiError;

/// Everything a request handler needs, cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: ServerConfig,
    banks: Arc<LiveBanks>,
    clients: Arc<ClientRegistry>,
    store: Store,
    fetcher: Fetcher,
    hash_workers: aranea_crawl::pipeline::CpuPool,
    metrics: Metrics,
}

impl AppState {
    /// Opens the banks in `bank_dir` (blocking work on the blocking pool), reads the API
    /// clients and builds the URL fetcher.
    pub async fn open(
        config: ServerConfig,
        bank_dir: &Path,
        store: Store,
    ) -> Result<AppState, ServerError> {
        Self::open_home(config, BankHome::Dir(bank_dir.to_path_buf()), store).await
    }

    /// As [`AppState::open`], with the banks wherever they are kept (a directory, or the
    /// journal in the shared PostgreSQL database).
    pub async fn open_home(
        config: ServerConfig,
        home: BankHome,
        store: Store,
    ) -> Result<AppState, ServerError> {
        let dir = home.path().to_path_buf();
        let video = video::index_params(&config);
        let banks = tokio::task::spawn_blocking(move || LiveBanks::open_home(home, video))
            .await
            .map_err(|e| ServerError::Config(format!("bank loader: {e}")))?
            .map_err(|source| ServerError::Banks { dir, source })?;
        let clients = ClientRegistry::load(store.clone()).await?;
        let fetcher = Fetcher::new(fetch_config(&config)?)?;
        let hash_workers = aranea_crawl::pipeline::CpuPool::start(config.hash_workers)
            .map_err(|e| ServerError::Config(format!("hashing threads: {e}")))?;
        Ok(AppState {
            inner: Arc::new(Shared {
                hash_workers,
                config,
                banks: Arc::new(banks),
                clients: Arc::new(clients),
                store,
                fetcher,
                metrics: Metrics::default(),
            }),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The live banks (searching them never blocks).
    pub fn banks(&self) -> &Arc<LiveBanks> {
        &self.inner.banks
    }

    pub fn clients(&self) -> &Arc<ClientRegistry> {
        &self.inner.clients
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The SSRF-guarded fetcher for URLs callers name.
    pub fn fetcher(&self) -> &Fetcher {
        &self.inner.fetcher
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Hashes media on one of the `hash_workers` hashing threads.
    pub async fn hash(&self, bytes: Bytes) -> Result<MediaHashes, ApiError> {
        let limits = Limits {
            max_bytes: self.config().max_media_bytes as u64,
            max_pixels: self.config().max_pixels,
        };
        let hashed = self
            .inner
            .hash_workers
            .run(move || aranea_hash::hash_media(&bytes, &limits))
            .await
            .map_err(ApiError::internal)?;
        hashed.map_err(hash_refusal)
    }

    /// The vPDQ frames of a video or animation (`None` for a still image), decoded by the
    /// sandboxed FFmpeg child within the configured limits, on one of the `hash_workers`
    /// hashing threads.
    pub async fn hash_video(
        &self,
        bytes: Bytes,
        kind: aranea_hash::MediaKind,
    ) -> Result<Option<Vec<aranea_hash::VpdqFeature>>, ApiError> {
        if !kind.is_video()
            && !matches!(
                kind,
                aranea_hash::MediaKind::Gif | aranea_hash::MediaKind::Webp
            )
        {
            return Ok(None);
        }
        let options = video::video_options(self.config());
        let hashed = self
            .inner
            .hash_workers
            .run(move || {
                if !aranea_hash::is_moving_picture(&bytes) {
                    return Ok(None);
                }
                aranea_hash::vpdq_hash(&bytes, &options).map(|v| Some(v.features))
            })
            .await
            .map_err(ApiError::internal)?;
        hashed.map_err(hash_refusal)
    }

    /// Starts the background tasks (bank and client refresh, rate sharing); they end with the
    /// runtime.
    pub fn spawn_background(&self) {
        let banks = Arc::clone(self.banks());
        tokio::spawn(banks.follow(Duration::from_millis(self.config().bank_poll_ms.max(50))));
        let clients = Arc::clone(self.clients());
        tokio::spawn(clients.follow(Duration::from_millis(
            self.config().client_refresh_ms.max(50),
        )));
        let clients = Arc::clone(self.clients());
        tokio::spawn(
            clients.follow_rates(Duration::from_millis(self.config().rate_share_ms.max(100))),
        );
    }
}

fn hash_refusal(error: aranea_hash::HashError) -> ApiError {
    use aranea_hash::HashError as E;
    match error {
        E::TooLarge { limit, .. } => ApiError::too_large(usize::try_from(limit).unwrap_or(0)),
        E::UnknownFormat => ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The submitted data is not an image or video format we support.",
        ),
        decoder @ (E::DecoderUnavailable { .. } | E::DecoderIo { .. }) => {
            tracing::error!(error = %decoder, "video decoder failed");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Video decoding is unavailable on this server.",
            )
        }
        other => {
            ApiError::bad_request(format!("The submitted media could not be hashed: {other}."))
        }
    }
}

fn fetch_config(config: &ServerConfig) -> Result<FetchConfig, ServerError> {
    let mut fetch = FetchConfig::default();
    for cidr in &config.url_allow_cidrs {
        let net = cidr
            .parse()
            .map_err(|e| ServerError::Config(format!("url_allow_cidrs {cidr:?}: {e}")))?;
        fetch.guard.allow_cidrs.push(net);
    }
    for path in &config.url_extra_roots {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("url_extra_roots {}: {e}", path.display())))?;
        fetch.tls.extra_roots_pem.push(pem);
    }
    fetch.max_body_bytes = config.max_media_bytes as u64;
    fetch.total_timeout = Duration::from_secs(config.url_timeout_secs.max(1));
    Ok(fetch)
}

/// The whole server: API routers, operations endpoints and the web UI.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(shield::router(state.clone()))
        .merge(api::router(state.clone()))
        .merge(ops::router(state.clone()))
        .merge(ui::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state, ops::observe))
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then finishes the
/// requests in flight. Starts the background tasks. Each request carries its peer address
/// (`ConnectInfo<SocketAddr>`) so the audit trail records where a login or view came from.
/// A client that takes longer than `header_read_timeout_secs` to send a request's headers is
/// disconnected; one that takes longer than `body_read_timeout_secs` to send its body is
/// answered 408 ([`body_deadline`]) and disconnected (every 408 closes the connection).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.spawn_background();
    let header_deadline = Duration::from_secs(state.config().header_read_timeout_secs.max(1));
    let body_deadline = Duration::from_secs(state.config().body_read_timeout_secs.max(1));
    let app = router(state);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of descriptors or memory: wait rather than spin (as axum::serve does);
                // a connection reset before it was accepted is nothing to wait for.
                if !matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |request: axum::extract::Request<hyper::body::Incoming>| {
                let mut request =
                    request.map(|body| body_deadline::DeadlineBody::new(body, body_deadline));
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let answer = tower_service::Service::call(&mut app.clone(), request);
                async move {
                    let mut response = answer.await?;
                    // A client too slow with its body (or told so by a handler) is not kept:
                    // its connection may still be mid-body (RFC 9110, 15.5.9).
                    if response.status() == axum::http::StatusCode::REQUEST_TIMEOUT {
                        response.headers_mut().insert(
                            axum::http::header::CONNECTION,
                            axum::http::HeaderValue::from_static("close"),
                        );
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            },
        );
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_deadline)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}
