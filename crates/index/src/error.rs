//! What can go wrong when opening, changing or persisting banks.

use std::path::{Path, PathBuf};

use crate::bank::EntryId;
use crate::pdq_index::PdqIndexError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bank data is corrupt: {0}")]
    Corrupt(String),
    #[error("snapshot {path} is not usable: {reason}")]
    BadSnapshot { path: PathBuf, reason: String },
    #[error("no bank named {0:?}")]
    NoSuchBank(String),
    #[error("a bank named {0:?} already exists")]
    BankExists(String),
    #[error("invalid bank name {0:?}: use 1-64 letters, digits, '-', '_', '.', ':'")]
    InvalidBankName(String),
    #[error("PDQ threshold {0} is above the maximum of {max}", max = crate::bank::MAX_PDQ_THRESHOLD)]
    ThresholdTooHigh(u32),
    #[error("no entry {0}")]
    NoSuchEntry(EntryId),
    #[error("transaction misuse: {0}")]
    Transaction(String),
    #[error(transparent)]
    Index(#[from] PdqIndexError),
    /// The journal kept outside the bank directory (a database several machines share).
    #[error("the banks' shared journal: {0}")]
    SharedJournal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
