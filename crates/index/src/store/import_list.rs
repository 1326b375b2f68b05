//! [`BankStore::import_list`]: the one way a hash list becomes bank entries (the `bank import`
//! command, the native API's import, the demo's known bank and test fixtures all go through
//! it), so that every caller refuses a bad list the same way and loses nothing silently.

use std::io::Read;

use super::{BankStore, NewEntry};
use crate::bank::{Provenance, check_bank_spec, check_entry_classification};
use crate::error::StoreError;
use crate::import::{
    DuplicateRow, ImportError, ImportInto, ImportListError, ImportOptions, ImportSummary, read_list,
};
use crate::journal::Journal;

/// Entries appended per journal write: bounds the memory an import holds at once.
const IMPORT_BATCH: usize = 50_000;

impl<J: Journal> BankStore<J> {
    /// Imports a hash list into a bank, all or nothing.
    ///
    /// The list is read twice (`open` is called once per reading), so memory stays bounded
    /// whatever its size: first every row is checked, and a list with an invalid row imports
    /// nothing ([`ImportListError::Refused`], its first line errors in the summary) unless
    /// `options.skip_invalid`; then the provenance, the bank if [`ImportInto::NewBank`], and
    /// the valid rows are written in one transaction (the caller's if one is open, else the
    /// import's own), in batches. Values an enabled entry of the bank, or an earlier row, holds
    /// are counted as duplicates and not added. Entries are appended, not published: call
    /// [`Self::publish`] or [`Self::write_snapshot`] afterwards (a server's bank writer does).
    pub fn import_list<R: Read>(
        &mut self,
        into: ImportInto,
        open: &mut dyn FnMut() -> std::io::Result<R>,
        options: &ImportOptions,
        provenance: Provenance,
    ) -> Result<ImportSummary, ImportListError> {
        if let Some(label) = &options.classification {
            check_entry_classification(label).map_err(ImportListError::Classification)?;
        }
        match &into {
            ImportInto::Bank(id) if self.state.bank(*id).is_none() => {
                return Err(ImportListError::Bank(StoreError::NoSuchBank(
                    id.to_string(),
                )));
            }
            ImportInto::Bank(_) => {}
            ImportInto::NewBank(spec) => {
                check_bank_spec(spec).map_err(ImportListError::Bank)?;
                if self.state.bank_by_name(&spec.name).is_some() {
                    return Err(ImportListError::Bank(StoreError::BankExists(
                        spec.name.clone(),
                    )));
                }
            }
        }
        let keep = options.keep_problems;
        let mut summary = ImportSummary::default();
        let input = open().map_err(|e| ImportListError::Unreadable(ImportError::Io(e)))?;
        read_list(input, options.format, &options.read, &mut |row| match row {
            Ok(_) => summary.rows += 1,
            Err(error) => {
                summary.invalid += 1;
                if summary.errors.len() < keep {
                    summary.errors.push(error);
                }
            }
        })
        .map_err(ImportListError::Unreadable)?;
        if summary.invalid > 0 && !options.skip_invalid {
            return Err(ImportListError::Refused(Box::new(summary)));
        }
        self.write_list(into, open, options, provenance, &mut summary)
            .map_err(ImportListError::Store)?;
        Ok(summary)
    }

    /// The second reading of [`Self::import_list`]: everything it writes.
    fn write_list<R: Read>(
        &mut self,
        into: ImportInto,
        open: &mut dyn FnMut() -> std::io::Result<R>,
        options: &ImportOptions,
        provenance: Provenance,
        summary: &mut ImportSummary,
    ) -> Result<(), StoreError> {
        let own_transaction = self.transaction.is_none();
        if own_transaction {
            self.begin_transaction()?;
        }
        let bank = match into {
            ImportInto::Bank(id) => id,
            ImportInto::NewBank(spec) => self.create_bank(spec)?,
        };
        summary.bank = bank;
        let provenance = self.add_provenance(provenance)?;
        let changed = |why: String| StoreError::ListChanged(why);
        let input = open().map_err(|e| changed(format!("opening it again: {e}")))?;
        let mut batch: Vec<NewEntry> = Vec::new();
        let (mut rows, mut invalid) = (0u64, 0u64);
        let mut failure = None;
        read_list(input, options.format, &options.read, &mut |row| {
            let Ok(row) = row else {
                invalid += 1;
                return;
            };
            rows += 1;
            if failure.is_some() {
                return;
            }
            batch.push(NewEntry {
                bank,
                signal: row.signal,
                classification: row
                    .classification
                    .or_else(|| options.classification.clone()),
                provenance,
                line: row.line,
                metadata: row.metadata,
            });
            if batch.len() >= IMPORT_BATCH
                && let Err(error) = self.append_batch(&mut batch, summary, options.keep_problems)
            {
                failure = Some(error);
            }
        })
        .map_err(|e| changed(format!("reading it again: {e}")))?;
        if let Some(error) = failure {
            return Err(error);
        }
        // A list rewritten between the readings would import rows nobody checked.
        if (rows, invalid) != (summary.rows, summary.invalid) {
            return Err(changed(format!(
                "{rows} valid and {invalid} invalid rows on the second reading, {} and {} on the first",
                summary.rows, summary.invalid
            )));
        }
        self.append_batch(&mut batch, summary, options.keep_problems)?;
        if own_transaction {
            self.commit_transaction()?;
        }
        Ok(())
    }

    fn append_batch(
        &mut self,
        batch: &mut Vec<NewEntry>,
        summary: &mut ImportSummary,
        keep: usize,
    ) -> Result<(), StoreError> {
        let outcome = self.append_entries(batch)?;
        summary.added += outcome.added.len() as u64;
        for (position, existing) in outcome.duplicates {
            summary.duplicates += 1;
            if summary.duplicate_rows.len() < keep {
                let line = batch.get(position).map_or(0, |entry| entry.line);
                summary.duplicate_rows.push(DuplicateRow { line, existing });
            }
        }
        batch.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::bank::{BankSpec, Origin};
    use crate::import::ListFormat;
    use crate::signal::{Signal, SignalType};
    use crate::store::BankStore;

    const MD5_A: &str = "00000000000000000000000000000001";
    const MD5_B: &str = "00000000000000000000000000000002";

    fn provenance() -> Provenance {
        Provenance {
            added_by: "test".into(),
            added_at: 0,
            origin: Origin::Import {
                file: "list.csv".into(),
            },
        }
    }

    fn import(
        store: &mut BankStore,
        into: ImportInto,
        list: &str,
        options: &ImportOptions,
    ) -> Result<ImportSummary, ImportListError> {
        store.import_list(
            into,
            &mut || Ok(Cursor::new(list.as_bytes())),
            options,
            provenance(),
        )
    }

    fn md5_options() -> ImportOptions {
        let mut options = ImportOptions::new(ListFormat::Hex);
        options.read.signal_type = Some(SignalType::Md5);
        options
    }

    fn entry_of(store: &BankStore, bank: crate::BankId, hex: &str) -> crate::Entry {
        let signal = Signal::from_hex(SignalType::Md5, hex).unwrap();
        let entries = store.state().entries();
        let found = entries
            .iter()
            .find(|e| e.bank == bank && e.signal == signal);
        found.unwrap().clone()
    }

    #[test]
    fn a_list_with_an_invalid_row_writes_nothing_and_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("b", "local", "csam"))
            .unwrap();
        let seq = store.state().seq();
        let list = format!("{MD5_A}\n\nnot-hex\n{MD5_B}\n");
        let refused = import(&mut store, ImportInto::Bank(bank), &list, &md5_options());
        let Err(ImportListError::Refused(summary)) = refused else {
            panic!("not refused: {refused:?}");
        };
        assert_eq!((summary.rows, summary.invalid, summary.added), (2, 1, 0));
        assert_eq!(summary.errors[0].line, 3);
        assert_eq!(store.state().seq(), seq, "a refused list wrote records");
        drop(store);
        let store = BankStore::open(dir.path()).unwrap();
        assert_eq!(store.state().entries().len(), 0);
        assert_eq!(store.state().provenances.len(), 0);
    }

    #[test]
    fn skipping_invalid_rows_imports_the_valid_ones_and_reports_duplicates_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("b", "local", "csam"))
            .unwrap();
        let mut options = md5_options();
        options.skip_invalid = true;
        options.classification = Some("label".into());
        let list = format!("{MD5_A}\nzz\n{MD5_A}\n{MD5_B}\n");
        let summary = import(&mut store, ImportInto::Bank(bank), &list, &options).unwrap();
        assert_eq!(
            (
                summary.rows,
                summary.invalid,
                summary.added,
                summary.duplicates
            ),
            (3, 1, 2, 1)
        );
        assert_eq!(summary.errors[0].line, 2);
        let first = entry_of(&store, bank, MD5_A);
        assert_eq!(
            summary.duplicate_rows,
            vec![DuplicateRow {
                line: 3,
                existing: first.id
            }]
        );
        assert_eq!(first.line, 1);
        assert_eq!(first.classification.as_deref(), Some("label"));
        store.publish().unwrap();
        drop(store);
        // Durable: the import's transaction was committed.
        let store = BankStore::open(dir.path()).unwrap();
        assert_eq!(store.state().entries().len(), 2);
        let again = entry_of(&store, bank, MD5_B);
        assert_eq!(
            store.state().provenance(again.provenance),
            Some(&provenance())
        );
    }

    #[test]
    fn a_new_bank_is_created_with_its_list_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BankStore::open(dir.path()).unwrap();
        let spec = BankSpec::new("fresh", "local", "csam");
        let refused = import(
            &mut store,
            ImportInto::NewBank(spec.clone()),
            "garbage\n",
            &md5_options(),
        );
        assert!(matches!(refused, Err(ImportListError::Refused(_))));
        assert!(
            store.state().banks().is_empty(),
            "a refused list left a bank"
        );
        let summary = import(
            &mut store,
            ImportInto::NewBank(spec.clone()),
            MD5_A,
            &md5_options(),
        )
        .unwrap();
        assert_eq!(summary.added, 1);
        assert_eq!(store.bank_id("fresh").unwrap(), summary.bank);
        let again = import(&mut store, ImportInto::NewBank(spec), MD5_B, &md5_options());
        assert!(matches!(
            again,
            Err(ImportListError::Bank(StoreError::BankExists(_)))
        ));
    }

    #[test]
    fn a_list_that_reads_differently_the_second_time_imports_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("b", "local", "csam"))
            .unwrap();
        let readings = [format!("{MD5_A}\n"), format!("{MD5_A}\n{MD5_B}\n")];
        let mut reading = readings.iter();
        let result = store.import_list(
            ImportInto::Bank(bank),
            &mut || Ok(Cursor::new(reading.next().unwrap().clone().into_bytes())),
            &md5_options(),
            provenance(),
        );
        assert!(
            matches!(
                result,
                Err(ImportListError::Store(StoreError::ListChanged(_)))
            ),
            "{result:?}"
        );
        drop(store);
        let store = BankStore::open(dir.path()).unwrap();
        assert_eq!(store.state().entries().len(), 0);
    }

    #[test]
    fn a_default_classification_breaking_the_bank_rule_is_refused_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("b", "local", "csam"))
            .unwrap();
        let mut options = md5_options();
        options.classification = Some("two\nlines".into());
        let seq = store.state().seq();
        let refused = import(&mut store, ImportInto::Bank(bank), MD5_A, &options);
        assert!(matches!(refused, Err(ImportListError::Classification(_))));
        assert_eq!(store.state().seq(), seq);
    }
}
