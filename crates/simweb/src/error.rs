//! The one error type of the simulated internet.

/// What went wrong while building or starting a simulated world.
#[derive(Debug, thiserror::Error)]
pub enum SimWebError {
    #[error("invalid scenario: {0}")]
    Scenario(String),
    /// `source` is left out of the message: it is the error's source, which `{:#}` and
    /// other chain printers add.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the image corpus at {dir} has no images")]
    EmptyCorpus { dir: String },
    #[error("corpus image {file} could not be used: {reason}")]
    CorpusImage { file: String, reason: String },
    #[error("setting up TLS: {0}")]
    Tls(String),
    #[error("no free port shared by all {hosts} host addresses after {attempts} attempts")]
    NoSharedPort { hosts: usize, attempts: u32 },
}
