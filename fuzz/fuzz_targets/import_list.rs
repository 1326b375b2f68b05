//! Any bytes as an imported hash list (the first byte picks the format and the caller's signal
//! type): the reader must end with rows or a typed error, never panic, and every row it accepts
//! must be one the rest of the system can hold. Checked: rows come in file order, one per line
//! at most, numbered within the file; a hex row is exactly its line's value; classifications
//! are trimmed and non-empty, metadata a non-empty JSON object, a `vpdq` row's frames match its
//! value; and the accepted rows, added to a bank and exported in each format, import again as
//! the same rows (what the export module promises: lists round-trip).
//!
//! Then the list goes the way `aranea bank import` and the API send it, through
//! `BankStore::import_list` (over a journal kept in memory; the byte after the selector's 21
//! formats and types picks a new bank or an existing one holding the last row's value already,
//! and a default classification or none). All or nothing: a list with an invalid row, or one
//! the reader refuses whole, writes nothing (the journal, the state and the banks as they
//! were) and its summary counts the rows and names the first bad lines; no import of a list
//! that read fine fails while writing. With `skip_invalid` the valid rows are imported: each
//! value once per bank, in file order, as the reader gave it (line, classification or the
//! default, metadata), a repeat or a value the bank held counted as a duplicate naming the
//! entry that holds it, the kept problems the first ones; and a store opened again on the
//! journal holds the same entries (the import committed).
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use aranea_index::bank::{Bank, BankSpec, Origin, Provenance};
use aranea_index::export::{ExportOptions, write_list};
use aranea_index::import::{
    DuplicateRow, ImportError, ImportInto, ImportListError, ImportOptions, ImportRow,
    ImportSummary, LineError, ListFormat, ReadOptions, read_list,
};
use aranea_index::journal::{Journal, Record};
use aranea_index::signal::{Signal, SignalType};
use aranea_index::state::BankState;
use aranea_index::video::vpdq_features;
use aranea_index::{BankStore, Entry, IndexParams, StoreError};
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
    let (rows, line_errors, result) = read(file, format, &options);
    let errors: Vec<u64> = line_errors.iter().map(|e| e.line).collect();
    match &result {
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
    let expected = Expected {
        rows: &rows,
        errors: &line_errors,
        unreadable: result.is_err(),
    };
    import(file, format, signal_type, selector / 21, &expected);
});

/// Reads a list; returns the valid rows, the invalid ones, and the result.
fn read(
    file: &[u8],
    format: ListFormat,
    options: &ReadOptions,
) -> (Vec<ImportRow>, Vec<LineError>, Result<(), ImportError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let result = read_list(file, format, options, &mut |row| match row {
        Ok(row) => rows.push(row),
        Err(error) => {
            assert!(!error.message.is_empty());
            errors.push(error);
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

/// What the reader made of the list.
struct Expected<'a> {
    rows: &'a [ImportRow],
    errors: &'a [LineError],
    /// The reader refused the list whole.
    unreadable: bool,
}

const DEFAULT_LABEL: &str = "fuzz-default";
/// Problems kept by the `skip_invalid` import: few, so that the cut is reached.
const KEPT: usize = 3;

/// The list through `BankStore::import_list`, all or nothing, then skipping invalid rows.
fn import(
    file: &[u8],
    format: ListFormat,
    signal_type: Option<SignalType>,
    variant: u8,
    expected: &Expected,
) {
    let new_bank = variant & 1 == 1;
    let default_label = (variant & 2 == 2).then(|| DEFAULT_LABEL.to_owned());
    let journal = MemoryJournal::default();
    let mut store = open(&journal);
    let spec = BankSpec::new("fuzz", "fuzz", "csam");
    let mut held: HashMap<Signal, u64> = HashMap::new();
    let into = if new_bank {
        ImportInto::NewBank(spec)
    } else {
        let bank = store.create_bank(spec).unwrap();
        // A value the bank holds already: the last valid row's, so that it is a duplicate.
        if let Some(last) = expected.rows.last() {
            let provenance = store.add_provenance(provenance("before")).unwrap();
            let outcome = store
                .add_entries(&[aranea_index::NewEntry {
                    bank,
                    signal: last.signal,
                    classification: None,
                    provenance,
                    line: 0,
                    metadata: last.metadata.clone(),
                }])
                .unwrap();
            held.insert(last.signal, outcome.added[0]);
        }
        ImportInto::Bank(bank)
    };
    let mut options = ImportOptions::new(format);
    options.read = ReadOptions { signal_type };
    options.classification = default_label.clone();

    let before = Before::of(&store, &journal);
    let all_or_nothing = run(&mut store, into.clone(), file, &options);
    if expected.unreadable {
        assert!(
            matches!(all_or_nothing, Err(ImportListError::Unreadable(_))),
            "{all_or_nothing:?}"
        );
        before.check_unchanged(&store, &journal);
        return;
    }
    if !expected.errors.is_empty() {
        let Err(ImportListError::Refused(summary)) = all_or_nothing else {
            panic!("a list with invalid rows was not refused: {all_or_nothing:?}");
        };
        before.check_unchanged(&store, &journal);
        assert_eq!(summary.rows, expected.rows.len() as u64);
        assert_eq!(summary.invalid, expected.errors.len() as u64);
        assert_eq!((summary.added, summary.duplicates), (0, 0));
        assert!(summary.duplicate_rows.is_empty());
        let kept = expected.errors.len().min(options.keep_problems);
        assert_eq!(summary.errors, expected.errors[..kept]);
        options.skip_invalid = true;
        options.keep_problems = KEPT;
        let skipping = run(&mut store, into, file, &options);
        let summary = skipping.unwrap_or_else(|e| panic!("skip_invalid failed: {e:?}"));
        check_imported(
            &store, &journal, &before, &summary, expected, &held, &options,
        );
        return;
    }
    let summary = all_or_nothing.unwrap_or_else(|e| panic!("a valid list failed: {e:?}"));
    check_imported(
        &store, &journal, &before, &summary, expected, &held, &options,
    );
}

fn run(
    store: &mut BankStore<MemoryJournal>,
    into: ImportInto,
    file: &[u8],
    options: &ImportOptions,
) -> Result<ImportSummary, ImportListError> {
    let result = store.import_list(into, &mut || Ok(file), options, provenance("import"));
    if let Err(error) = &result {
        assert!(
            error.wrote_nothing(),
            "the import failed writing: {error:?}"
        );
    }
    result
}

/// The store before an import.
struct Before {
    seq: u64,
    journal: usize,
    banks: Vec<Bank>,
    entries: Vec<Entry>,
    provenances: usize,
}

impl Before {
    fn of(store: &BankStore<MemoryJournal>, journal: &MemoryJournal) -> Self {
        let state = store.state();
        Self {
            seq: state.seq(),
            journal: journal.0.borrow().len(),
            banks: state.banks().to_vec(),
            entries: state.entries().to_vec(),
            provenances: provenance_count(state),
        }
    }

    fn check_unchanged(&self, store: &BankStore<MemoryJournal>, journal: &MemoryJournal) {
        let state = store.state();
        assert_eq!(state.seq(), self.seq, "a refused import changed the state");
        assert_eq!(
            journal.0.borrow().len(),
            self.journal,
            "a refused import wrote"
        );
        assert_eq!(state.banks(), &self.banks[..]);
        assert_eq!(state.entries(), &self.entries[..]);
        assert_eq!(provenance_count(state), self.provenances);
    }
}

/// A successful import: the summary and the entries are the valid rows', and durable.
fn check_imported(
    store: &BankStore<MemoryJournal>,
    journal: &MemoryJournal,
    before: &Before,
    summary: &ImportSummary,
    expected: &Expected,
    held: &HashMap<Signal, u64>,
    options: &ImportOptions,
) {
    let state = store.state();
    let bank = summary.bank;
    let spec = &state.bank(bank).expect("the import's bank exists").spec;
    assert_eq!(spec.name, "fuzz");
    assert_eq!(state.banks().len(), 1);
    assert_eq!(summary.rows, expected.rows.len() as u64);
    assert_eq!(summary.invalid, expected.errors.len() as u64);
    let kept = expected.errors.len().min(options.keep_problems);
    assert_eq!(summary.errors, expected.errors[..kept]);
    assert_eq!(provenance_count(state), before.provenances + 1);
    let provenance_index = before.provenances as u32;
    assert_eq!(
        state.provenance(provenance_index),
        Some(&provenance("import"))
    );

    let entries = state.entries();
    assert_eq!(&entries[..before.entries.len()], &before.entries[..]);
    let added = &entries[before.entries.len()..];
    let mut holder = held.clone();
    let mut next_added = added.iter();
    let mut duplicates = Vec::new();
    for row in expected.rows {
        if let Some(&existing) = holder.get(&row.signal) {
            duplicates.push(DuplicateRow {
                line: row.line,
                existing,
            });
            continue;
        }
        let entry = next_added
            .next()
            .unwrap_or_else(|| panic!("line {} not added", row.line));
        assert_eq!(entry.bank, bank);
        assert_eq!(entry.signal, row.signal);
        assert_eq!(entry.line, row.line);
        assert!(!entry.disabled);
        assert_eq!(entry.provenance, provenance_index);
        let label = row
            .classification
            .as_deref()
            .or(options.classification.as_deref());
        assert_eq!(entry.classification.as_deref(), label, "line {}", row.line);
        assert_eq!(entry.metadata.as_deref(), row.metadata.as_deref());
        holder.insert(row.signal, entry.id);
    }
    assert!(next_added.next().is_none(), "more entries than new values");
    assert_eq!(summary.added, added.len() as u64);
    assert_eq!(summary.duplicates, duplicates.len() as u64);
    let kept = duplicates.len().min(options.keep_problems);
    assert_eq!(summary.duplicate_rows, duplicates[..kept]);

    // Committed: a store opened on the journal holds the same.
    let again = open(journal);
    assert_eq!(again.state().seq(), state.seq());
    assert_eq!(again.state().banks(), state.banks());
    assert_eq!(again.state().entries(), entries);
    for entry in added {
        assert_eq!(again.find_enabled(bank, &entry.signal), Some(entry.id));
    }
}

fn provenance_count(state: &BankState) -> usize {
    (0..)
        .take_while(|&index| state.provenance(index).is_some())
        .count()
}

fn provenance(by: &str) -> Provenance {
    Provenance {
        added_by: by.into(),
        added_at: 0,
        origin: Origin::Import {
            file: "fuzz".into(),
        },
    }
}

/// A bank store over `journal`; its directory is never written (no snapshot is taken).
fn open(journal: &MemoryJournal) -> BankStore<MemoryJournal> {
    let dir = PathBuf::from("/nonexistent/aranea-fuzz-import-list");
    BankStore::open_with(&dir, journal.clone(), IndexParams::default()).unwrap()
}

/// Records kept in memory (sequence number = position + 1), replaying only committed
/// transactions, as the journal contract asks; clones share the records.
#[derive(Clone, Default)]
struct MemoryJournal(Rc<RefCell<Vec<Record>>>);

impl Journal for MemoryJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64, StoreError> {
        let mut kept = self.0.borrow_mut();
        let first = kept.len() as u64 + 1;
        kept.extend_from_slice(records);
        Ok(first)
    }

    fn replay(
        &mut self,
        after: u64,
        apply: &mut dyn FnMut(u64, Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let records = self.0.borrow().clone();
        let mut open: Option<Vec<(u64, Record)>> = None;
        for (seq, record) in (1..).zip(records) {
            match record {
                Record::TransactionBegun { .. } => open = Some(vec![(seq, record)]),
                Record::TransactionCommitted { .. } => {
                    let begun = open.take().expect("a commit without a begin");
                    for (seq, record) in begun.into_iter().chain([(seq, record)]) {
                        if seq > after {
                            apply(seq, record)?;
                        }
                    }
                }
                other => match &mut open {
                    Some(transaction) => transaction.push((seq, other)),
                    None if seq > after => apply(seq, other)?,
                    None => {}
                },
            }
        }
        assert!(open.is_none(), "an uncommitted transaction in the journal");
        Ok(())
    }

    fn last_seq(&self) -> u64 {
        self.0.borrow().len() as u64
    }

    fn covered_up_to(&mut self, _seq: u64) -> Result<(), StoreError> {
        Ok(())
    }
}
