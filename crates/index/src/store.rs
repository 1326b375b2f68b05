//! A bank directory: snapshot + journal on disk, bank state and the live index in memory.
//!
//! Opening reads the snapshot (if any and valid), replays the journal records past its
//! sequence number and publishes the result. Every change is journaled (durably) before it is
//! applied, then published to the live index, where queries see it immediately. A snapshot
//! rebuilds the base index from the state and makes the journal start a new segment; old
//! segments stay, so the full history can always be replayed.
//!
//! Single writer: one `BankStore` per directory at a time (the CLI is one process; the server
//! will hold one store and hand out `LiveIndex` handles to readers).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::collections::hash_map::Entry::{Occupied, Vacant};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bank::{
    Bank, BankId, BankSpec, Entry, EntryId, Provenance, check_bank_spec, check_bank_texts,
    check_entry_classification, check_threshold, unix_now,
};
use crate::error::StoreError;
use crate::journal::{BankJournal, FileJournal, Journal, Record};
use crate::live::{Generation, LiveIndex, MERGE_AT, segment_entry};
use crate::pdq_index::{IndexParams, SearchScratch};
use crate::segment::{Segment, SegmentBuilder, SegmentHit};
use crate::signal::Signal;
use crate::snapshot;
use crate::state::BankState;

mod import_list;

/// File name of the snapshot inside the bank directory.
pub const SNAPSHOT_FILE: &str = "banks.snapshot";
pub use crate::bank::ALL_BANKS;

/// An entry to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub bank: BankId,
    pub signal: Signal,
    pub classification: Option<String>,
    /// From [`BankStore::add_provenance`].
    pub provenance: u32,
    pub line: u64,
    pub metadata: Option<String>,
}

/// What became of a batch of new entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOutcome {
    pub added: Vec<EntryId>,
    /// (position in the batch, the entry that already holds the value)
    pub duplicates: Vec<(usize, EntryId)>,
}

pub struct BankStore<J: Journal = BankJournal> {
    dir: PathBuf,
    journal: J,
    state: BankState,
    live: Arc<LiveIndex>,
    params: IndexParams,
    snapshot_seq: u64,
    pending: Vec<Entry>,
    pending_disabled: Vec<EntryId>,
    /// More was appended than a delta should hold; the next publish rebuilds the base.
    pending_overflow: bool,
    /// Entries appended since the last publish, which the live index cannot find yet.
    unpublished: UnpublishedValues,
    /// Sequence number of the open transaction's begin record.
    transaction: Option<u64>,
    warnings: Vec<String>,
}

impl BankStore<BankJournal> {
    /// Opens (or creates) the bank directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let journal = FileJournal::open(dir)?;
        let torn = journal.torn_bytes();
        let mut store = Self::open_with(dir, BankJournal::Files(journal), IndexParams::default())?;
        if torn > 0 {
            store.warnings.push(format!(
                "ignored {torn} bytes of a torn journal record or an uncommitted transaction (crash mid-write)"
            ));
        }
        Ok(store)
    }

    /// Opens banks whose journal is kept elsewhere (a database several machines share);
    /// `cache_dir` holds this machine's snapshot of them, which must belong to that journal.
    pub fn open_shared(
        cache_dir: &Path,
        journal: Box<dyn Journal + Send>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(cache_dir).map_err(|e| StoreError::io(cache_dir, e))?;
        Self::open_with(
            cache_dir,
            BankJournal::Shared(journal),
            IndexParams::default(),
        )
    }
}

impl<J: Journal> BankStore<J> {
    /// Opens with any journal; the snapshot lives in `dir`.
    pub fn open_with(dir: &Path, mut journal: J, params: IndexParams) -> Result<Self, StoreError> {
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let mut warnings = Vec::new();
        let loaded = if snapshot_path.exists() {
            match snapshot::read_banks(&snapshot_path) {
                Ok(loaded) => Some(loaded),
                Err(error) => {
                    warnings.push(format!(
                        "{}; rebuilding from the journal",
                        error.with_causes()
                    ));
                    None
                }
            }
        } else {
            None
        };
        let (mut state, base) = loaded.unwrap_or_default();
        let snapshot_seq = state.seq();
        let mut added = Vec::new();
        let mut disabled = Vec::new();
        replay_into(&mut journal, &mut state, &mut added, &mut disabled)?;
        if state.seq() != journal.last_seq() && journal.last_seq() > snapshot_seq {
            return Err(StoreError::Corrupt(format!(
                "journal ends at {} but replay reached {}",
                journal.last_seq(),
                state.seq()
            )));
        }
        let live = Arc::new(LiveIndex::new(
            snapshot_seq,
            state.banks.clone(),
            base,
            params,
        ));
        let mut store = Self {
            dir: dir.to_path_buf(),
            journal,
            state,
            live,
            params,
            snapshot_seq,
            pending: Vec::new(),
            pending_disabled: disabled,
            pending_overflow: false,
            unpublished: UnpublishedValues::default(),
            transaction: None,
            warnings,
        };
        if added.len() >= MERGE_AT {
            store.pending_overflow = true;
        } else {
            store.pending = added
                .iter()
                .filter_map(|&id| store.state.entry(id))
                .collect();
        }
        store.publish()?;
        Ok(store)
    }

    /// Applies the records other writers appended to a shared journal since this store read
    /// it, and publishes them; returns how many there were. Not for a store with a
    /// transaction open (its own records are not in the journal's committed part yet).
    pub fn catch_up(&mut self) -> Result<u64, StoreError> {
        if let Some(open) = self.transaction {
            return Err(StoreError::Transaction(format!(
                "transaction {open} is still open"
            )));
        }
        let before = self.state.seq();
        let mut added = Vec::new();
        replay_into(
            &mut self.journal,
            &mut self.state,
            &mut added,
            &mut self.pending_disabled,
        )?;
        if self.pending.len() + added.len() >= MERGE_AT {
            self.pending_overflow = true;
        } else {
            let state = &self.state;
            self.pending
                .extend(added.iter().filter_map(|&id| state.entry(id)));
        }
        let caught_up = self.state.seq() - before;
        if caught_up > 0 {
            self.publish()?;
        }
        Ok(caught_up)
    }

    pub fn state(&self) -> &BankState {
        &self.state
    }

    /// A handle for readers: `live().load()` gives the current generation to search.
    pub fn live(&self) -> Arc<LiveIndex> {
        Arc::clone(&self.live)
    }

    /// Problems met and worked around while opening (torn journal tail, unusable snapshot).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Adds to [`Self::warnings`] a problem its opener worked around (a machine's cached
    /// snapshot of shared banks dropped, say), so that whoever reports them reports it too.
    pub fn add_warning(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// Sequence number the snapshot on disk covers (0 = none).
    pub fn snapshot_seq(&self) -> u64 {
        self.snapshot_seq
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn bank_id(&self, name: &str) -> Result<BankId, StoreError> {
        self.state
            .bank_by_name(name)
            .map(|b| b.id)
            .ok_or_else(|| StoreError::NoSuchBank(name.to_string()))
    }

    pub fn create_bank(&mut self, spec: BankSpec) -> Result<BankId, StoreError> {
        check_bank_spec(&spec)?;
        if self.state.bank_by_name(&spec.name).is_some() {
            return Err(StoreError::BankExists(spec.name));
        }
        let id = self.state.banks().len() as BankId;
        let bank = Bank {
            id,
            spec,
            created_at: unix_now(),
        };
        self.append_and_apply(vec![Record::BankCreated { bank }])?;
        self.live
            .publish(self.state.seq(), Some(self.state.banks.clone()), &[], &[])?;
        Ok(id)
    }

    /// Changes a bank's settings (enabled flag, threshold, description, ...).
    pub fn update_bank(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut BankSpec),
    ) -> Result<(), StoreError> {
        let mut bank = self
            .state
            .bank_by_name(name)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchBank(name.to_string()))?;
        let texts = |spec: &BankSpec| {
            (
                spec.source.clone(),
                spec.classification.clone(),
                spec.description.clone(),
            )
        };
        let before = texts(&bank.spec);
        change(&mut bank.spec);
        check_threshold(bank.spec.pdq_threshold)?;
        // Texts kept before they were checked stay until changed: a bank can still be
        // disabled whatever its description.
        if texts(&bank.spec) != before {
            check_bank_texts(&bank.spec)?;
        }
        if bank.spec.name != name {
            return Err(StoreError::InvalidBankName(bank.spec.name));
        }
        self.append_and_apply(vec![Record::BankChanged { bank }])?;
        self.live
            .publish(self.state.seq(), Some(self.state.banks.clone()), &[], &[])?;
        Ok(())
    }

    /// Records who/what is adding entries; returns the number to put on each [`NewEntry`].
    pub fn add_provenance(&mut self, provenance: Provenance) -> Result<u32, StoreError> {
        let index = self.state.provenances.len() as u32;
        self.append_and_apply(vec![Record::ProvenanceAdded { index, provenance }])?;
        Ok(index)
    }

    /// Opens a transaction: the changes until [`Self::commit_transaction`] become durable
    /// together. If the process dies before the commit, reopening shows none of them. After a
    /// failed change inside a transaction, drop the store (reopening discards the transaction).
    pub fn begin_transaction(&mut self) -> Result<u64, StoreError> {
        if let Some(open) = self.transaction {
            return Err(StoreError::Transaction(format!(
                "transaction {open} is still open"
            )));
        }
        let transaction = self.journal.last_seq() + 1;
        self.append_and_apply(vec![Record::TransactionBegun { transaction }])?;
        self.transaction = Some(transaction);
        Ok(transaction)
    }

    /// Makes the open transaction's changes count (durably).
    pub fn commit_transaction(&mut self) -> Result<(), StoreError> {
        let transaction = self
            .transaction
            .ok_or_else(|| StoreError::Transaction("no transaction is open".into()))?;
        self.append_and_apply(vec![Record::TransactionCommitted { transaction }])?;
        self.transaction = None;
        Ok(())
    }

    /// Adds entries and publishes them to the live index.
    pub fn add_entries(&mut self, entries: &[NewEntry]) -> Result<AddOutcome, StoreError> {
        let outcome = self.append_entries(entries)?;
        self.publish()?;
        Ok(outcome)
    }

    /// Adds entries durably without publishing them yet: for bulk imports, which call
    /// [`Self::publish`] or [`Self::write_snapshot`] once at the end.
    pub fn append_entries(&mut self, entries: &[NewEntry]) -> Result<AddOutcome, StoreError> {
        let mut outcome = AddOutcome::default();
        let mut in_batch: HashMap<(BankId, Signal), u64> = HashMap::new();
        let mut batch_duplicates = Vec::new();
        let mut records = Vec::with_capacity(entries.len());
        let mut lookup = DuplicateLookup::new(&self.live);
        for (position, new) in entries.iter().enumerate() {
            if self.state.bank(new.bank).is_none() {
                return Err(StoreError::NoSuchBank(new.bank.to_string()));
            }
            if let Some(label) = &new.classification {
                check_entry_classification(label)
                    .map_err(|source| StoreError::EntryClassification { position, source })?;
            }
            if self.state.provenance(new.provenance).is_none() {
                return Err(StoreError::Corrupt(format!(
                    "no provenance {}",
                    new.provenance
                )));
            }
            if let Some(existing) = self.find_with(&mut lookup, new.bank, &new.signal) {
                outcome.duplicates.push((position, existing));
                continue;
            }
            if let Some(&earlier) = in_batch.get(&(new.bank, new.signal)) {
                batch_duplicates.push((position, earlier));
                continue;
            }
            in_batch.insert((new.bank, new.signal), records.len() as u64);
            records.push(Record::EntryAdded {
                bank: new.bank,
                signal_type: new.signal.signal_type(),
                value: new.signal.to_hex(),
                classification: new.classification.clone(),
                provenance: new.provenance,
                line: new.line,
                metadata: new.metadata.clone(),
            });
        }
        let count = records.len() as u64;
        let first = self.append_and_apply(records)?;
        outcome.added = (first..first + count).collect();
        for (&(bank, signal), &index) in &in_batch {
            self.unpublished.insert(bank, &signal, first + index);
        }
        // A value twice in one batch: the id of its first copy is known only now.
        outcome.duplicates.extend(
            batch_duplicates
                .into_iter()
                .map(|(position, index)| (position, first + index)),
        );
        outcome.duplicates.sort_unstable();
        if self.pending_overflow || self.pending.len() + outcome.added.len() >= MERGE_AT {
            // Publishing will rebuild the base from the state: no need to keep copies.
            self.pending_overflow = true;
            self.pending.clear();
        } else {
            let added = outcome.added.iter().filter_map(|&id| self.state.entry(id));
            self.pending.extend(added);
        }
        Ok(outcome)
    }

    /// The lowest-numbered enabled entry holding `signal` in `bank`: a new entry with that
    /// value would be a duplicate. Disabled entries do not count (the value can be added back,
    /// as a new entry with its own provenance). Looked up in the live index and among the
    /// entries appended since it was last published, so no entry is read into memory for it.
    pub fn find_enabled(&self, bank: BankId, signal: &Signal) -> Option<EntryId> {
        let mut lookup = DuplicateLookup::new(&self.live);
        self.find_with(&mut lookup, bank, signal)
    }

    fn find_with(
        &self,
        lookup: &mut DuplicateLookup,
        bank: BankId,
        signal: &Signal,
    ) -> Option<EntryId> {
        let counts = |id: &EntryId| !self.pending_disabled.contains(id);
        let unpublished = self.unpublished.find(bank, signal, &|id| {
            self.state
                .entry(id)
                .filter(|e| !e.disabled && counts(&e.id))
                .map(|e| (e.bank, e.signal))
        });
        unpublished.or_else(|| {
            lookup
                .generation
                .find_enabled_with(bank, signal, &mut lookup.scratch, &mut lookup.raw)
                .filter(counts)
        })
    }

    /// Disables an entry (it stays in the bank for the record, but no longer matches).
    pub fn disable_entry(&mut self, entry: EntryId, provenance: u32) -> Result<(), StoreError> {
        if self.state.entry(entry).is_none() {
            return Err(StoreError::NoSuchEntry(entry));
        }
        self.append_and_apply(vec![Record::EntryDisabled { entry, provenance }])?;
        self.pending_disabled.push(entry);
        self.publish()
    }

    /// Makes appended changes visible to queries.
    pub fn publish(&mut self) -> Result<(), StoreError> {
        if self.pending_overflow || self.pending.len() + self.pending_disabled.len() >= MERGE_AT {
            // Cheaper to rebuild the base once than to grow a brute-force delta this large.
            let base = build_base(&self.state, self.params)?;
            self.live
                .install_base(self.state.seq(), self.state.banks.clone(), base);
        } else {
            self.live.publish(
                self.state.seq(),
                Some(self.state.banks.clone()),
                &self.pending,
                &self.pending_disabled,
            )?;
            // Many small changes (review decisions, API appends) add up: once the delta, which
            // is scanned by brute force and copied by every publish, reaches MERGE_AT it is
            // folded into a new base on a thread of its own while searches go on. A merge that
            // fails leaves the delta as it was (still exact) and is tried again next time.
            drop(self.live.merge_in_background());
        }
        self.pending.clear();
        self.pending_disabled.clear();
        self.pending_overflow = false;
        self.unpublished = UnpublishedValues::default();
        Ok(())
    }

    /// Writes a snapshot of everything so far (rebuilding the base index) and publishes it.
    pub fn write_snapshot(&mut self) -> Result<(), StoreError> {
        if let Some(open) = self.transaction {
            // A snapshot would make uncommitted changes permanent.
            return Err(StoreError::Transaction(format!(
                "transaction {open} is still open"
            )));
        }
        let base = build_base(&self.state, self.params)?;
        let stored = snapshot::write_banks(&self.dir.join(SNAPSHOT_FILE), &self.state, &base)?;
        self.state.use_snapshot(stored);
        self.snapshot_seq = self.state.seq();
        self.journal.covered_up_to(self.snapshot_seq)?;
        self.live
            .install_base(self.state.seq(), self.state.banks.clone(), base);
        self.pending.clear();
        self.pending_disabled.clear();
        self.pending_overflow = false;
        self.unpublished = UnpublishedValues::default();
        Ok(())
    }

    /// Journal records not yet in the snapshot.
    pub fn records_since_snapshot(&self) -> u64 {
        self.state.seq() - self.snapshot_seq
    }

    fn append_and_apply(&mut self, mut records: Vec<Record>) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(self.journal.last_seq() + 1);
        }
        let wrapped = records.len() > 1 && self.transaction.is_none();
        if wrapped {
            // Several records outside a transaction: frame them as one, so a crash mid-write
            // leaves all or none of them.
            let transaction = self.journal.last_seq() + 1;
            records.insert(0, Record::TransactionBegun { transaction });
            records.push(Record::TransactionCommitted { transaction });
        }
        let first = self.journal.append(&records)?;
        let first_change = first + u64::from(wrapped);
        for (offset, record) in records.into_iter().enumerate() {
            self.state.apply(first + offset as u64, record)?;
        }
        Ok(first_change)
    }
}

/// Applies the journal's records after `state`'s sequence number to it, noting the entries
/// added (by id) and disabled, which the live index has yet to see.
fn replay_into(
    journal: &mut impl Journal,
    state: &mut BankState,
    added: &mut Vec<EntryId>,
    disabled: &mut Vec<EntryId>,
) -> Result<(), StoreError> {
    let after = state.seq();
    journal.replay(after, &mut |seq, record| {
        match &record {
            Record::EntryDisabled { entry, .. } => disabled.push(*entry),
            Record::EntryAdded { .. } => added.push(seq),
            _ => {}
        }
        state.apply(seq, record)
    })
}
fn build_base(state: &BankState, params: IndexParams) -> Result<Segment, StoreError> {
    let mut builder = SegmentBuilder::default();
    state.for_each_entry(&mut |entry| {
        if !entry.disabled {
            builder.push(segment_entry(entry));
        }
        Ok(())
    })?;
    Ok(builder.finish(params)?)
}

/// The published generation and buffers for looking up many values in a row.
struct DuplicateLookup {
    generation: Arc<Generation>,
    scratch: SearchScratch,
    raw: Vec<SegmentHit>,
}

impl DuplicateLookup {
    fn new(live: &LiveIndex) -> Self {
        Self {
            generation: live.load(),
            scratch: SearchScratch::default(),
            raw: Vec::new(),
        }
    }
}

/// (bank, value) → entry id of the entries appended but not yet published, in ~20 bytes per
/// entry: a 64-bit fingerprint maps to an id whose entry is then compared for real; the rare
/// fingerprint collisions go to `overflow`.
#[derive(Debug, Default)]
struct UnpublishedValues {
    primary: HashMap<u64, EntryId>,
    overflow: HashMap<(BankId, Signal), EntryId>,
}

impl UnpublishedValues {
    fn insert(&mut self, bank: BankId, signal: &Signal, id: EntryId) {
        match self.primary.entry(fingerprint(bank, signal)) {
            Vacant(slot) => {
                slot.insert(id);
            }
            // A value already present is a duplicate and never appended, so this is another
            // value with the same fingerprint.
            Occupied(_) => {
                self.overflow.entry((bank, *signal)).or_insert(id);
            }
        }
    }

    /// The id holding (bank, signal); `value_of` gives an id's (bank, value) if it still counts.
    fn find(
        &self,
        bank: BankId,
        signal: &Signal,
        value_of: &dyn Fn(EntryId) -> Option<(BankId, Signal)>,
    ) -> Option<EntryId> {
        let id = *self.primary.get(&fingerprint(bank, signal))?;
        if value_of(id) == Some((bank, *signal)) {
            return Some(id);
        }
        let id = *self.overflow.get(&(bank, *signal))?;
        (value_of(id) == Some((bank, *signal))).then_some(id)
    }
}

fn fingerprint(bank: BankId, signal: &Signal) -> u64 {
    let mut hasher = DefaultHasher::new();
    bank.hash(&mut hasher);
    signal.hash(&mut hasher);
    hasher.finish()
}
