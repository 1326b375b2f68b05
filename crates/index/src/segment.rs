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

/// Entry refs by position, stored compactly: a block of [`REF_BLOCK`] consecutive refs whose
/// ids count up by one in one bank with one label (what an imported list gives) is kept as its
/// first ref alone; other blocks are kept whole. So an imported list costs ~0.1 B per entry
/// instead of 16, and the worst case (every block mixed) 16.1 B.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RefColumn {
    /// Per block: its first ref, and where its refs start in `mixed` (`RUN_BLOCK` for a run).
    blocks: Vec<(EntryRef, u32)>,
    mixed: Vec<EntryRef>,
    /// The last block while it is being filled.
    open: Vec<EntryRef>,
    len: usize,
}

const REF_BLOCK: usize = 256;
const RUN_BLOCK: u32 = u32::MAX;

impl RefColumn {
    pub(crate) fn push(&mut self, entry: EntryRef) {
        self.open.push(entry);
        self.len += 1;
        if self.open.len() == REF_BLOCK {
            self.close_block();
        }
    }

    fn close_block(&mut self) {
        let Some(&first) = self.open.first() else {
            return;
        };
        let is_run = self.open.len() == REF_BLOCK
            && self.open.iter().enumerate().all(|(offset, r)| {
                r.bank == first.bank
                    && r.label == first.label
                    && r.id == first.id.wrapping_add(offset as u64)
            });
        if is_run {
            self.blocks.push((first, RUN_BLOCK));
        } else {
            self.blocks.push((first, self.mixed.len() as u32));
            self.mixed.extend_from_slice(&self.open);
        }
        self.open.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, position: usize) -> Option<EntryRef> {
        let (block, offset) = (position / REF_BLOCK, position % REF_BLOCK);
        match self.blocks.get(block) {
            Some(&(first, RUN_BLOCK)) => Some(EntryRef {
                id: first.id.wrapping_add(offset as u64),
                ..first
            }),
            Some(&(_, start)) => self.mixed.get(start as usize + offset).copied(),
            None if block == self.blocks.len() => self.open.get(offset).copied(),
            None => None,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = EntryRef> + '_ {
        (0..self.len).filter_map(|position| self.get(position))
    }
}

/// Collects a segment's entries one at a time (from wherever they are decoded), then builds.
#[derive(Debug, Default)]
pub(crate) struct SegmentBuilder {
    segment: Segment,
    label_ids: HashMap<String, u32>,
    codes: Vec<[u64; 4]>,
}

impl SegmentBuilder {
    pub(crate) fn push(&mut self, entry: SegmentEntry<'_>) {
        let label = match entry.classification {
            None => BANK_LABEL,
            Some(text) => match self.label_ids.get(text) {
                Some(&label) => label,
                None => {
                    let label = self.segment.labels.len() as u32;
                    self.segment.labels.push(text.to_string());
                    self.label_ids.insert(text.to_string(), label);
                    label
                }
            },
        };
        let entry_ref = EntryRef {
            id: entry.id,
            bank: entry.bank,
            label,
        };
        match entry.signal {
            Signal::Pdq(hash) => {
                self.codes.push(hash.to_words());
                self.segment.pdq_refs.push(entry_ref);
            }
            digest => self.segment.digests.push((digest, entry_ref)),
        }
    }

    pub(crate) fn finish(mut self, params: IndexParams) -> Result<Segment, PdqIndexError> {
        self.segment
            .digests
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
        let index = PdqIndex::build(self.codes, params)?;
        self.segment.with_pdq_index(index)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Segment {
    pub(crate) pdq: Option<PdqIndex>,
    pub(crate) pdq_refs: RefColumn,
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
        let mut builder = SegmentBuilder::default();
        for entry in entries {
            builder.push(entry);
        }
        builder.finish(params)
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
        let digests = self.digests.iter().map(|(signal, r)| (*signal, *r));
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
                    entry,
                    value: Signal::Pdq(PdqHash::from_words(*code)),
                    distance: hit.distance,
                });
            }
        }
    }
}

impl Extend<EntryRef> for RefColumn {
    fn extend<T: IntoIterator<Item = EntryRef>>(&mut self, refs: T) {
        for entry in refs {
            self.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_column_gives_back_every_ref_whether_blocks_are_runs_or_mixed() {
        let mut refs = Vec::new();
        // A run of 600 (two whole run blocks), a mixed stretch, another run, a partial tail.
        refs.extend((0..600).map(|i| EntryRef {
            id: 10 + i,
            bank: 1,
            label: BANK_LABEL,
        }));
        refs.extend((0..300).map(|i| EntryRef {
            id: 1_000 + 2 * i,
            bank: (i % 3) as u32,
            label: 0,
        }));
        refs.extend((0..700).map(|i| EntryRef {
            id: 5_000 + i,
            bank: 2,
            label: 4,
        }));
        refs.push(EntryRef {
            id: 9_999,
            bank: 0,
            label: 1,
        });
        let mut column = RefColumn::default();
        column.extend(refs.iter().copied());
        assert_eq!(column.len(), refs.len());
        assert_eq!(column.iter().collect::<Vec<_>>(), refs);
        assert_eq!(column.get(refs.len()), None);
        assert!(column.blocks.iter().filter(|b| b.1 == RUN_BLOCK).count() >= 3);
        assert!(column.mixed.len() < refs.len() / 2);
    }
}
