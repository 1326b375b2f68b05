//! Reading hash lists: HMA/ThreatExchange CSV, plain hex lists and JSON Lines.
//!
//! Readers stream: one row at a time is handed to a callback, so memory stays bounded however
//! long the file (lines are capped at [`MAX_LINE`] bytes). Every problem is reported with its
//! line number and the reader carries on, so a caller can list all errors of a file before
//! deciding to import nothing. A UTF-8 BOM, CRLF line ends, blank lines and `#` comment lines
//! are accepted everywhere. A classification follows the rule of a bank's (one line of
//! printable text, see [`crate::bank::check_entry_classification`]) in every format. Reading
//! does not touch the store; [`crate::BankStore::import_list`] is the one way a list becomes
//! entries (checked whole first, then added in one transaction), and these are its options
//! and its answer.

use std::io::{BufRead, Read};

use serde_json::{Map, Value};

use crate::bank::{BankId, BankSpec, EntryId, TextError, check_entry_classification};
use crate::error::StoreError;
use crate::signal::{Signal, SignalType};

/// Longest line accepted; longer lines are reported and skipped. A `vpdq` row carries the
/// video's frames (about 84 bytes each), so this admits some 12,000 frames: over three hours
/// at one frame a second.
pub const MAX_LINE: usize = 1024 * 1024;

/// File formats for import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// CSV with a header naming a signal-type and a signal-value column (any order); other
    /// columns are kept as metadata. As Meta's HMA and ThreatExchange exchange hash lists.
    HmaCsv,
    /// One hex value per line; signal type given by the caller.
    Hex,
    /// One JSON object per line with `signal_type` and `signal_value` (or `value`).
    Jsonl,
}

impl std::str::FromStr for ListFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "hma-csv" | "csv" => Ok(Self::HmaCsv),
            "hex" => Ok(Self::Hex),
            "jsonl" => Ok(Self::Jsonl),
            other => Err(format!(
                "unknown format {other:?} (expected hma-csv, hex or jsonl)"
            )),
        }
    }
}

/// One valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// 1-based line number in the file.
    pub line: u64,
    pub signal: Signal,
    pub classification: Option<String>,
    /// Extra columns or fields, as a JSON object text.
    pub metadata: Option<String>,
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

/// A problem with the file as a whole (not one line). `Io` hands the I/O error on as its
/// source and leaves it out of its own message (chain printers such as `{:#}` add it).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the file")]
    Io(#[from] std::io::Error),
    #[error("the CSV header has no {0} column")]
    MissingColumn(&'static str),
    #[error("the file has no header line")]
    NoHeader,
    #[error("a plain hex list needs a signal type")]
    NoSignalType,
}

/// How to read a file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Type of every value (hex lists) or of rows that name none.
    pub signal_type: Option<SignalType>,
}

/// The bank a list is imported into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportInto {
    Bank(BankId),
    /// A bank created by the import, in the same transaction: a list that is refused (or a
    /// crash mid-import) leaves no empty bank behind.
    NewBank(BankSpec),
}

/// How [`crate::BankStore::import_list`] reads a list and what it does with bad rows.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: ListFormat,
    pub read: ReadOptions,
    /// Classification of rows that carry none (`None`: the bank's).
    pub classification: Option<String>,
    /// Import the valid rows of a list that has invalid ones. Without it a list with any
    /// invalid row imports nothing ([`ImportListError::Refused`]).
    pub skip_invalid: bool,
    /// Line errors and duplicates kept in the summary; the rest are only counted.
    pub keep_problems: usize,
}

impl ImportOptions {
    /// All-or-nothing, no default classification, the first [`KEPT_PROBLEMS`] problems kept.
    pub fn new(format: ListFormat) -> Self {
        Self {
            format,
            read: ReadOptions::default(),
            classification: None,
            skip_invalid: false,
            keep_problems: KEPT_PROBLEMS,
        }
    }
}

/// Problems an import keeps by default (see [`ImportOptions::keep_problems`]).
pub const KEPT_PROBLEMS: usize = 50;

/// A row whose value an enabled entry of the bank (or an earlier row of the list) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateRow {
    pub line: u64,
    pub existing: EntryId,
}

/// What an import found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub bank: BankId,
    /// Valid rows.
    pub rows: u64,
    /// Rows that could not be read (skipped with `skip_invalid`, else the list was refused).
    pub invalid: u64,
    pub added: u64,
    pub duplicates: u64,
    /// The first invalid rows, in file order.
    pub errors: Vec<LineError>,
    /// The first duplicate rows, in file order.
    pub duplicate_rows: Vec<DuplicateRow>,
}

/// Why [`crate::BankStore::import_list`] imported nothing. Every variant but `Store` is found
/// before anything is written: the store is as it was.
#[derive(Debug, thiserror::Error)]
pub enum ImportListError {
    /// No such bank, or a new bank the store would refuse.
    #[error("the import was refused")]
    Bank(#[source] StoreError),
    /// The classification for rows that carry none breaks the rule of a bank's.
    #[error("the default classification is refused")]
    Classification(#[source] TextError),
    #[error("the list could not be read")]
    Unreadable(#[source] ImportError),
    /// The list has invalid rows and `skip_invalid` was not given; the summary lists them
    /// (nothing added).
    #[error("{} invalid lines; nothing imported", .0.invalid)]
    Refused(Box<ImportSummary>),
    /// Writing failed (or the list changed between its two readings) inside the import's
    /// transaction: drop the store (reopening discards the open transaction).
    #[error("the import failed")]
    Store(#[source] StoreError),
}

impl ImportListError {
    /// Whether the store was left as it was (every variant but `Store`).
    pub fn wrote_nothing(&self) -> bool {
        !matches!(self, Self::Store(_))
    }
}

/// Reads `input` in `format`, calling `each` per data row (valid or not), in file order.
pub fn read_list(
    input: impl Read,
    format: ListFormat,
    options: &ReadOptions,
    each: &mut dyn FnMut(Result<ImportRow, LineError>),
) -> Result<(), ImportError> {
    // A row's classification is printed and shown wherever its entry matches, so it follows
    // the rule of a bank's whatever the format (a CSV export could not even write a line
    // break back). A `vpdq` row is only as good as the frames its metadata carries. Both are
    // checked here, so a bad row is a line error like any other.
    let each = &mut |row: Result<ImportRow, LineError>| {
        let row = row.and_then(|row| {
            match row
                .classification
                .as_deref()
                .map(check_entry_classification)
            {
                Some(Err(error)) => Err(LineError {
                    line: row.line,
                    message: error.to_string(),
                }),
                _ => Ok(row),
            }
        });
        each(row.and_then(|row| match row.signal {
            Signal::Vpdq(_) => {
                match crate::video::vpdq_features(&row.signal, row.metadata.as_deref()) {
                    Ok(_) => Ok(row),
                    Err(error) => Err(LineError {
                        line: row.line,
                        message: format!("vpdq row: {error}"),
                    }),
                }
            }
            _ => Ok(row),
        }))
    };
    match format {
        ListFormat::HmaCsv => read_csv(input, options, each),
        ListFormat::Hex => {
            let signal_type = options.signal_type.ok_or(ImportError::NoSignalType)?;
            read_lines(input, &mut |line, text| {
                let row = text.map_err(|message| LineError {
                    line,
                    message: message.to_string(),
                });
                each(
                    row.and_then(|text| parse_value(signal_type, text, line))
                        .map(|signal| ImportRow {
                            line,
                            signal,
                            classification: None,
                            metadata: None,
                        }),
                )
            })
        }
        ListFormat::Jsonl => read_lines(input, &mut |line, text| {
            let row = text.map_err(|message| LineError {
                line,
                message: message.to_string(),
            });
            each(row.and_then(|text| parse_json_row(text, line, options)))
        }),
    }
}

fn parse_value(signal_type: SignalType, text: &str, line: u64) -> Result<Signal, LineError> {
    Signal::from_hex(signal_type, text.trim()).map_err(|e| LineError {
        line,
        message: e.to_string(),
    })
}

/// Calls `each(line number, text or problem)` for every non-blank, non-comment line.
fn read_lines(
    input: impl Read,
    each: &mut dyn FnMut(u64, Result<&str, &str>),
) -> Result<(), ImportError> {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, input);
    let mut buffer = Vec::new();
    let mut line = 0u64;
    loop {
        buffer.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        line += 1;
        if buffer.len() > MAX_LINE && buffer.last() != Some(&b'\n') {
            // Skip the rest of the over-long line without holding it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let n = (&mut reader).take(1 << 16).read_until(b'\n', &mut rest)?;
                if n == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
            each(line, Err(&format!("line longer than {MAX_LINE} bytes")));
            continue;
        }
        let bytes = if line == 1 {
            buffer.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buffer)
        } else {
            &buffer
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            each(line, Err("not UTF-8 text"));
            continue;
        };
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        each(line, Ok(text));
    }
}

fn parse_json_row(text: &str, line: u64, options: &ReadOptions) -> Result<ImportRow, LineError> {
    let fail = |message: String| LineError { line, message };
    let value: Value =
        serde_json::from_str(text).map_err(|e| fail(format!("invalid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(fail("expected a JSON object".into()));
    };
    let signal_type = match object.remove("signal_type") {
        Some(Value::String(name)) => name
            .parse()
            .map_err(|e: crate::signal::SignalParseError| fail(e.to_string()))?,
        Some(_) => return Err(fail("signal_type must be a string".into())),
        None => options
            .signal_type
            .ok_or_else(|| fail("no signal_type".into()))?,
    };
    let value = match object
        .remove("signal_value")
        .or_else(|| object.remove("value"))
    {
        Some(Value::String(value)) => value,
        Some(_) => return Err(fail("signal_value must be a string".into())),
        None => return Err(fail("no signal_value".into())),
    };
    let signal = parse_value(signal_type, &value, line)?;
    let classification = match object.remove("classification") {
        Some(Value::String(label)) if !label.trim().is_empty() => Some(label.trim().to_string()),
        Some(Value::String(_) | Value::Null) | None => None,
        Some(_) => return Err(fail("classification must be a string".into())),
    };
    // Our own export nests extra fields under "metadata"; flatten them back.
    if let Some(Value::Object(nested)) = object.remove("metadata") {
        for (key, value) in nested {
            object.entry(key).or_insert(value);
        }
    }
    object.remove("entry");
    let metadata = (!object.is_empty()).then(|| Value::Object(object).to_string());
    Ok(ImportRow {
        line,
        signal,
        classification,
        metadata,
    })
}

/// CSV as hash lists are exchanged: one record per line (quoted fields may hold commas and
/// doubled quotes, not line breaks), which keeps line numbers exact and memory bounded.
fn read_csv(
    input: impl Read,
    options: &ReadOptions,
    each: &mut dyn FnMut(Result<ImportRow, LineError>),
) -> Result<(), ImportError> {
    let mut columns: Option<CsvColumns> = None;
    let mut header_error = None;
    read_lines(input, &mut |line, text| {
        let fields = match text.map_err(str::to_string).and_then(split_csv) {
            Ok(fields) => fields,
            Err(message) => return each(Err(LineError { line, message })),
        };
        match &columns {
            None if header_error.is_none() => match CsvColumns::from_header(&fields) {
                Ok(found) => columns = Some(found),
                Err(error) => header_error = Some(error),
            },
            None => {}
            Some(columns) => each(columns.row(&fields, line, options)),
        }
    })?;
    match (header_error, columns) {
        (Some(error), _) => Err(error),
        (None, None) => Err(ImportError::NoHeader),
        (None, Some(_)) => Ok(()),
    }
}

/// Splits one CSV line into fields.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

struct CsvColumns {
    names: Vec<String>,
    signal_type: Option<usize>,
    value: usize,
    classification: Option<usize>,
}

impl CsvColumns {
    fn from_header(fields: &[String]) -> Result<Self, ImportError> {
        let names: Vec<String> = fields
            .iter()
            .map(|f| f.trim().to_ascii_lowercase())
            .collect();
        let find =
            |candidates: &[&str]| names.iter().position(|n| candidates.contains(&n.as_str()));
        Ok(Self {
            signal_type: find(&["signal_type", "signal type", "hash_type", "type"]),
            value: find(&["signal_value", "signal", "value", "hash", "hash_value"])
                .ok_or(ImportError::MissingColumn("signal_value"))?,
            classification: find(&["classification", "label"]),
            names,
        })
    }

    fn row(
        &self,
        record: &[String],
        line: u64,
        options: &ReadOptions,
    ) -> Result<ImportRow, LineError> {
        let fail = |message: String| LineError { line, message };
        if record.len() != self.names.len() {
            return Err(fail(format!(
                "{} fields, the header has {}",
                record.len(),
                self.names.len()
            )));
        }
        let field = |index: usize| -> Result<&str, LineError> {
            Ok(record.get(index).map_or("", |f| f.trim()))
        };
        let signal_type = match self.signal_type {
            Some(column) => field(column)?
                .parse()
                .map_err(|e: crate::signal::SignalParseError| fail(e.to_string()))?,
            None => options
                .signal_type
                .ok_or_else(|| fail("no signal_type column and none given".into()))?,
        };
        let signal = parse_value(signal_type, field(self.value)?, line)?;
        let classification = match self.classification {
            Some(column) => Some(field(column)?)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            None => None,
        };
        let mut metadata = Map::new();
        for (index, name) in self.names.iter().enumerate() {
            if Some(index) != self.signal_type
                && index != self.value
                && Some(index) != self.classification
            {
                metadata.insert(name.clone(), Value::String(field(index)?.to_string()));
            }
        }
        let metadata = (!metadata.is_empty()).then(|| Value::Object(metadata).to_string());
        Ok(ImportRow {
            line,
            signal,
            classification,
            metadata,
        })
    }
}
