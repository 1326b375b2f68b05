//! What can go wrong when opening, changing or persisting banks.

use std::path::{Path, PathBuf};

use crate::bank::{EntryId, TextError};
use crate::pdq_index::PdqIndexError;

/// A variant that wraps another error hands it on as its source and leaves it out of its own
/// message (chain printers such as `{:#}` add it), so the cause is printed once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}")]
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
    #[error(
        "invalid bank name {0:?}: use 1-64 letters, digits, '-', '_', '.', ':' (not \"all\", which means every bank)"
    )]
    InvalidBankName(String),
    #[error("bank {field} is {len} bytes long; at most {max} are accepted")]
    BankTextTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A control character where it would break a text display
    /// ([`crate::bank::check_bank_texts`]).
    #[error("bank {field} holds the control character U+{code:04X}: {rule}")]
    BankTextControl {
        field: &'static str,
        code: u32,
        /// What the field may hold.
        rule: &'static str,
    },
    /// An entry to add whose own classification breaks the rule of a bank's
    /// ([`crate::bank::check_entry_classification`]); nothing of its batch was added.
    #[error("entry {position} of the batch")]
    EntryClassification {
        /// Position in the batch given to [`crate::BankStore::append_entries`].
        position: usize,
        #[source]
        source: TextError,
    },
    #[error("PDQ threshold {0} is above the maximum of {max}", max = crate::bank::MAX_PDQ_THRESHOLD)]
    ThresholdTooHigh(u32),
    #[error("no entry {0}")]
    NoSuchEntry(EntryId),
    /// A list imported by [`crate::BankStore::import_list`] read differently the second time
    /// (rewritten meanwhile, or unreadable): nothing of it counts once the store is dropped.
    #[error("the list changed while it was imported: {0}")]
    ListChanged(String),
    #[error("transaction misuse: {0}")]
    Transaction(String),
    #[error(transparent)]
    Index(#[from] PdqIndexError),
    /// The journal kept outside the bank directory (a database several machines share).
    #[error("the banks' shared journal")]
    SharedJournal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// The message followed by each cause's (`message: cause: cause ...`), for a one-line
    /// text that is not printed as a chain (a warning, a log field).
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        text
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary prints an error with its chain of sources (`{:#}`), as `with_causes` does:
    /// the I/O error must appear once.
    #[test]
    fn an_io_error_is_printed_once_with_its_causes() {
        let denied =
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied by the test");
        let error = StoreError::io(Path::new("/banks/journal"), denied);
        assert_eq!(error.with_causes(), "/banks/journal: denied by the test");
    }
}
