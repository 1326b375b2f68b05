//! Finding the undecided item a newly queued media is a near-duplicate of: the nearest
//! item PDQ within the configured distance (ties to the oldest item). Items known when an
//! intake starts are searched through the index crate's exact multi-index; items opened by
//! the same intake are scanned until there are enough of them to rebuild the index.
//!
//! Exact either way: every item within the distance is found, never one beyond it.

use aranea_index::pdq_index::{Code, IndexParams, PdqIndex, SearchScratch};
use aranea_store::ReviewItemId;

use crate::error::ReviewError;

/// Items opened during one intake that are scanned before the index is rebuilt with them.
const REBUILD_AT: usize = 1024;

pub(crate) struct NearDuplicates {
    /// Item of each indexed code, by code id.
    items: Vec<ReviewItemId>,
    index: PdqIndex,
    fresh: Vec<(ReviewItemId, Code)>,
    scratch: SearchScratch,
    hits: Vec<aranea_index::CodeHit>,
}

fn code(pdq: &[u8; 32]) -> Code {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(pdq.chunks_exact(8)) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        *word = u64::from_be_bytes(eight);
    }
    words
}

fn distance(a: &Code, b: &Code) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

impl NearDuplicates {
    pub(crate) fn new(items: &[(ReviewItemId, [u8; 32])]) -> Result<Self, ReviewError> {
        let mut near = NearDuplicates {
            items: Vec::new(),
            index: PdqIndex::build(Vec::new(), IndexParams::default())?,
            fresh: items.iter().map(|(id, pdq)| (*id, code(pdq))).collect(),
            scratch: SearchScratch::default(),
            hits: Vec::new(),
        };
        near.rebuild()?;
        Ok(near)
    }

    fn rebuild(&mut self) -> Result<(), ReviewError> {
        let mut codes: Vec<Code> = (0..self.index.len())
            .filter_map(|i| {
                u32::try_from(i)
                    .ok()
                    .and_then(|i| self.index.code(i))
                    .copied()
            })
            .collect();
        for (id, c) in self.fresh.drain(..) {
            self.items.push(id);
            codes.push(c);
        }
        self.index = PdqIndex::build(codes, IndexParams::default())?;
        Ok(())
    }

    /// The nearest item within `radius` of `pdq`, with its distance.
    pub(crate) fn nearest(&mut self, pdq: &[u8; 32], radius: u32) -> Option<(ReviewItemId, u32)> {
        let query = code(pdq);
        self.hits.clear();
        self.index
            .search(&query, radius, &mut self.scratch, &mut self.hits);
        let indexed = self
            .hits
            .iter()
            .filter_map(|h| Some((*self.items.get(h.id as usize)?, h.distance)));
        let fresh = self
            .fresh
            .iter()
            .map(|(id, c)| (*id, distance(&query, c)))
            .filter(|(_, d)| *d <= radius);
        indexed.chain(fresh).min_by_key(|(id, d)| (*d, *id))
    }

    /// Adds an item opened during this intake.
    pub(crate) fn push(&mut self, id: ReviewItemId, pdq: &[u8; 32]) -> Result<(), ReviewError> {
        self.fresh.push((id, code(pdq)));
        if self.fresh.len() >= REBUILD_AT {
            self.rebuild()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdq(seed: u8) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut x = u32::from(seed).wrapping_mul(2_654_435_761).max(1);
        for b in &mut out {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        out
    }

    fn flip(mut p: [u8; 32], bits: usize) -> [u8; 32] {
        for i in 0..bits {
            p[i / 8] ^= 1 << (i % 8);
        }
        p
    }

    /// The same answers as a scan, across a rebuild.
    #[test]
    fn agrees_with_a_scan_before_and_after_rebuilding() {
        let start: Vec<(ReviewItemId, [u8; 32])> = (0..200u8)
            .map(|i| (ReviewItemId(i64::from(i)), pdq(i)))
            .collect();
        let mut near = NearDuplicates::new(&start).unwrap();
        let mut all = start.clone();
        for i in 0..(REBUILD_AT as i64 + 10) {
            let p = flip(pdq((i % 200) as u8), (i % 40) as usize);
            let scan = all
                .iter()
                .map(|(id, q)| (*id, distance(&code(&p), &code(q))))
                .filter(|(_, d)| *d <= 31)
                .min_by_key(|(id, d)| (*d, *id));
            assert_eq!(near.nearest(&p, 31), scan, "query {i}");
            let id = ReviewItemId(1000 + i);
            near.push(id, &p).unwrap();
            all.push((id, p));
        }
        assert!(near.fresh.len() < REBUILD_AT, "rebuilt once");
    }
}
