//! Banks and their entries: the named hash lists an operator manages.
//!
//! Labels such as `csam` are data the operator defines; nothing here interprets them. Entries
//! are never deleted, only disabled, so every past match stays explainable.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::signal::Signal;

/// The default PDQ distance threshold (the published PDQ matching threshold).
pub const DEFAULT_PDQ_THRESHOLD: u32 = 31;
/// Largest threshold a bank may set: beyond this PDQ matches are noise.
pub const MAX_PDQ_THRESHOLD: u32 = 128;

/// Longest bank source accepted, in bytes: a one-line name, bounded as the store bounds a
/// reporter's or hotline's name.
pub const MAX_BANK_SOURCE_BYTES: usize = 500;
/// Longest classification label of a bank, in bytes.
pub const MAX_CLASSIFICATION_BYTES: usize = 100;
/// Longest bank description accepted, in bytes: free text, bounded as the store bounds a
/// report's notes.
pub const MAX_BANK_DESCRIPTION_BYTES: usize = 64 * 1024;

/// Bank name that means "every bank" in filters and on the command line, so no bank may take it.
pub const ALL_BANKS: &str = "all";

/// Dense bank number, stable for the life of the bank directory.
pub type BankId = u32;
/// Entry number: the journal sequence number of the record that added it (unique, increasing).
pub type EntryId = u64;

/// What a hit in the bank means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BankKind {
    /// Hits are reported.
    #[default]
    Ordinary,
    /// A hit suppresses the ordinary hits on the same query (known false positives, e.g.
    /// stock images that collide with a shared list).
    AllowList,
}

/// A bank's settings, as created or changed by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where the list comes from, e.g. `hotline:ca`, `ncmec`, `iwf`, `local`.
    pub source: String,
    /// Classification of entries that carry none of their own.
    pub classification: String,
    #[serde(default)]
    pub kind: BankKind,
    pub pdq_threshold: u32,
    pub enabled: bool,
}

impl BankSpec {
    /// A new enabled ordinary bank with the default threshold.
    pub fn new(name: &str, source: &str, classification: &str) -> Self {
        Self {
            name: name.to_string(),
            description: String::new(),
            source: source.to_string(),
            classification: classification.to_string(),
            kind: BankKind::Ordinary,
            pdq_threshold: DEFAULT_PDQ_THRESHOLD,
            enabled: true,
        }
    }
}

/// A bank as stored: its settings plus identity and creation time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bank {
    pub id: BankId,
    #[serde(flatten)]
    pub spec: BankSpec,
    /// Unix seconds.
    pub created_at: u64,
}

/// Who or what added an entry, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum Origin {
    /// A file import; the line is on the entry.
    Import { file: String },
    /// A review decision made the media known.
    Review { decision: String },
    /// Added by hand (CLI, API).
    Manual,
}

/// Provenance shared by every entry of one operation (one import, one decision).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Provenance {
    pub added_by: String,
    /// Unix seconds.
    pub added_at: u64,
    #[serde(flatten)]
    pub origin: Origin,
}

/// A bank entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub bank: BankId,
    pub signal: Signal,
    /// Overrides the bank's classification when set. Shared: a list holds few labels, and a
    /// pointer per entry costs less than a `String`.
    pub classification: Option<std::sync::Arc<str>>,
    /// Index into the store's provenance table.
    pub provenance: u32,
    /// Line of the import file (0 when not imported).
    pub line: u64,
    /// Extra columns of the import, as a JSON object text; kept for export.
    pub metadata: Option<Box<str>>,
    pub disabled: bool,
}

/// The current time in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks everything [`crate::BankStore::create_bank`] requires of a new bank's settings (its
/// name, threshold and texts) but that no other bank has its name: the one rule for banks made
/// by an operator and for banks read back from a snapshot file.
pub fn check_bank_spec(spec: &BankSpec) -> Result<(), StoreError> {
    if !valid_bank_name(&spec.name) || spec.name == ALL_BANKS {
        return Err(StoreError::InvalidBankName(spec.name.clone()));
    }
    check_threshold(spec.pdq_threshold)?;
    check_bank_texts(spec)
}

pub(crate) fn check_threshold(threshold: u32) -> Result<(), StoreError> {
    if threshold > MAX_PDQ_THRESHOLD {
        Err(StoreError::ThresholdTooHigh(threshold))
    } else {
        Ok(())
    }
}

/// The rule for a classification, a bank's or an entry's: one line of printable text.
const CLASSIFICATION_RULE: (&[char], &str) =
    (&[], "a classification is one line of printable text");

/// Checks a bank's source, classification and description, which `aranea bank` prints as
/// `key: value` lines and the UI and API show: bounded in length, the source and the
/// classification one line with no control character, the description free text whose only
/// control characters are line feeds and tabs (a NUL, a carriage return or an escape sequence
/// would break or rewrite a text display).
pub fn check_bank_texts(spec: &BankSpec) -> Result<(), StoreError> {
    let bank_error = |error: TextError| match error {
        TextError::TooLong { field, len, max } => StoreError::BankTextTooLong { field, len, max },
        TextError::Control { field, code, rule } => {
            StoreError::BankTextControl { field, code, rule }
        }
    };
    check_text(
        "classification",
        &spec.classification,
        MAX_CLASSIFICATION_BYTES,
        CLASSIFICATION_RULE,
    )
    .map_err(bank_error)?;
    check_text(
        "source",
        &spec.source,
        MAX_BANK_SOURCE_BYTES,
        (&[], "a source is one line of printable text"),
    )
    .map_err(bank_error)?;
    check_text(
        "description",
        &spec.description,
        MAX_BANK_DESCRIPTION_BYTES,
        (
            &['\n', '\t'],
            "a description may hold line feeds and tabs, no other control character",
        ),
    )
    .map_err(bank_error)
}

/// Checks an entry's own classification by the rule of a bank's (see [`check_bank_texts`]):
/// it is printed and shown wherever the entry matches, in place of the bank's.
pub fn check_entry_classification(label: &str) -> Result<(), TextError> {
    check_text(
        "classification",
        label,
        MAX_CLASSIFICATION_BYTES,
        CLASSIFICATION_RULE,
    )
}

/// Why a text was refused (see [`check_bank_texts`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} is {len} bytes long; at most {max} are accepted")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} holds the control character U+{code:04X}: {rule}")]
    Control {
        field: &'static str,
        code: u32,
        /// What the field may hold.
        rule: &'static str,
    },
}

fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    (allowed, rule): (&[char], &'static str),
) -> Result<(), TextError> {
    if text.len() > max {
        return Err(TextError::TooLong {
            field,
            len: text.len(),
            max,
        });
    }
    match text
        .chars()
        .find(|c| c.is_control() && !allowed.contains(c))
    {
        Some(control) => Err(TextError::Control {
            field,
            code: u32::from(control),
            rule,
        }),
        None => Ok(()),
    }
}

/// Checks an operator-chosen bank name: short, and safe to print and to use in a file name.
pub fn valid_bank_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}
