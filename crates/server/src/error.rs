//! Why the server could not start.

/// A failure while setting the server up (not a request error: see `problem`).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("bank directory {dir}: {source}")]
    Banks {
        dir: std::path::PathBuf,
        source: aranea_index::StoreError,
    },
    #[error("database: {0}")]
    Store(#[from] aranea_store::StoreError),
    #[error("URL fetcher: {0}")]
    Fetcher(#[from] aranea_crawl::fetch::FetcherSetupError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("no secure random numbers: {0}")]
    Random(String),
}
