//! A segment: an immutable, searchable set of enabled entries (PDQ index + exact-digest table).
//!
//! Segments are built from entries wherever they come from (bank state, a snapshot, an older
//! segment being merged) and never change afterwards, so any number of threads can search one
//! without locks. Bank settings (enabled, threshold, kind) are not baked in: the caller filters
//! hits with the settings current at query time.

use std::collections::HashMap;

use aranea_hash::PdqHash;

use crate::bank::{BankId, EntryId};
use crate::pdq_index::{CodeHit, IndexParams, PdqIndex, PdqIndexError, SearchScratch};
use crate::signal::Signal;

/// Label index meaning "the bank's classification".
pub(crate) const BANK_LABEL: u32 = u32::MAX;

/// What a segment keeps per entry besides the value (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryRef {
    pub(crate) id: EntryId,
    pub(crate) bank: BankId,
    /// Index into the segment's labels, or `BANK_LABEL`.
    pub(crate) label: u32,
}

/// One entry as a segment is built from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentEntry<'a> {
    pub(crate) id: EntryId,
    pub(crate) bank: BankId,
    pub(crate) signal: Signal,
    pub(crate) classification: Option<&'a str>,
}

/// A raw hit inside one segment, before bank settings are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHit {
    pub(crate) entry: EntryRef,
    pub(crate) value: Signal,
    pub(crate) distance: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Segment {
    pub(crate) pdq: Option<PdqIndex>,
    pub(crate) pdq_refs: Vec<EntryRef>,
    /// Exact digests sorted by value, for binary search.
    pub(crate) digests: Vec<(Signal, EntryRef)>,
    pub(crate) labels: Vec<String>,
}

impl Segment {
    /// Builds over `entries` (callers pass enabled entries only), indexing PDQ with `params`.
    pub(crate) fn build<'a>(
        entries: impl Iterator<Item = SegmentEntry<'a>>,
        params: IndexParams,
    ) -> Result<Self, PdqIndexError> {
        let (segment, codes) = Self::collect(entries);
        segment.with_pdq_index(PdqIndex::build(codes, params)?)
    }

    /// Collects refs and digests; returns the PDQ codes in ref order for the caller to index.
    pub(crate) fn collect<'a>(
        entries: impl Iterator<Item = SegmentEntry<'a>>,
    ) -> (Self, Vec<[u64; 4]>) {
        let mut segment = Segment::default();
        let mut label_ids: HashMap<&str, u32> = HashMap::new();
        let mut codes = Vec::new();
        for entry in entries {
            let label = match entry.classification {
                None => BANK_LABEL,
                Some(text) => *label_ids.entry(text).or_insert_with(|| {
                    segment.labels.push(text.to_string());
                    (segment.labels.len() - 1) as u32
                }),
            };
            let entry_ref = EntryRef {
                id: entry.id,
                bank: entry.bank,
                label,
            };
            match entry.signal {
                Signal::Pdq(hash) => {
                    codes.push(hash.to_words());
                    segment.pdq_refs.push(entry_ref);
                }
                digest => segment.digests.push((digest, entry_ref)),
            }
        }
        segment
            .digests
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
        (segment, codes)
    }

    /// Attaches an index built (or loaded) over the codes `collect` returned.
    pub(crate) fn with_pdq_index(mut self, index: PdqIndex) -> Result<Self, PdqIndexError> {
        if index.len() != self.pdq_refs.len() {
            return Err(PdqIndexError::Mismatch {
                codes: index.len(),
                entries: self.pdq_refs.len(),
            });
        }
        self.pdq = Some(index);
        Ok(self)
    }

    pub(crate) fn label(&self, label: u32) -> Option<&str> {
        self.labels.get(label as usize).map(String::as_str)
    }

    /// The segment's entries, for merging into a new segment.
    pub(crate) fn entries(&self) -> impl Iterator<Item = SegmentEntry<'_>> {
        let pdq = self.pdq_refs.iter().enumerate().filter_map(|(id, r)| {
            let code = self.pdq.as_ref()?.code(id as u32)?;
            Some((Signal::Pdq(PdqHash::from_words(*code)), r))
        });
        let digests = self.digests.iter().map(|(signal, r)| (*signal, r));
        pdq.chain(digests).map(|(signal, r)| SegmentEntry {
            id: r.id,
            bank: r.bank,
            signal,
            classification: if r.label == BANK_LABEL {
                None
            } else {
                self.label(r.label)
            },
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.pdq_refs.len() + self.digests.len()
    }

    /// Entries with exactly this digest.
    pub(crate) fn lookup_digest(&self, signal: &Signal, out: &mut Vec<SegmentHit>) {
        let start = self.digests.partition_point(|(value, _)| value < signal);
        for (value, entry) in self.digests.get(start..).unwrap_or(&[]) {
            if value != signal {
                break;
            }
            out.push(SegmentHit {
                entry: *entry,
                value: *value,
                distance: 0,
            });
        }
    }

    /// PDQ entries within `radius`.
    pub(crate) fn search_pdq(
        &self,
        query: &PdqHash,
        radius: u32,
        scratch: &mut SearchScratch,
        out: &mut Vec<SegmentHit>,
    ) {
        let Some(index) = &self.pdq else { return };
        let mut hits = Vec::new();
        index.search(&query.to_words(), radius, scratch, &mut hits);
        self.resolve(&hits, out);
    }

    /// PDQ hits for many queries at once (`out[i]` for `queries[i]`).
    pub(crate) fn search_pdq_batch(
        &self,
        queries: &[[u64; 4]],
        radius: u32,
        out: &mut [Vec<SegmentHit>],
    ) {
        let Some(index) = &self.pdq else { return };
        let mut hits = Vec::new();
        index.search_batch(queries, radius, &mut hits);
        for (query_hits, resolved) in hits.iter().zip(out.iter_mut()) {
            self.resolve(query_hits, resolved);
        }
    }

    fn resolve(&self, hits: &[CodeHit], out: &mut Vec<SegmentHit>) {
        let Some(index) = &self.pdq else { return };
        for hit in hits {
            if let (Some(entry), Some(code)) =
                (self.pdq_refs.get(hit.id as usize), index.code(hit.id))
            {
                out.push(SegmentHit {
                    entry: *entry,
                    value: Signal::Pdq(PdqHash::from_words(*code)),
                    distance: hit.distance,
                });
            }
        }
    }
}
