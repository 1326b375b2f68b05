//! Writing a bank's entries in the formats [`crate::import`] reads, so lists round-trip.
//!
//! Only enabled entries are written unless asked otherwise; disabled ones are history, not
//! list content. This module must not change the store.

use std::io::{self, Write};

use serde_json::{Map, Value};

use crate::bank::{BankId, Entry};
use crate::import::ListFormat;
use crate::signal::SignalType;
use crate::state::BankState;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only this signal type (required in effect for hex lists, which cannot say the type).
    pub signal_type: Option<SignalType>,
    pub include_disabled: bool,
}

/// Writes the entries of `bank`; returns how many were written.
pub fn write_list(
    state: &BankState,
    bank: BankId,
    format: ListFormat,
    options: &ExportOptions,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut written = 0;
    if format == ListFormat::HmaCsv {
        out.write_all(b"signal_type,signal_value,classification\r\n")?;
    }
    let wanted = |entry: &Entry| {
        entry.bank == bank
            && (options.include_disabled || !entry.disabled)
            && options
                .signal_type
                .is_none_or(|t| entry.signal.signal_type() == t)
    };
    let mut write_one = |entry: &Entry| -> io::Result<()> {
        if !wanted(entry) {
            return Ok(());
        }
        let classification = state.classification_of(entry);
        match format {
            ListFormat::Hex => writeln!(out, "{}", entry.signal.to_hex())?,
            ListFormat::HmaCsv => {
                let label = csv_field(classification);
                write!(
                    out,
                    "{},{},{}\r\n",
                    entry.signal.signal_type(),
                    entry.signal.to_hex(),
                    label
                )?;
            }
            ListFormat::Jsonl => {
                let mut object = Map::new();
                object.insert(
                    "signal_type".into(),
                    Value::from(entry.signal.signal_type().name()),
                );
                object.insert("signal_value".into(), Value::from(entry.signal.to_hex()));
                object.insert("classification".into(), Value::from(classification));
                object.insert("entry".into(), Value::from(entry.id));
                if let Some(metadata) = entry
                    .metadata
                    .as_deref()
                    .and_then(|m| serde_json::from_str::<Value>(m).ok())
                {
                    object.insert("metadata".into(), metadata);
                }
                serde_json::to_writer(&mut *out, &Value::Object(object))?;
                out.write_all(b"\n")?;
            }
        }
        written += 1;
        Ok(())
    };
    // One row group at a time: exporting a 10M bank does not load it into memory.
    state
        .for_each_entry(&mut write_one)
        .map_err(io::Error::other)?;
    out.flush()?;
    Ok(written)
}

/// Quotes a CSV field when it needs it.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) || text.starts_with('#') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
