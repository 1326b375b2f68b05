//! Single-query search as one software pipeline over the probes of every substring table.
//!
//! At 10M codes a query reads thousands of directory slots, bucket cells and candidate codes,
//! each a likely cache miss. Waiting for them one at a time leaves the memory system idle, so
//! the probes of all tables are listed first and then walked with fixed look-ahead: the
//! directory slot of probe `i + DIR_AHEAD` and the cells of probe `i + CELLS_AHEAD` are
//! prefetched while probe `i` is filtered, and candidate codes are prefetched `CODES_AHEAD`
//! ahead of verification. About as many misses are in flight as the core can track, all the
//! time, instead of bursts that overflow it followed by stalls.
//!
//! This module must not change which buckets are probed or with which budget: the refined
//! pigeonhole argument in the parent module is what makes the search exact.

use super::{Code, CodeHit, PdqIndex, SubstringTable, hamming, prefetch, prefetch_u32, substring};

const DIR_AHEAD: usize = 16;
const CELLS_AHEAD: usize = 8;
/// Ring of bucket bounds read but not yet filtered; a power of two above `CELLS_AHEAD`.
const RING: usize = 16;
const CODES_AHEAD: usize = 24;
const _: () = assert!(RING > CELLS_AHEAD && RING.is_power_of_two());

/// One bucket to read: which table, which bucket, and how many of the cells' low substring
/// bits may still differ.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    pub(super) slot: u32,
    pub(super) budget: u32,
    pub(super) bucket: u32,
}

/// Reusable buffers for queries; one per thread avoids allocation on the hot path.
#[derive(Debug, Default)]
pub struct SearchScratch {
    keys: Vec<u32>,
    probes: Vec<Probe>,
    /// (slot << 32 | id) of every cell that passed its probe's filter.
    candidates: Vec<u64>,
}

impl PdqIndex {
    #[inline(always)]
    pub(super) fn probe(
        &self,
        query: &Code,
        radius: u32,
        scratch: &mut SearchScratch,
        out: &mut Vec<CodeHit>,
    ) {
        let radii = super::substring_radii(self.tables.len(), radius);
        scratch.keys.clear();
        scratch.keys.extend(
            self.tables
                .iter()
                .map(|t| substring(query, t.bit_offset, t.bits)),
        );
        scratch.probes.clear();
        for (slot, (table, search_radius)) in self.tables.iter().zip(&radii).enumerate() {
            if let (Some(search_radius), Some(&key)) = (search_radius, scratch.keys.get(slot)) {
                enumerate_buckets(table, slot as u32, key, *search_radius, &mut scratch.probes);
            }
        }
        scratch.candidates.clear();
        self.walk_probes(&scratch.keys, &scratch.probes, &mut scratch.candidates);
        self.verify(
            query,
            radius,
            &scratch.keys,
            &radii,
            &scratch.candidates,
            out,
        );
    }

    /// Filters the cells of every probe into `candidates`, with the look-ahead described above.
    #[inline(always)]
    fn walk_probes(&self, keys: &[u32], probes: &[Probe], candidates: &mut Vec<u64>) {
        let id_bits = self.id_bits();
        let id_mask = (1u32 << id_bits) - 1;
        let table_of = |probe: &Probe| self.tables.get(probe.slot as usize);
        let mut ring = [(0u32, 0u32); RING];
        for step in 0..probes.len() + DIR_AHEAD + CELLS_AHEAD {
            if let Some(probe) = probes.get(step)
                && let Some(table) = table_of(probe)
            {
                prefetch_u32(&table.directory, probe.bucket);
            }
            if let Some(read) = step.checked_sub(DIR_AHEAD)
                && let Some(probe) = probes.get(read)
            {
                let bounds = table_of(probe).and_then(|table| {
                    let start = *table.directory.get(probe.bucket as usize)?;
                    let end = *table.directory.get(probe.bucket as usize + 1)?;
                    prefetch_u32(&table.cells, start);
                    Some((start, end))
                });
                ring[read % RING] = bounds.unwrap_or((0, 0));
            }
            let Some(filter) = step.checked_sub(DIR_AHEAD + CELLS_AHEAD) else {
                continue;
            };
            let (Some(probe), Some(&(start, end))) = (probes.get(filter), ring.get(filter % RING))
            else {
                continue;
            };
            let (Some(table), Some(&key)) = (table_of(probe), keys.get(probe.slot as usize)) else {
                continue;
            };
            let low_key = key & ((1 << table.low_bits()) - 1);
            let tag = u64::from(probe.slot) << 32;
            for &cell in table.cells.get(start as usize..end as usize).unwrap_or(&[]) {
                if ((cell >> id_bits) ^ low_key).count_ones() <= probe.budget {
                    candidates.push(tag | u64::from(cell & id_mask));
                }
            }
        }
    }

    #[inline(always)]
    fn verify(
        &self,
        query: &Code,
        radius: u32,
        keys: &[u32],
        radii: &[Option<u32>],
        candidates: &[u64],
        out: &mut Vec<CodeHit>,
    ) {
        for (position, &candidate) in candidates.iter().enumerate() {
            if let Some(&ahead) = candidates.get(position + CODES_AHEAD) {
                prefetch(&self.codes, ahead as u32);
            }
            let (slot, id) = ((candidate >> 32) as usize, candidate as u32);
            let Some(code) = self.codes.get(id as usize) else {
                continue;
            };
            let distance = hamming(code, query);
            if distance > radius {
                continue;
            }
            // Report from the first substring able to find this code, so nothing twice.
            let found_earlier =
                self.tables
                    .iter()
                    .zip(keys)
                    .zip(radii)
                    .take(slot)
                    .any(|((t, &key), r)| {
                        r.is_some_and(|r| {
                            (substring(code, t.bit_offset, t.bits) ^ key).count_ones() <= r
                        })
                    });
            if !found_earlier {
                out.push(CodeHit { distance, id });
            }
        }
    }
}

/// Every directory bucket within `radius` of the query's directory key, with what is left of
/// the radius for the cells' low bits.
#[inline(always)]
pub(super) fn enumerate_buckets(
    table: &SubstringTable,
    slot: u32,
    key: u32,
    radius: u32,
    probes: &mut Vec<Probe>,
) {
    let dir_key = key >> table.low_bits();
    let limit = 1u64 << table.dir_bits;
    for flips in 0..=radius.min(table.dir_bits) {
        let budget = radius - flips;
        // Gosper's hack: every dir_bits-bit mask with `flips` bits set, in increasing order.
        let mut mask: u64 = (1 << flips) - 1;
        while mask < limit {
            probes.push(Probe {
                slot,
                budget,
                bucket: dir_key ^ mask as u32,
            });
            if mask == 0 {
                break;
            }
            let lowest = mask & mask.wrapping_neg();
            let ripple = mask + lowest;
            mask = (((ripple ^ mask) >> 2) >> lowest.trailing_zeros()) | ripple;
        }
    }
}
