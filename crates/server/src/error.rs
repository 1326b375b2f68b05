//! Why the server could not start.

/// A failure while setting the server up (not a request error: see `problem`). A variant that
/// wraps another error hands it on as its source and leaves it out of its own message: the
/// binary prints the chain (`{:#}`), so naming it in both would print the cause twice.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("bank directory {dir}")]
    Banks {
        dir: std::path::PathBuf,
        source: aranea_index::StoreError,
    },
    #[error("database")]
    Store(#[from] aranea_store::StoreError),
    #[error("URL fetcher")]
    Fetcher(#[from] aranea_crawl::fetch::FetcherSetupError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("listening on {addr}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("no secure random numbers: {0}")]
    Random(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_error_is_printed_once_with_its_causes() {
        let error = ServerError::Listen {
            addr: "127.0.0.1:8080".to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "in use by the test"),
        };
        assert_eq!(
            crate::problem::with_causes(&error),
            "listening on 127.0.0.1:8080: in use by the test"
        );
    }
}
