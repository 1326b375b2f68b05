//! Any bytes as an imported hash list (the first byte picks the format and the caller's signal
//! type): the reader must end with rows or a typed error, never panic, and every row it accepts
//! must be one the rest of the system can hold. Checked: rows come in file order, one per line
//! at most, numbered within the file; a hex row is exactly its line's value; classifications
//! are trimmed and non-empty, metadata a non-empty JSON object, a `vpdq` row's frames match its
//! value; and the accepted rows, added to a bank and exported in each format, import again as
//! the same rows (what the export module promises: lists round-trip).
#![no_main]

use aranea_index::bank::{Bank, BankSpec, Origin, Provenance};
use aranea_index::export::{ExportOptions, write_list};
use aranea_index::import::{ImportError, ImportRow, ListFormat, ReadOptions, read_list};
use aranea_index::journal::Record;
use aranea_index::signal::{Signal, SignalType};
use aranea_index::state::BankState;
use aranea_index::video::vpdq_features;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FORMATS: [ListFormat; 3] = [ListFormat::HmaCsv, ListFormat::Hex, ListFormat::Jsonl];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector % 3)];
    let signal_type = match (selector / 3) % 7 {
        0 => None,
        n => Some(SignalType::ALL[usize::from(n - 1)]),
    };
    let options = ReadOptions { signal_type };
    let (rows, errors, result) = read(file, format, &options);
    match result {
        Ok(()) => {}
        Err(ImportError::Io(error)) => panic!("a byte slice cannot fail to read: {error}"),
        Err(ImportError::NoSignalType) => {
            assert!(format == ListFormat::Hex && signal_type.is_none());
            assert!(rows.is_empty() && errors.is_empty());
        }
        Err(ImportError::NoHeader | ImportError::MissingColumn(_)) => {
            assert_eq!(format, ListFormat::HmaCsv);
        }
    }
    let lines: Vec<&[u8]> = file.split(|&b| b == b'\n').collect();
    let mut last_line = 0;
    for line in rows.iter().map(|r| r.line).chain(errors.iter().copied()) {
        assert!(line >= 1 && line as usize <= lines.len(), "line {line}");
    }
    let mut all_lines: Vec<u64> = rows
        .iter()
        .map(|r| r.line)
        .chain(errors.iter().copied())
        .collect();
    all_lines.sort_unstable();
    assert!(
        all_lines.windows(2).all(|pair| pair[0] < pair[1]),
        "two results for one line"
    );
    for row in &rows {
        assert!(row.line > last_line, "rows out of file order");
        last_line = row.line;
        check_row(row, format, signal_type, lines[row.line as usize - 1]);
    }
    if !rows.is_empty() {
        round_trip(&rows);
    }
});

/// Reads a list; returns the valid rows, the line numbers of the invalid ones, and the result.
fn read(
    file: &[u8],
    format: ListFormat,
    options: &ReadOptions,
) -> (Vec<ImportRow>, Vec<u64>, Result<(), ImportError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let result = read_list(file, format, options, &mut |row| match row {
        Ok(row) => rows.push(row),
        Err(error) => {
            assert!(!error.message.is_empty());
            errors.push(error.line);
        }
    });
    (rows, errors, result)
}

fn check_row(row: &ImportRow, format: ListFormat, signal_type: Option<SignalType>, line: &[u8]) {
    let hex = row.signal.to_hex();
    assert_eq!(
        Signal::from_hex(row.signal.signal_type(), &hex),
        Ok(row.signal)
    );
    if format == ListFormat::Hex {
        assert_eq!(Some(row.signal.signal_type()), signal_type);
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let text = std::str::from_utf8(line).expect("an accepted line is UTF-8");
        assert!(
            text.trim().eq_ignore_ascii_case(&hex),
            "{text:?} read as {hex}"
        );
        assert!(row.classification.is_none() && row.metadata.is_none());
    }
    if let Some(label) = &row.classification {
        assert!(!label.is_empty() && label.trim() == label, "{label:?}");
    }
    if let Some(metadata) = &row.metadata {
        match serde_json::from_str::<Value>(metadata) {
            Ok(Value::Object(object)) => assert!(!object.is_empty()),
            other => panic!("metadata {metadata:?} is not a JSON object: {other:?}"),
        }
    }
    if matches!(row.signal, Signal::Vpdq(_)) {
        assert!(vpdq_features(&row.signal, row.metadata.as_deref()).is_ok());
    }
}

/// Adds the rows to a bank as an import does, exports it in each format and reads that back.
fn round_trip(rows: &[ImportRow]) {
    let mut state = BankState::default();
    let bank = Bank {
        id: 0,
        spec: BankSpec::new("fuzz", "fuzz", ""),
        created_at: 0,
    };
    state.apply(1, Record::BankCreated { bank }).unwrap();
    let provenance = Provenance {
        added_by: "fuzz".into(),
        added_at: 0,
        origin: Origin::Import {
            file: "fuzz".into(),
        },
    };
    state
        .apply(
            2,
            Record::ProvenanceAdded {
                index: 0,
                provenance,
            },
        )
        .unwrap();
    for (seq, row) in (3..).zip(rows) {
        let record = Record::EntryAdded {
            bank: 0,
            signal_type: row.signal.signal_type(),
            value: row.signal.to_hex(),
            classification: row.classification.clone(),
            provenance: 0,
            line: row.line,
            metadata: row.metadata.clone(),
        };
        state
            .apply(seq, record)
            .expect("an accepted row is a valid entry");
    }
    for format in FORMATS {
        // A hex list cannot say the type: one export per type, as an operator would do.
        let types: Vec<Option<SignalType>> = match format {
            ListFormat::Hex => SignalType::ALL.into_iter().map(Some).collect(),
            _ => vec![None],
        };
        for signal_type in types {
            let expected: Vec<&ImportRow> = rows
                .iter()
                .filter(|r| signal_type.is_none_or(|t| r.signal.signal_type() == t))
                .collect();
            let options = ExportOptions {
                signal_type,
                include_disabled: false,
            };
            let mut out = Vec::new();
            let written = write_list(&state, 0, format, &options, &mut out).unwrap();
            assert_eq!(written as usize, expected.len());
            let (again, errors, result) = read(&out, format, &ReadOptions { signal_type });
            assert!(result.is_ok(), "{format:?} export unreadable: {result:?}");
            // CSV and hex lists carry no frames, so a vpdq row cannot travel in them
            // (docs/video.md): those lines, and only those, are refused.
            let (expected, refused): (Vec<&ImportRow>, Vec<&ImportRow>) = expected
                .into_iter()
                .partition(|r| format == ListFormat::Jsonl || !matches!(r.signal, Signal::Vpdq(_)));
            assert_eq!(
                errors.len(),
                refused.len(),
                "{format:?} export has unreadable lines {errors:?}:\n{}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(again.len(), expected.len());
            for (before, after) in expected.iter().zip(&again) {
                assert_eq!(before.signal, after.signal);
                if format != ListFormat::Hex {
                    assert_eq!(before.classification, after.classification, "{format:?}");
                }
                if format == ListFormat::Jsonl {
                    let json = |m: &Option<String>| {
                        m.as_deref()
                            .map(|m| serde_json::from_str::<Value>(m).unwrap())
                    };
                    assert_eq!(json(&before.metadata), json(&after.metadata));
                }
            }
        }
    }
}
