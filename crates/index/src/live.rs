//! The published matching index: readers never wait for writers.
//!
//! Concurrency design: an immutable [`Generation`] is published through an `ArcSwap`. A query
//! loads the current generation (a few atomic operations, no lock) and searches it for as long
//! as it likes. A generation is a large *base* segment (multi-index PDQ, sorted digests), a
//! small *delta* segment holding entries added since the base was built (scanned by brute
//! force), the set of entries disabled since then, and the bank settings. A change builds a new
//! generation (copying only the delta) and swaps it in, so it is visible to the next query at
//! once. When the delta grows past [`MERGE_AT`] entries, a background thread folds it into a
//! new base and swaps that in; writers serialise on a mutex that readers never touch.
//!
//! This module must not do I/O: persistence is the store's job.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use aranea_hash::PdqHash;
use arc_swap::ArcSwap;

use crate::bank::{Bank, BankId, BankKind, Entry, EntryId};
use crate::pdq_index::{IndexParams, PdqIndexError, SearchScratch};
use crate::segment::{BANK_LABEL, Segment, SegmentEntry, SegmentHit};
use crate::signal::Signal;

/// Delta size at which a background merge into a new base starts.
pub const MERGE_AT: usize = 20_000;

/// One matching entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub bank: BankId,
    pub bank_name: String,
    pub bank_kind: BankKind,
    pub entry: EntryId,
    pub value: Signal,
    pub classification: String,
    /// Hamming distance for PDQ (of the closest query variant); 0 for exact digests.
    pub distance: u32,
}

/// The answer to one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchResult {
    /// Hits to act on, nearest first. Empty when an allow-list bank matched.
    pub hits: Vec<Hit>,
    /// Allow-list hits; when not empty, the ordinary hits were moved to `suppressed`.
    pub allowed_by: Vec<Hit>,
    /// Ordinary hits suppressed by an allow-list hit, nearest first.
    pub suppressed: Vec<Hit>,
}

/// Which ordinary banks to report hits from. Enabled allow-list banks always apply.
#[derive(Debug, Clone, Default)]
pub enum BankFilter {
    #[default]
    All,
    Only(Vec<BankId>),
}

impl BankFilter {
    pub(crate) fn admits(&self, bank: &Bank) -> bool {
        bank.spec.enabled
            && (bank.spec.kind == BankKind::AllowList
                || match self {
                    Self::All => true,
                    Self::Only(ids) => ids.contains(&bank.id),
                })
    }
}

/// An immutable view of every bank at one sequence number.
#[derive(Debug)]
pub struct Generation {
    seq: u64,
    banks: Arc<Vec<Bank>>,
    base: Arc<Segment>,
    delta_entries: Arc<Vec<Entry>>,
    delta: Arc<Segment>,
    disabled: Arc<HashSet<EntryId>>,
}

impl Generation {
    /// Sequence number of the last change this generation includes.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn banks(&self) -> &[Bank] {
        &self.banks
    }

    /// Entries in the base segment and the delta (disabled ones excluded from neither).
    pub fn segment_sizes(&self) -> (usize, usize) {
        (self.base.len(), self.delta.len())
    }

    /// Matches one signal.
    pub fn match_signal(&self, signal: &Signal, filter: &BankFilter) -> MatchResult {
        match signal {
            Signal::Pdq(hash) => self.match_pdq_variants(std::slice::from_ref(hash), filter),
            digest => {
                let mut raw = Vec::new();
                for segment in [&self.base, &self.delta] {
                    segment.lookup_digest(digest, &mut raw);
                }
                self.finish(&raw, filter)
            }
        }
    }

    /// Matches a PDQ hash given as several variants (e.g. its 8 rotations and flips): an
    /// entry matches if any variant is within its bank's threshold; its distance is the least.
    pub fn match_pdq_variants(&self, variants: &[PdqHash], filter: &BankFilter) -> MatchResult {
        let Some(radius) = self.radius(filter) else {
            return MatchResult::default();
        };
        let mut raw = Vec::new();
        with_search_scratch(|scratch| {
            for variant in variants {
                for segment in [&self.base, &self.delta] {
                    segment.search_pdq(variant, radius, scratch, &mut raw);
                }
            }
        });
        self.finish(&raw, filter)
    }

    /// Matches one piece of media known by several signals (its digests and PDQ variants):
    /// one result, each entry once, allow-lists applied across all of them.
    pub fn match_media(
        &self,
        digests: &[Signal],
        pdq_variants: &[PdqHash],
        filter: &BankFilter,
    ) -> MatchResult {
        let mut raw = Vec::new();
        for digest in digests.iter().filter(|s| !matches!(s, Signal::Pdq(_))) {
            for segment in [&self.base, &self.delta] {
                segment.lookup_digest(digest, &mut raw);
            }
        }
        if let Some(radius) = self.radius(filter) {
            with_search_scratch(|scratch| {
                for variant in pdq_variants {
                    for segment in [&self.base, &self.delta] {
                        segment.search_pdq(variant, radius, scratch, &mut raw);
                    }
                }
            });
        }
        self.finish(&raw, filter)
    }

    /// Matches many signals; PDQ queries are searched together (faster than one by one).
    pub fn match_batch(&self, signals: &[Signal], filter: &BankFilter) -> Vec<MatchResult> {
        let pdq_positions: Vec<usize> = (0..signals.len())
            .filter(|&i| matches!(signals.get(i), Some(Signal::Pdq(_))))
            .collect();
        let codes: Vec<[u64; 4]> = pdq_positions
            .iter()
            .filter_map(|&i| match signals.get(i) {
                Some(Signal::Pdq(hash)) => Some(hash.to_words()),
                _ => None,
            })
            .collect();
        let mut pdq_raw = vec![Vec::new(); codes.len()];
        if let Some(radius) = self.radius(filter) {
            for segment in [&self.base, &self.delta] {
                segment.search_pdq_batch(&codes, radius, &mut pdq_raw);
            }
        }
        let mut results: Vec<Option<MatchResult>> = vec![None; signals.len()];
        for (position, raw) in pdq_positions.iter().zip(&pdq_raw) {
            if let Some(slot) = results.get_mut(*position) {
                *slot = Some(self.finish(raw, filter));
            }
        }
        results
            .into_iter()
            .zip(signals)
            .map(|(done, signal)| done.unwrap_or_else(|| self.match_signal(signal, filter)))
            .collect()
    }

    /// The lowest-numbered enabled entry holding exactly `signal` in `bank`, whether the bank
    /// is enabled or not: what makes a value added to the bank again a duplicate. A disabled
    /// entry does not count, so a value can be added back after its entry was disabled.
    pub fn find_enabled(&self, bank: BankId, signal: &Signal) -> Option<EntryId> {
        self.find_enabled_with(bank, signal, &mut SearchScratch::default(), &mut Vec::new())
    }

    /// [`Self::find_enabled`] with buffers kept between calls (an import asks per line).
    pub(crate) fn find_enabled_with(
        &self,
        bank: BankId,
        signal: &Signal,
        scratch: &mut SearchScratch,
        raw: &mut Vec<SegmentHit>,
    ) -> Option<EntryId> {
        raw.clear();
        for segment in [&self.base, &self.delta] {
            match signal {
                Signal::Pdq(hash) => segment.search_pdq(hash, 0, scratch, raw),
                digest => segment.lookup_digest(digest, raw),
            }
        }
        raw.iter()
            .filter(|h| h.entry.bank == bank && h.value == *signal)
            .map(|h| h.entry.id)
            .filter(|id| !self.disabled.contains(id))
            .min()
    }

    /// The largest threshold among banks that can report: the one radius to search with.
    fn radius(&self, filter: &BankFilter) -> Option<u32> {
        self.banks
            .iter()
            .filter(|b| filter.admits(b))
            .map(|b| b.spec.pdq_threshold)
            .max()
    }

    fn finish(&self, raw: &[SegmentHit], filter: &BankFilter) -> MatchResult {
        let mut ordinary: Vec<Hit> = Vec::new();
        let mut allowed: Vec<Hit> = Vec::new();
        let mut seen: HashSet<EntryId> = HashSet::new();
        let mut sorted: Vec<&SegmentHit> = raw.iter().collect();
        // Nearest first, so that for variants only the closest distance of an entry is kept.
        sorted.sort_by_key(|h| (h.distance, h.entry.id));
        for hit in sorted {
            if self.disabled.contains(&hit.entry.id) || !seen.insert(hit.entry.id) {
                continue;
            }
            let Some(bank) = self.banks.get(hit.entry.bank as usize) else {
                continue;
            };
            let within = matches!(hit.value, Signal::Pdq(_)).then_some(bank.spec.pdq_threshold);
            if !filter.admits(bank) || within.is_some_and(|t| hit.distance > t) {
                continue;
            }
            let classification = self.classification(hit, bank);
            let out = Hit {
                bank: bank.id,
                bank_name: bank.spec.name.clone(),
                bank_kind: bank.spec.kind,
                entry: hit.entry.id,
                value: hit.value,
                classification,
                distance: hit.distance,
            };
            match bank.spec.kind {
                BankKind::AllowList => allowed.push(out),
                BankKind::Ordinary => ordinary.push(out),
            }
        }
        if allowed.is_empty() {
            MatchResult {
                hits: ordinary,
                ..MatchResult::default()
            }
        } else {
            MatchResult {
                hits: Vec::new(),
                allowed_by: allowed,
                suppressed: ordinary,
            }
        }
    }

    fn classification(&self, hit: &SegmentHit, bank: &Bank) -> String {
        if hit.entry.label == BANK_LABEL {
            return bank.spec.classification.clone();
        }
        // The label lives in whichever segment holds the entry.
        let in_delta = self
            .delta_entries
            .binary_search_by_key(&hit.entry.id, |e| e.id)
            .is_ok();
        let segment = if in_delta { &self.delta } else { &self.base };
        segment
            .label(hit.entry.label)
            .unwrap_or(&bank.spec.classification)
            .to_string()
    }
}

/// The current generation plus the machinery to change it.
#[derive(Debug)]
pub struct LiveIndex {
    current: ArcSwap<Generation>,
    writer: Mutex<()>,
    merging: Mutex<()>,
    params: IndexParams,
}

impl LiveIndex {
    /// Starts from a built base segment covering everything up to `seq`.
    pub(crate) fn new(seq: u64, banks: Vec<Bank>, base: Segment, params: IndexParams) -> Self {
        let generation = Generation {
            seq,
            banks: Arc::new(banks),
            base: Arc::new(base),
            delta_entries: Arc::new(Vec::new()),
            delta: Arc::new(Segment::default()),
            disabled: Arc::new(HashSet::new()),
        };
        Self {
            current: ArcSwap::from_pointee(generation),
            writer: Mutex::new(()),
            merging: Mutex::new(()),
            params,
        }
    }

    /// The current generation: search it without holding any lock.
    pub fn load(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Publishes changes up to `seq`: new bank settings, added entries, disabled entries.
    pub(crate) fn publish(
        &self,
        seq: u64,
        banks: Option<Vec<Bank>>,
        added: &[Entry],
        disabled: &[EntryId],
    ) -> Result<(), PdqIndexError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load_full();
        let mut delta_entries = (*current.delta_entries).clone();
        delta_entries.extend(added.iter().filter(|e| !e.disabled).cloned());
        let delta = build_delta(&delta_entries)?;
        let mut disabled_set = (*current.disabled).clone();
        disabled_set.extend(disabled.iter().copied());
        self.current.store(Arc::new(Generation {
            seq,
            banks: banks.map_or_else(|| current.banks.clone(), Arc::new),
            base: current.base.clone(),
            delta_entries: Arc::new(delta_entries),
            delta: Arc::new(delta),
            disabled: Arc::new(disabled_set),
        }));
        Ok(())
    }

    /// Replaces everything with a base built over the whole state at `seq` (after a bulk
    /// change or a snapshot). Waits for a running merge so that it cannot overwrite this.
    pub(crate) fn install_base(&self, seq: u64, banks: Vec<Bank>, base: Segment) {
        let _merging = self.merging.lock().unwrap_or_else(PoisonError::into_inner);
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.current.store(Arc::new(Generation {
            seq,
            banks: Arc::new(banks),
            base: Arc::new(base),
            delta_entries: Arc::new(Vec::new()),
            delta: Arc::new(Segment::default()),
            disabled: Arc::new(HashSet::new()),
        }));
    }

    /// Answers from now on with `other`'s current generation. For a holder that only reads
    /// (a crawler) whose bank directory another process changed: the directory is reopened
    /// into a new index and adopted here, so everyone holding this `Arc` sees the change.
    /// Entry ids are the bank journal's, so they mean the same in both indexes.
    pub fn adopt(&self, other: &LiveIndex) {
        let _merging = self.merging.lock().unwrap_or_else(PoisonError::into_inner);
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.current.store(other.load());
    }

    /// Whether the delta is big enough that a merge would pay off.
    pub fn wants_merge(&self) -> bool {
        let current = self.current.load();
        current.delta_entries.len() >= MERGE_AT || current.disabled.len() >= MERGE_AT
    }

    /// Folds the delta and the disabled set into a new base segment. Readers keep searching
    /// the old generation meanwhile; writers wait only for the final swap.
    pub fn merge(&self) -> Result<(), PdqIndexError> {
        let _merging = self.merging.lock().unwrap_or_else(PoisonError::into_inner);
        let from = self.current.load_full();
        let entries = from
            .base
            .entries()
            .chain(from.delta.entries())
            .filter(|e| !from.disabled.contains(&e.id));
        let base = Arc::new(Segment::build(entries, self.params)?);
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load_full();
        // Changes published while the base was being built stay in the delta.
        let newer: Vec<Entry> = current
            .delta_entries
            .get(from.delta_entries.len()..)
            .unwrap_or(&[])
            .to_vec();
        let delta = build_delta(&newer)?;
        let disabled: HashSet<EntryId> = current
            .disabled
            .difference(&from.disabled)
            .copied()
            .collect();
        self.current.store(Arc::new(Generation {
            seq: current.seq,
            banks: current.banks.clone(),
            base,
            delta_entries: Arc::new(newer),
            delta: Arc::new(delta),
            disabled: Arc::new(disabled),
        }));
        Ok(())
    }

    /// Starts a merge on a background thread if the delta wants one and none is running.
    pub fn merge_in_background(
        self: &Arc<Self>,
    ) -> Option<std::thread::JoinHandle<Result<(), PdqIndexError>>> {
        if !self.wants_merge() || self.merging.try_lock().is_err() {
            return None;
        }
        let live = Arc::clone(self);
        Some(std::thread::spawn(move || live.merge()))
    }
}

fn build_delta(entries: &[Entry]) -> Result<Segment, PdqIndexError> {
    let scan_only = IndexParams {
        substrings: Some(0),
        multi_index_only: false,
        ..IndexParams::default()
    };
    Segment::build(entries.iter().map(segment_entry), scan_only)
}

pub(crate) fn segment_entry(entry: &Entry) -> SegmentEntry<'_> {
    SegmentEntry {
        id: entry.id,
        bank: entry.bank,
        signal: entry.signal,
        classification: entry.classification.as_deref(),
    }
}
thread_local! {
    // A query's probe and candidate lists reach a few hundred KB at 10M: allocated afresh per
    // request they are mapped and faulted in each time (above malloc's mmap threshold).
    static SEARCH_SCRATCH: std::cell::RefCell<SearchScratch> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's single-query buffers.
fn with_search_scratch<T>(f: impl FnOnce(&mut SearchScratch) -> T) -> T {
    SEARCH_SCRATCH.with(|scratch| f(&mut scratch.borrow_mut()))
}
