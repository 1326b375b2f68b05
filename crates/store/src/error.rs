//! What can go wrong in the store, in the caller's terms. sqlx's error type stays behind
//! [`DbError`] so callers never depend on the driver.

use std::fmt;

/// Everything the store's API can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no back-end the store speaks.
    #[error("unsupported database URL {url:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl { url: String },
    /// The SQLite file's directory could not be created. `source` is left out of the
    /// message: it is the error's source, which a chain printer (`{:#}`) adds.
    #[error("cannot create database directory {path}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Connecting to the database failed.
    #[error("cannot connect to the database: {0}")]
    Connect(DbError),
    /// An applied migration's SQL differs from the one this build carries: the database
    /// was migrated by another build, or a migration was edited after release.
    #[error("migration {version} was changed after it was applied to this database")]
    MigrationChanged { version: i64 },
    /// The database has migrations newer than this build knows: upgrade Aranea first.
    #[error("database schema version {version} is newer than this build of Aranea")]
    SchemaTooNew { version: i64 },
    /// A statement failed in the database (constraint, I/O, lost connection, …).
    #[error("database error: {0}")]
    Database(DbError),
    /// A text field exceeds what the store accepts.
    #[error("{field} is {len} bytes long, more than the {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A text field that must say something is empty.
    #[error("{field} is empty")]
    Empty { field: &'static str },
    /// A text field holds a NUL byte, which PostgreSQL cannot store in text.
    #[error("{field} contains a NUL byte")]
    NulInText { field: &'static str },
    /// A field printed as one line of text (a report's URL) holds a control character: a
    /// line break there would pass for another line of `aranea report show`.
    #[error(
        "{field} holds the control character U+{code:04X}; it must be one line of printable text"
    )]
    ControlInLine { field: &'static str, code: u32 },
    /// A number is outside the range the store accepts.
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    /// The lease expired or another worker has since claimed the host: the caller must stop
    /// working on it and drop what it has not recorded.
    #[error("lease on host {host_id} is no longer held by {owner} (expired or taken over)")]
    LeaseLost { host_id: i64, owner: String },
    /// The URL does not belong to the leased host.
    #[error("URL {url_id} does not belong to host {host_id}")]
    UrlNotInLease { url_id: i64, host_id: i64 },
    /// A referenced row does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A report names a hotline that is not registered (`aranea hotline add`) on a platform
    /// that has registered hotlines, or an API client is bound to one.
    #[error("hotline {code:?} is not registered")]
    UnknownHotline { code: String },
    /// The feature needs PostgreSQL (it exists for several machines sharing one database).
    #[error("{what} needs PostgreSQL; on SQLite it is kept in the data directory")]
    NeedsPostgres { what: &'static str },
    /// Another writer appended to the banks' journal at this sequence number first: the
    /// caller did not hold the banks' write lock, or lost its connection and with it the lock.
    #[error("bank journal record {seq} was appended by another writer")]
    JournalConflict { seq: i64 },
    /// A row holds a value the code does not know (a newer schema, or a hand edit).
    #[error("unexpected {what} in the database: {value:?}")]
    Corrupt { what: &'static str, value: String },
    /// The operating system gave no randomness (for a report's public reference).
    #[error("the system's random number generator is unavailable")]
    NoRandomness,
}

/// A database driver error, kept opaque so the driver is not part of the public API.
pub struct DbError(pub(crate) Box<dyn std::error::Error + Send + Sync + 'static>);

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Database(DbError(Box::new(error)))
    }
}

pub(crate) fn connect_error(error: sqlx::Error) -> StoreError {
    StoreError::Connect(DbError(Box::new(error)))
}

/// Limits on text the store accepts; checked before any SQL so both back-ends answer alike.
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    may_be_empty: bool,
) -> Result<(), StoreError> {
    if value.len() > max {
        return Err(StoreError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    if !may_be_empty && value.is_empty() {
        return Err(StoreError::Empty { field });
    }
    if value.as_bytes().contains(&0) {
        return Err(StoreError::NulInText { field });
    }
    Ok(())
}

/// [`check_text`] for a field that must be one line of printable text: no control character
/// (C0, DEL or C1) at all.
pub(crate) fn check_line(field: &'static str, value: &str, max: usize) -> Result<(), StoreError> {
    check_text(field, value, max, false)?;
    match value.chars().find(|c| c.is_control()) {
        Some(control) => Err(StoreError::ControlInLine {
            field,
            code: u32::from(control),
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_range(
    field: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<(), StoreError> {
    if value < min || value > max {
        return Err(StoreError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(())
}
