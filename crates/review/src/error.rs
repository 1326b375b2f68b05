//! What can go wrong in review, in the caller's terms.

use aranea_store::StoreError;

/// Everything the review crate's API can fail with. A variant that wraps another error hands it
/// on as its source and leaves it out of its own message (chain printers such as `{:#}` add
/// it), so the cause is printed once.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bank store refused a change.
    #[error("hash bank")]
    Bank(#[from] aranea_index::StoreError),
    /// Username, password or second factor wrong, or the account disabled: one error for
    /// all, so a caller cannot tell which.
    #[error("login failed")]
    LoginFailed,
    /// Too many failed logins: try again after this time (Unix ms).
    #[error("account locked after repeated failed logins until {until}")]
    LockedOut { until: i64 },
    /// The session is unknown, expired, or its user disabled.
    #[error("no valid session")]
    NoSession,
    /// The user's role or hotline does not allow this.
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    /// The thing does not exist, or the user may not know that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Input the caller must correct.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The item changed state meanwhile (e.g. decided while the form was open).
    #[error("review item {0} is no longer open for this action")]
    NotOpen(i64),
    /// A verdict scheme file is malformed.
    #[error("verdict schemes: {0}")]
    Schemes(String),
    /// The vault could not seal or open media.
    #[error("vault: {0}")]
    Vault(&'static str),
    /// No vault key for this operation is configured.
    #[error("vault {0} key is not configured")]
    NoVaultKey(&'static str),
    /// A blocking task (password hashing, bank writes) died.
    #[error("background task failed: {0}")]
    Task(String),
    /// The near-duplicate index could not be built.
    #[error("near-duplicate index")]
    NearDuplicateIndex(#[from] aranea_index::pdq_index::PdqIndexError),
    /// Media could not be turned into a thumbnail.
    #[error("thumbnail: {0}")]
    Thumbnail(String),
}

impl ReviewError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ReviewError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message and its chain of sources, as the binary prints an error (`{:#}`).
    fn with_causes(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut cause = error.source();
        while let Some(error) = cause {
            text.push_str(&format!(": {error}"));
            cause = error.source();
        }
        text
    }

    #[test]
    fn a_bank_error_is_printed_once_with_its_causes() {
        let error = ReviewError::from(aranea_index::StoreError::NoSuchBank("private".into()));
        assert_eq!(with_causes(&error), "hash bank: no bank named \"private\"");
    }
}
