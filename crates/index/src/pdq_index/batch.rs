//! Batch search by sorting: the probes of a whole block of queries are sorted by bucket before
//! any bucket is read, and the candidates by id before any code is read, so both sweeps go
//! through memory in nearly address order instead of one random cache miss per probe and per
//! candidate as a single query pays. The sorted probes still skip (about one bucket in 14 at
//! 10M), so directory slots and cells are prefetched ahead of the sweep as in the single path.
//! Sorting pays only for blocks of [`SORTED_MIN`] queries or more; smaller batches are searched
//! query by query with the single-query pipeline.
//!
//! Exact like the single-query path: the same buckets are probed with the same radii, only in
//! another order. A code found by several substrings (or several probes) is verified once, as
//! sorting puts its (id, query) pairs side by side. This module must not change which buckets
//! are probed: the pigeonhole argument in the parent module is what makes the search exact.

use super::{Code, CodeHit, PdqIndex, SubstringTable, hamming, substring, substring_radii};

/// Queries per block: large enough that most buckets a block touches are touched again and its
/// sorted candidates sweep the codes nearly in order, small enough that the candidate list and
/// its sort buffer (8 bytes per candidate each, ~8,500 candidates per query on the 10M data
/// set) stay at ~7 bytes per indexed code: 1,024 queries were ~10% faster in batch at 10M but
/// took the process from 97 to 105 bytes per code.
pub(super) const BLOCK: usize = 512;
/// Smaller batches are searched query by query with the single-query pipeline: sorting pays
/// off only when the queries of a block share enough buckets and code lines (at 10M, batches
/// of 1-32 sorted ran at 0.88-0.91x single queries, 128 at 1.0x, 512 at 1.22x).
pub(super) const SORTED_MIN: usize = 128;
const QUERY_BITS: u32 = 16;
const _: () = assert!(BLOCK <= 1 << QUERY_BITS);

/// Reusable buffers of the sorted batch search.
#[derive(Debug, Default)]
pub(crate) struct BatchScratch {
    pub(super) single: super::SearchScratch,
    probes: Vec<u64>,
    candidates: Vec<u64>,
    sort_buffer: Vec<u64>,
    keys: Vec<u32>,
}

thread_local! {
    // Kept per thread between calls: allocating these tens of MB afresh for every batch costs
    // more in page faults than the batch's own work.
    static SCRATCH: std::cell::RefCell<BatchScratch> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's batch buffers.
pub(super) fn with_scratch<T>(f: impl FnOnce(&mut BatchScratch) -> T) -> T {
    SCRATCH.with(|scratch| f(&mut scratch.borrow_mut()))
}

impl PdqIndex {
    /// Hits of each query of `queries` (at most [`BLOCK`]) appended to the matching `out` slot.
    #[inline(always)]
    pub(super) fn sorted_block<const WIDE: bool>(
        &self,
        queries: &[Code],
        radius: u32,
        scratch: &mut BatchScratch,
        out: &mut [Vec<CodeHit>],
    ) {
        let radii = substring_radii(self.tables.len(), radius);
        let id_bits = self.id_bits();
        scratch.candidates.clear();
        for (table, search_radius) in self.tables.iter().zip(&radii) {
            let Some(search_radius) = *search_radius else {
                continue;
            };
            scratch.keys.clear();
            scratch.keys.extend(
                queries
                    .iter()
                    .map(|q| substring(q, table.bit_offset, table.bits)),
            );
            enumerate_probes(table, &scratch.keys, search_radius, &mut scratch.probes);
            // Probes are (bucket << 32 | query): order by the bucket bits only.
            radix_sort(
                &mut scratch.probes,
                &mut scratch.sort_buffer,
                32,
                table.dir_bits,
            );
            sweep_buckets::<WIDE>(
                table,
                &scratch.keys,
                search_radius,
                id_bits,
                &scratch.probes,
                &mut scratch.candidates,
            );
        }
        // Candidates are (id << 16 | query): order by id, then settle the few runs of one id.
        radix_sort(
            &mut scratch.candidates,
            &mut scratch.sort_buffer,
            QUERY_BITS,
            id_bits,
        );
        self.verify_sorted(queries, radius, &mut scratch.candidates, out);
    }

    #[inline(always)]
    fn verify_sorted(
        &self,
        queries: &[Code],
        radius: u32,
        candidates: &mut [u64],
        out: &mut [Vec<CodeHit>],
    ) {
        const AHEAD: usize = 8;
        let query_mask = (1u64 << QUERY_BITS) - 1;
        let mut start = 0;
        while start < candidates.len() {
            let id = (candidates[start] >> QUERY_BITS) as u32;
            let mut end = start + 1;
            while candidates
                .get(end)
                .is_some_and(|&c| (c >> QUERY_BITS) as u32 == id)
            {
                end += 1;
            }
            if let Some(&ahead) = candidates.get(end + AHEAD) {
                super::prefetch(&self.codes, (ahead >> QUERY_BITS) as u32);
            }
            let run = &mut candidates[start..end];
            if run.len() > 1 {
                run.sort_unstable();
            }
            let Some(code) = self.codes.get(id as usize) else {
                start = end;
                continue;
            };
            let mut previous = None;
            for &pair in run.iter() {
                let query = (pair & query_mask) as usize;
                if previous == Some(query) {
                    continue;
                }
                previous = Some(query);
                let (Some(query_code), Some(hits)) = (queries.get(query), out.get_mut(query))
                else {
                    continue;
                };
                let distance = hamming(code, query_code);
                if distance <= radius {
                    hits.push(CodeHit { distance, id });
                }
            }
            start = end;
        }
    }
}

/// Every (bucket << 32 | query) whose bucket lies within `radius` of the query's directory key.
#[inline(always)]
fn enumerate_probes(table: &SubstringTable, keys: &[u32], radius: u32, probes: &mut Vec<u64>) {
    let low_bits = table.low_bits();
    let limit = 1u64 << table.dir_bits;
    probes.clear();
    for (query, &key) in keys.iter().enumerate() {
        let dir_key = key >> low_bits;
        for flips in 0..=radius.min(table.dir_bits) {
            // Gosper's hack: every dir_bits-bit mask with `flips` bits set, in increasing order.
            let mut mask: u64 = (1 << flips) - 1;
            while mask < limit {
                let bucket = u64::from(dir_key) ^ mask;
                probes.push(bucket << 32 | query as u64);
                if mask == 0 {
                    break;
                }
                let lowest = mask & mask.wrapping_neg();
                let ripple = mask + lowest;
                mask = (((ripple ^ mask) >> 2) >> lowest.trailing_zeros()) | ripple;
            }
        }
    }
}

/// Reads the probed buckets in address order and keeps the cells whose low substring bits are
/// within the probe's remaining budget, as (id << 16 | query).
#[inline(always)]
fn sweep_buckets<const WIDE: bool>(
    table: &SubstringTable,
    keys: &[u32],
    radius: u32,
    id_bits: u32,
    probes: &[u64],
    candidates: &mut Vec<u64>,
) {
    let low_bits = table.low_bits();
    let low_mask = (1u32 << low_bits) - 1;
    let id_mask = (1u32 << id_bits) - 1;
    for (position, &probe) in probes.iter().enumerate() {
        // Sorted probes still skip around the tables (the hardware prefetcher does not follow
        // them): the directory slot 16 probes ahead and the cells of the bucket 8 ahead are
        // fetched while this one is filtered. 1.12x the batch at 10M in an A/B.
        if let Some(&ahead) = probes.get(position + 16) {
            super::prefetch_u32(&table.directory, (ahead >> 32) as u32);
        }
        if let Some(&ahead) = probes.get(position + 8)
            && let Some(&start) = table.directory.get((ahead >> 32) as usize)
        {
            super::prefetch_u32(&table.cells, start);
        }
        let bucket = (probe >> 32) as u32;
        let query = probe as u32;
        let Some(&key) = keys.get(query as usize) else {
            continue;
        };
        let spent = (bucket ^ (key >> low_bits)).count_ones();
        let budget = radius.saturating_sub(spent);
        let low_key = key & low_mask;
        let (Some(&start), Some(&end)) = (
            table.directory.get(bucket as usize),
            table.directory.get(bucket as usize + 1),
        ) else {
            continue;
        };
        let cells = table.cells.get(start as usize..end as usize).unwrap_or(&[]);
        #[cfg(target_arch = "x86_64")]
        if WIDE {
            // SAFETY: `WIDE` is only true once the CPU was seen to support these features.
            unsafe { filter_cells_avx512(cells, id_bits, low_key, budget, query, candidates) };
            continue;
        }
        for &cell in cells {
            if ((cell >> id_bits) ^ low_key).count_ones() <= budget {
                candidates.push(u64::from(cell & id_mask) << QUERY_BITS | u64::from(query));
            }
        }
    }
}

/// The batch's cell filter 16 cells at a time (as `probe::filter_cells_avx512`), appending
/// (id << 16 | query) for each cell that passes, in two compressed halves of 8 pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
#[inline]
unsafe fn filter_cells_avx512(
    cells: &[u32],
    id_bits: u32,
    low_key: u32,
    budget: u32,
    query: u32,
    out: &mut Vec<u64>,
) {
    use std::arch::x86_64::{
        __m512i, __mmask8, __mmask16, _mm_cvtsi32_si128, _mm512_and_si512, _mm512_castsi512_si256,
        _mm512_cvtepu32_epi64, _mm512_extracti64x4_epi64, _mm512_mask_cmple_epu32_mask,
        _mm512_maskz_compress_epi64, _mm512_maskz_loadu_epi32, _mm512_or_si512,
        _mm512_popcnt_epi32, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_slli_epi64,
        _mm512_srl_epi32, _mm512_storeu_si512, _mm512_xor_si512,
    };
    let shift = _mm_cvtsi32_si128(id_bits as i32);
    let key = _mm512_set1_epi32(low_key as i32);
    let limit = _mm512_set1_epi32(budget as i32);
    let id_mask = _mm512_set1_epi32(((1u32 << id_bits) - 1) as i32);
    let query = _mm512_set1_epi64(i64::from(query));
    let pairs = |ids: __m512i| _mm512_or_si512(_mm512_slli_epi64::<QUERY_BITS>(ids), query);
    for chunk in cells.chunks(16) {
        let lanes = ((1u32 << chunk.len()) - 1) as __mmask16;
        out.reserve(16);
        let len = out.len();
        // SAFETY: the masked load reads only the chunk's lanes (masked-off lanes never fault);
        // `reserve(16)` made room for two 8-lane stores past `len`, and only the pairs that
        // passed (written by the compresses, in order) are counted into the length.
        unsafe {
            let cells = _mm512_maskz_loadu_epi32(lanes, chunk.as_ptr().cast());
            let low = _mm512_srl_epi32(cells, shift);
            let differ = _mm512_popcnt_epi32(_mm512_xor_si512(low, key));
            let pass = _mm512_mask_cmple_epu32_mask(lanes, differ, limit);
            let ids = _mm512_and_si512(cells, id_mask);
            let (low_pass, high_pass) = (pass as __mmask8, (pass >> 8) as __mmask8);
            let low_ids = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(ids));
            let high_ids = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(ids));
            let at = out.as_mut_ptr().add(len);
            _mm512_storeu_si512(
                at.cast(),
                _mm512_maskz_compress_epi64(low_pass, pairs(low_ids)),
            );
            let low_count = low_pass.count_ones() as usize;
            _mm512_storeu_si512(
                at.add(low_count).cast(),
                _mm512_maskz_compress_epi64(high_pass, pairs(high_ids)),
            );
            out.set_len(len + low_count + high_pass.count_ones() as usize);
        }
    }
}

/// Stable LSD radix sort of `values` by their bits `shift..shift + bits`, in passes of at most
/// 11 bits (a 16 KiB count table that stays in L1).
fn radix_sort(values: &mut Vec<u64>, buffer: &mut Vec<u64>, shift: u32, bits: u32) {
    const DIGIT: u32 = 11;
    if values.len() < 2 || bits == 0 {
        return;
    }
    let passes = bits.div_ceil(DIGIT);
    let digit = bits.div_ceil(passes);
    let mask = (1u64 << digit) - 1;
    let mut counts = vec![0usize; 1 << digit];
    buffer.clear();
    buffer.resize(values.len(), 0);
    for pass in 0..passes {
        let at = shift + pass * digit;
        counts.fill(0);
        for &value in values.iter() {
            counts[((value >> at) & mask) as usize] += 1;
        }
        let mut total = 0;
        for count in counts.iter_mut() {
            let here = *count;
            *count = total;
            total += here;
        }
        for &value in values.iter() {
            let slot = &mut counts[((value >> at) & mask) as usize];
            buffer[*slot] = value;
            *slot += 1;
        }
        std::mem::swap(values, buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_orders_by_the_chosen_bits_and_keeps_ties_stable() {
        let mut state = 88172645463325252u64;
        let mut values: Vec<u64> = (0..5000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            })
            .collect();
        let mut expected = values.clone();
        expected.sort_by_key(|v| (v >> 16) & ((1 << 24) - 1));
        radix_sort(&mut values, &mut Vec::new(), 16, 24);
        assert_eq!(values, expected);
    }
}
