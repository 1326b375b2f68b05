//! The notice crate's errors, named in the caller's terms.

use std::path::PathBuf;

/// What went wrong in the notice worker.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Store(#[from] aranea_store::StoreError),
    #[error("cannot read the IP-to-ASN table {path}: {message}")]
    AsnTable { path: PathBuf, message: String },
    #[error("notice template {name}: {message}")]
    Template { name: String, message: String },
    #[error("no contact to send a notice to {provider}")]
    NoContact { provider: String },
    #[error("setting up the notice worker: {message}")]
    Setup { message: String },
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),
    #[error("no notice with reference {reference}")]
    UnknownNotice { reference: String },
}
