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
//! The walk is not only waiting for memory: a PDQ-like query filters ~74,000 cells at 10M.
//! On CPUs with AVX-512 (and its popcount) the cells of a bucket are filtered 16 at a time
//! (`filter_cells_avx512`), which took 10M single queries from ~2,400-2,650 to ~3,450-3,570
//! q/CPU-s (processes alternated, load ~6). Candidates are plain ids, table after table, so
//! the filter can compress them straight into the list.
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
    /// Ids of every cell that passed its probe's filter, table after table (probes are
    /// listed and walked in table order).
    candidates: Vec<u32>,
    /// Per table, the end of its candidates in `candidates` (0 for a table not probed).
    slot_ends: Vec<usize>,
}

impl PdqIndex {
    #[inline(always)]
    pub(super) fn probe<const WIDE: bool>(
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
        scratch.slot_ends.clear();
        scratch.slot_ends.resize(self.tables.len(), 0);
        self.walk_probes::<WIDE>(
            &scratch.keys,
            &scratch.probes,
            &mut scratch.candidates,
            &mut scratch.slot_ends,
        );
        self.verify(
            query,
            radius,
            &scratch.keys,
            &radii,
            (&scratch.candidates, &scratch.slot_ends),
            out,
        );
    }

    /// Filters the cells of every probe into `candidates`, with the look-ahead described above.
    #[inline(always)]
    fn walk_probes<const WIDE: bool>(
        &self,
        keys: &[u32],
        probes: &[Probe],
        candidates: &mut Vec<u32>,
        slot_ends: &mut [usize],
    ) {
        let id_bits = self.id_bits();
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
            let cells = table.cells.get(start as usize..end as usize).unwrap_or(&[]);
            filter_cells::<WIDE>(cells, id_bits, low_key, probe.budget, candidates);
            if let Some(slot_end) = slot_ends.get_mut(probe.slot as usize) {
                *slot_end = candidates.len();
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
        (candidates, slot_ends): (&[u32], &[usize]),
        out: &mut Vec<CodeHit>,
    ) {
        let mut slot = 0;
        for (position, &id) in candidates.iter().enumerate() {
            if let Some(&ahead) = candidates.get(position + CODES_AHEAD) {
                prefetch(&self.codes, ahead);
            }
            // Tables without probes end where the one before them ended (their entry is 0).
            while slot_ends.get(slot).is_some_and(|&end| end <= position) {
                slot += 1;
            }
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

/// Appends the ids of the `cells` whose low substring bits differ from `low_key` in at most
/// `budget` bits. `WIDE` filters 16 cells per step with AVX-512; it may only be true in code
/// that runs after `is_x86_feature_detected!` confirmed avx512f and avx512vpopcntdq (see
/// `PdqIndex::search`).
#[inline(always)]
fn filter_cells<const WIDE: bool>(
    cells: &[u32],
    id_bits: u32,
    low_key: u32,
    budget: u32,
    out: &mut Vec<u32>,
) {
    #[cfg(target_arch = "x86_64")]
    if WIDE {
        // SAFETY: `WIDE` is only true once the CPU was seen to support these features.
        unsafe { filter_cells_avx512(cells, id_bits, low_key, budget, out) };
        return;
    }
    let id_mask = (1u32 << id_bits) - 1;
    for &cell in cells {
        if ((cell >> id_bits) ^ low_key).count_ones() <= budget {
            out.push(cell & id_mask);
        }
    }
}

/// [`filter_cells`] 16 cells at a time: a bucket of the dense regions (~13 cells for the
/// PDQ-like queries at 10M) is one masked load, one popcount and one compress, without the
/// scalar loop's unpredictable branch per cell.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
#[inline]
unsafe fn filter_cells_avx512(
    cells: &[u32],
    id_bits: u32,
    low_key: u32,
    budget: u32,
    out: &mut Vec<u32>,
) {
    use std::arch::x86_64::{
        __mmask16, _mm_cvtsi32_si128, _mm512_and_si512, _mm512_mask_cmple_epu32_mask,
        _mm512_maskz_compress_epi32, _mm512_maskz_loadu_epi32, _mm512_popcnt_epi32,
        _mm512_set1_epi32, _mm512_srl_epi32, _mm512_storeu_si512, _mm512_xor_si512,
    };
    let shift = _mm_cvtsi32_si128(id_bits as i32);
    let key = _mm512_set1_epi32(low_key as i32);
    let limit = _mm512_set1_epi32(budget as i32);
    let id_mask = _mm512_set1_epi32(((1u32 << id_bits) - 1) as i32);
    for chunk in cells.chunks(16) {
        let lanes = ((1u32 << chunk.len()) - 1) as __mmask16;
        out.reserve(16);
        let len = out.len();
        // SAFETY: the masked load reads only the chunk's lanes (masked-off lanes never fault);
        // `reserve(16)` made room for the 16-lane store past `len`, and only the lanes that
        // passed (written by the compress, in order) are counted into the length.
        unsafe {
            let cells = _mm512_maskz_loadu_epi32(lanes, chunk.as_ptr().cast());
            let low = _mm512_srl_epi32(cells, shift);
            let differ = _mm512_popcnt_epi32(_mm512_xor_si512(low, key));
            let pass = _mm512_mask_cmple_epu32_mask(lanes, differ, limit);
            let ids = _mm512_maskz_compress_epi32(pass, _mm512_and_si512(cells, id_mask));
            _mm512_storeu_si512(out.as_mut_ptr().add(len).cast(), ids);
            out.set_len(len + pass.count_ones() as usize);
        }
    }
}
