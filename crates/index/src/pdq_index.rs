//! Exact Hamming range search over 256-bit PDQ codes: multi-index hashing with a scan fallback.
//!
//! The code is cut into `m` disjoint substrings (≈256/(log2 N + 2.5) of them: 11 at 1M, 10 at 10M).
//! If two codes differ in at most `r = q·m + a` bits, then one of the first `a + 1` substrings
//! differs in at most `q` bits or one of the others in at most `q − 1` (the refined pigeonhole
//! principle), so probing every substring's table within that radius finds every code within
//! `r`: the search is exact, never approximate. That holds for any lengths, so the substrings
//! searched at the larger radius at the default threshold are made longer (fewer candidates
//! pass them): 2 × 28 + 8 × 25 bits at 10M instead of 6 × 26 + 4 × 25.
//!
//! Layout, chosen for memory (≤ 100 bytes per code at 10M) and cache behaviour:
//! - `codes`: the codes themselves, 32 bytes each, indexed by a dense `u32` id.
//! - per substring, a flat bucket array sorted by the substring's high `dir_bits` bits
//!   (`directory` holds the 2^dir_bits + 1 bucket starts) whose `u32` cells pack the id in
//!   the low 28 bits and the substring's remaining (≤ 4) low bits in the top 4. A probe walks a
//!   bucket of ~4 cells and filters on those low bits, so the directory is 4–16× smaller than
//!   one offset per substring value and no hash set or tree is involved.
//! - a candidate is reported only by the first substring that can find it, so no dedup set.
//!
//! When the estimated probe work exceeds a linear scan (large radii, tiny indexes) the query
//! scans all codes instead; batches then use a blocked scan that keeps a tile of codes in cache
//! while a block of queries sweeps over it. Both paths return the same, exact answer.
//!
//! This module knows nothing about banks, entries or files: ids are positions in `codes`.

use std::thread;

mod aligned;
mod batch;
mod probe;
mod profile;
mod verify;

pub(crate) use aligned::AlignedArray;
pub use probe::SearchScratch;
pub use profile::SearchProfile;

/// A bucket cell gives at most 28 bits to the id, so an index holds at most 2^28 codes.
pub const MAX_CODES: usize = 1 << MAX_ID_BITS;
const MAX_ID_BITS: u32 = 28;
/// Cells never give the id fewer bits than this (so at most 16 low substring bits).
const MIN_ID_BITS: u32 = 16;
/// Radii above this are answered by scanning (the Hamming distance of 256-bit codes ≤ 256).
const MAX_RADIUS: u32 = 256;
const DEFAULT_BUCKET_LOG2: u32 = 1;

/// A 256-bit code as four words (see `PdqHash::to_words`).
pub type Code = [u64; 4];

/// How to build an index; `Default` picks the substring count from the number of codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexParams {
    /// Number of substrings; `None` = ≈256/log2(N). `Some(0)` builds a scan-only index.
    pub substrings: Option<usize>,
    /// Never fall back to a scan (tests use this to exercise the multi-index path alone).
    pub multi_index_only: bool,
    /// log2 of the average number of cells per directory bucket; `None` = 1 (2 cells).
    /// Smaller means a bigger directory (more memory, more random reads per probe) and fewer
    /// cells read per probe; limited by the low substring bits a cell has room for.
    pub bucket_log2: Option<u32>,
    /// The radius the substring lengths are tuned for; `None` = 31 (the default PDQ
    /// threshold), `Some(0)` = every substring the same length. Any radius stays exact.
    pub radius_hint: Option<u32>,
}

/// The radius the layout is tuned for when `IndexParams::radius_hint` is `None`.
const DEFAULT_RADIUS_HINT: u32 = 31;

/// One substring's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubstringTable {
    pub(crate) bit_offset: u32,
    pub(crate) bits: u32,
    pub(crate) dir_bits: u32,
    pub(crate) directory: AlignedArray<u32>,
    pub(crate) cells: AlignedArray<u32>,
}

impl SubstringTable {
    fn low_bits(&self) -> u32 {
        self.bits - self.dir_bits
    }
}

/// Bits of a bucket cell that hold the id in an index of `n` codes: just enough for the ids,
/// so the rest can hold low substring bits (8 of them at 10M, 12 at 1M).
pub(crate) fn id_bits(n: usize) -> u32 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()).clamp(MIN_ID_BITS, MAX_ID_BITS)
}

/// An immutable exact Hamming range index over 256-bit codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdqIndex {
    pub(crate) codes: AlignedArray<Code>,
    pub(crate) tables: Vec<SubstringTable>,
    pub(crate) multi_index_only: bool,
}

/// A hit: the id (position of the code at build time) and its distance from the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CodeHit {
    pub distance: u32,
    pub id: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdqIndexError {
    #[error("an index holds at most {MAX_CODES} codes, got {0}")]
    TooManyCodes(usize),
    #[error("index holds {codes} codes but {entries} PDQ entries were given")]
    Mismatch { codes: usize, entries: usize },
}

impl PdqIndex {
    /// Build over `codes`; a code's id is its position.
    pub fn build(codes: Vec<Code>, params: IndexParams) -> Result<Self, PdqIndexError> {
        if codes.len() > MAX_CODES {
            return Err(PdqIndexError::TooManyCodes(codes.len()));
        }
        // An aligned copy (see `aligned` for what a `Vec`'s placement cost every query); the
        // `Vec` is freed before the tables are built, so the peak holds one copy of the codes.
        let codes = {
            let aligned = AlignedArray::from_slice(&codes);
            drop(codes);
            aligned
        };
        let layout = substring_layout(
            codes.len(),
            params.substrings,
            params.bucket_log2.unwrap_or(DEFAULT_BUCKET_LOG2),
            params.radius_hint.unwrap_or(DEFAULT_RADIUS_HINT),
        );
        let id_bits = id_bits(codes.len());
        let build_one =
            |(bit_offset, bits, dir_bits)| build_table(&codes, bit_offset, bits, dir_bits, id_bits);
        let workers = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(layout.len().max(1));
        let tables = if workers <= 1 || codes.len() < 100_000 {
            layout.into_iter().map(build_one).collect()
        } else {
            build_parallel(&layout, workers, &build_one)
        };
        Ok(Self {
            codes,
            tables,
            multi_index_only: params.multi_index_only,
        })
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn code(&self, id: u32) -> Option<&Code> {
        self.codes.get(id as usize)
    }

    pub fn substrings(&self) -> usize {
        self.tables.len()
    }

    fn id_bits(&self) -> u32 {
        id_bits(self.codes.len())
    }

    /// Heap bytes held by the index (codes, directories and bucket cells).
    pub fn heap_bytes(&self) -> usize {
        let tables: usize = self
            .tables
            .iter()
            .map(|t| 4 * (t.directory.len() + t.cells.len()))
            .sum();
        32 * self.codes.len() + tables
    }

    /// Every code within `radius` of `query`, appended to `out` in no particular order.
    pub fn search(
        &self,
        query: &Code,
        radius: u32,
        scratch: &mut SearchScratch,
        out: &mut Vec<CodeHit>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            // SAFETY: the CPU supports these instructions (checked just above).
            return unsafe { self.search_with_avx512(query, radius, scratch, out) };
        }
        self.search_without_simd(query, radius, scratch, out);
    }

    /// [`Self::search`] without the AVX-512 cell filter, whatever the CPU: the same answer by
    /// another path, for tests that compare the two and for benchmarks.
    #[doc(hidden)]
    pub fn search_without_simd(
        &self,
        query: &Code,
        radius: u32,
        scratch: &mut SearchScratch,
        out: &mut Vec<CodeHit>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports the popcnt instruction (checked just above).
            return unsafe { self.search_with_popcnt(query, radius, scratch, out) };
        }
        self.search_portable::<false>(query, radius, scratch, out);
    }

    /// [`Self::search_batch`] without the AVX-512 cell filter, whatever the CPU (see
    /// [`Self::search_without_simd`]).
    #[doc(hidden)]
    pub fn search_batch_without_simd(
        &self,
        queries: &[Code],
        radius: u32,
        out: &mut Vec<Vec<CodeHit>>,
    ) {
        batch::with_scratch(|scratch| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: the CPU supports the popcnt instruction (checked just above).
                return unsafe { self.search_batch_with_popcnt(queries, radius, scratch, out) };
            }
            self.search_batch_portable::<false>(queries, radius, scratch, out);
        });
    }

    /// Answers for many queries: `out[i]` receives the hits of `queries[i]`.
    pub fn search_batch(&self, queries: &[Code], radius: u32, out: &mut Vec<Vec<CodeHit>>) {
        // The thread's buffers are borrowed out here so that the whole search below is
        // compiled with the CPU's features (a closure passed in would be compiled without).
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            return batch::with_scratch(|scratch| {
                // SAFETY: the CPU supports these instructions (checked just above).
                unsafe { self.search_batch_with_avx512(queries, radius, scratch, out) }
            });
        }
        self.search_batch_without_simd(queries, radius, out);
    }

    // The baseline x86-64 target has no popcnt instruction, and `count_ones` is the inner loop
    // of both the scan and the verification: these copies are compiled with it (2-3x faster).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    fn search_with_popcnt(
        &self,
        query: &Code,
        radius: u32,
        scratch: &mut SearchScratch,
        out: &mut Vec<CodeHit>,
    ) {
        self.search_portable::<false>(query, radius, scratch, out);
    }

    /// As [`Self::search_with_popcnt`], with bucket cells filtered 16 at a time (`probe`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt,avx512f,avx512vpopcntdq")]
    fn search_with_avx512(
        &self,
        query: &Code,
        radius: u32,
        scratch: &mut SearchScratch,
        out: &mut Vec<CodeHit>,
    ) {
        self.search_portable::<true>(query, radius, scratch, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    fn search_batch_with_popcnt(
        &self,
        queries: &[Code],
        radius: u32,
        scratch: &mut batch::BatchScratch,
        out: &mut Vec<Vec<CodeHit>>,
    ) {
        self.search_batch_portable::<false>(queries, radius, scratch, out);
    }

    /// As [`Self::search_batch_with_popcnt`], with bucket cells filtered 16 at a time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt,avx512f,avx512vpopcntdq")]
    fn search_batch_with_avx512(
        &self,
        queries: &[Code],
        radius: u32,
        scratch: &mut batch::BatchScratch,
        out: &mut Vec<Vec<CodeHit>>,
    ) {
        self.search_batch_portable::<true>(queries, radius, scratch, out);
    }

    /// `WIDE` may only be true once the CPU was seen to support AVX-512 (`probe`).
    #[inline(always)]
    fn search_portable<const WIDE: bool>(
        &self,
        query: &Code,
        radius: u32,
        scratch: &mut SearchScratch,
        out: &mut Vec<CodeHit>,
    ) {
        let radius = radius.min(MAX_RADIUS);
        if self.prefers_scan(radius) {
            self.scan(query, radius, out);
        } else {
            self.probe::<WIDE>(query, radius, scratch, out);
        }
    }

    /// `WIDE` may only be true once the CPU was seen to support AVX-512 (`probe`).
    #[inline(always)]
    fn search_batch_portable<const WIDE: bool>(
        &self,
        queries: &[Code],
        radius: u32,
        scratch: &mut batch::BatchScratch,
        out: &mut Vec<Vec<CodeHit>>,
    ) {
        let radius = radius.min(MAX_RADIUS);
        out.clear();
        out.resize_with(queries.len(), Vec::new);
        if self.prefers_scan(radius) {
            self.blocked_scan(queries, radius, out);
            return;
        }
        // Blocks of even size: 1,000 queries are two blocks of 500, not 512 and 488.
        let blocks = queries.len().div_ceil(batch::BLOCK).max(1);
        let block = queries.len().div_ceil(blocks).max(1);
        for (queries, out) in queries.chunks(block).zip(out.chunks_mut(block)) {
            if queries.len() < batch::SORTED_MIN {
                for (query, hits) in queries.iter().zip(out.iter_mut()) {
                    self.probe::<WIDE>(query, radius, &mut scratch.single, hits);
                }
            } else {
                self.sorted_block::<WIDE>(queries, radius, scratch, out);
            }
        }
    }

    /// Whether a scan is estimated to be cheaper than probing the substring tables.
    pub fn prefers_scan(&self, radius: u32) -> bool {
        if self.tables.is_empty() {
            return true;
        }
        if self.multi_index_only {
            return false;
        }
        let n = self.codes.len() as f64;
        let radii = substring_radii(self.tables.len(), radius);
        let mut cost = 0.0;
        for (table, &search_radius) in self.tables.iter().zip(&radii) {
            let Some(search_radius) = search_radius else {
                continue;
            };
            let probes = ball_size(table.dir_bits, search_radius);
            let per_bucket = n / (1u64 << table.dir_bits) as f64;
            // A probe is a likely cache miss; each cell read is cheap but a candidate's code
            // is another random read. Calibrated against the benchmark, not exact.
            let candidate_share =
                ball_size(table.low_bits(), search_radius) / (1u64 << table.low_bits()) as f64;
            cost += probes * (6.0 + per_bucket * (0.5 + 4.0 * candidate_share.min(1.0)));
        }
        cost > n
    }

    #[inline(always)]
    fn scan(&self, query: &Code, radius: u32, out: &mut Vec<CodeHit>) {
        for (id, code) in self.codes.iter().enumerate() {
            let distance = hamming(code, query);
            if distance <= radius {
                out.push(CodeHit {
                    distance,
                    id: id as u32,
                });
            }
        }
    }

    #[inline(always)]
    fn blocked_scan(&self, queries: &[Code], radius: u32, out: &mut [Vec<CodeHit>]) {
        // 4096 codes = 128 KiB: stays in L2 while a block of queries sweeps over it.
        const TILE: usize = 4096;
        const QUERY_BLOCK: usize = 256;
        for (block_index, query_block) in queries.chunks(QUERY_BLOCK).enumerate() {
            let out_block = &mut out[block_index * QUERY_BLOCK..][..query_block.len()];
            for (tile_index, tile) in self.codes.chunks(TILE).enumerate() {
                let base = tile_index * TILE;
                for (query, hits) in query_block.iter().zip(out_block.iter_mut()) {
                    for (offset, code) in tile.iter().enumerate() {
                        let distance = hamming(code, query);
                        if distance <= radius {
                            hits.push(CodeHit {
                                distance,
                                id: (base + offset) as u32,
                            });
                        }
                    }
                }
            }
        }
    }
}

/// Number of differing bits between two codes.
#[inline(always)]
pub fn hamming(a: &Code, b: &Code) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// `bits` bits of `code` starting at bit `bit_offset` (bit 0 = lowest bit of word 0).
#[inline(always)]
fn substring(code: &Code, bit_offset: u32, bits: u32) -> u32 {
    let word = (bit_offset / 64) as usize;
    let shift = bit_offset % 64;
    let mut value = code[word & 3] >> shift;
    if shift + bits > 64 {
        value |= code[(word + 1) & 3] << (64 - shift);
    }
    (value & ((1u64 << bits) - 1)) as u32
}

/// Per-substring search radius for a total radius (refined pigeonhole); `None` = skip.
fn substring_radii(substrings: usize, radius: u32) -> Vec<Option<u32>> {
    let m = substrings as u32;
    let (q, a) = (radius / m, radius % m);
    (0..m)
        .map(|slot| if slot <= a { Some(q) } else { q.checked_sub(1) })
        .collect()
}

/// Σ_{t ≤ radius} C(bits, t) as a float (may be astronomically large).
fn ball_size(bits: u32, radius: u32) -> f64 {
    let mut term = 1.0;
    let mut total = 1.0;
    for t in 1..=radius.min(bits) {
        term = term * f64::from(bits - t + 1) / f64::from(t);
        total += term;
    }
    total
}

/// (bit offset, bits, directory bits) for each substring. Lengths are tuned for
/// `radius_hint` (see [`substring_lengths`]); the first substrings get the larger radius.
fn substring_layout(
    n: usize,
    substrings: Option<usize>,
    bucket_log2: u32,
    radius_hint: u32,
) -> Vec<(u32, u32, u32)> {
    let log2n = (n.max(2) as f64).log2();
    let m = match substrings {
        Some(m) => m.min(256),
        None if n < 2 => 0,
        // Measured on PDQ-like data: 11 at 1M, 10 at 10M beat 256/log2 N (13 and 11), since
        // each probe is cheap next to verifying a candidate.
        None => (256.0 / (log2n + 2.5)).round().clamp(8.0, 24.0) as usize,
    };
    if m == 0 {
        return Vec::new();
    }
    let low_room = 32 - id_bits(n);
    // Aim for ~2^bucket_log2 cells per bucket, within what the cells' low bits and 2^26
    // buckets allow.
    let wanted = (log2n.round() as u32).saturating_sub(bucket_log2).max(1);
    let lengths = substring_lengths(m as u32, radius_hint, wanted + low_room);
    let mut offset = 0;
    lengths
        .into_iter()
        .map(|bits| {
            let dir_bits = wanted.clamp(bits.saturating_sub(low_room), bits).min(26);
            let layout = (offset, bits, dir_bits);
            offset += bits;
            layout
        })
        .filter(|&(_, bits, _)| bits <= 32)
        .collect()
}

/// Lengths of `m` substrings covering 256 bits, chosen so that a query at `radius` expects the
/// fewest candidates on uniform codes: a substring searched at radius `r` with `b` bits passes
/// a random code with probability ball(b, r) / 2^b, so the substrings searched at the larger
/// radius (the first ones, see [`substring_radii`]) get more bits. At 10M and radius 31 that is
/// 2 × 28 + 8 × 25 bits instead of 6 × 26 + 4 × 25: ~30 % fewer candidates for the same
/// probes. No length exceeds `longest` (so directories keep their size) unless all must.
fn substring_lengths(m: u32, radius: u32, longest: u32) -> Vec<u32> {
    let (base, extra) = (256 / m, 256 % m);
    let mut bits: Vec<u32> = (0..m).map(|slot| base + u32::from(slot < extra)).collect();
    if radius == 0 || m < 2 || base >= 32 {
        return bits;
    }
    let longest = longest.clamp(base + u32::from(extra > 0), 32);
    let radii = substring_radii(m as usize, radius);
    let cost = |bits: u32, radius: Option<u32>| {
        radius.map_or(0.0, |r| ball_size(bits, r) / 2f64.powi(bits as i32))
    };
    // Move one bit at a time to where it saves the most expected candidates.
    loop {
        let mut best = (0.0, 0, 0);
        for (from, (&from_bits, &from_radius)) in bits.iter().zip(&radii).enumerate() {
            if from_bits <= 1 {
                continue;
            }
            let loss = cost(from_bits - 1, from_radius) - cost(from_bits, from_radius);
            for (to, (&to_bits, &to_radius)) in bits.iter().zip(&radii).enumerate() {
                if to == from || to_bits >= longest {
                    continue;
                }
                let gain = cost(to_bits, to_radius) - cost(to_bits + 1, to_radius) - loss;
                if gain > best.0 {
                    best = (gain, from, to);
                }
            }
        }
        let (gain, from, to) = best;
        let total: f64 = bits.iter().zip(&radii).map(|(&b, &r)| cost(b, r)).sum();
        // A move saving under 0.1 % of the candidates is not worth a layout change.
        if gain < total * 1e-3 {
            return bits;
        }
        if let Some(b) = bits.get_mut(from) {
            *b -= 1;
        }
        if let Some(b) = bits.get_mut(to) {
            *b += 1;
        }
    }
}

fn build_table(
    codes: &[Code],
    bit_offset: u32,
    bits: u32,
    dir_bits: u32,
    id_bits: u32,
) -> SubstringTable {
    let low_bits = bits - dir_bits;
    let buckets = 1usize << dir_bits;
    let mut directory = AlignedArray::zeroed(buckets + 1);
    for code in codes {
        let key = substring(code, bit_offset, bits);
        directory[(key >> low_bits) as usize + 1] += 1;
    }
    for bucket in 0..buckets {
        directory[bucket + 1] += directory[bucket];
    }
    let mut next = directory[..buckets].to_vec();
    let mut cells = AlignedArray::zeroed(codes.len());
    for (id, code) in codes.iter().enumerate() {
        let key = substring(code, bit_offset, bits);
        let bucket = (key >> low_bits) as usize;
        let low = key & ((1 << low_bits) - 1);
        cells[next[bucket] as usize] = (low << id_bits) | id as u32;
        next[bucket] += 1;
    }
    SubstringTable {
        bit_offset,
        bits,
        dir_bits,
        directory,
        cells,
    }
}

fn build_parallel<F>(
    layout: &[(u32, u32, u32)],
    workers: usize,
    build_one: &F,
) -> Vec<SubstringTable>
where
    F: Fn((u32, u32, u32)) -> SubstringTable + Sync,
{
    let mut built: Vec<(usize, SubstringTable)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                scope.spawn(move || {
                    layout
                        .iter()
                        .enumerate()
                        .skip(worker)
                        .step_by(workers)
                        .map(|(slot, &spec)| (slot, build_one(spec)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    built.sort_by_key(|(slot, _)| *slot);
    built.into_iter().map(|(_, table)| table).collect()
}

#[inline]
fn prefetch_u32(values: &[u32], index: u32) {
    #[cfg(target_arch = "x86_64")]
    if let Some(value) = values.get(index as usize) {
        // SAFETY: a prefetch is a hint that never faults, and the pointer is to a live element.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (value as *const u32).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (values, index);
}

#[inline]
fn prefetch(codes: &[Code], id: u32) {
    #[cfg(target_arch = "x86_64")]
    if let Some(code) = codes.get(id as usize) {
        // SAFETY: a prefetch is a hint that never faults, and the pointer is to a live element.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                code.as_ptr().cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (codes, id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substrings_cover_all_256_bits_once() {
        for n in [0usize, 1, 10, 1_000, 1_000_000, 10_000_000] {
            let layout = substring_layout(n, None, 2, 31);
            let total: u32 = layout.iter().map(|&(_, bits, _)| bits).sum();
            assert!(layout.is_empty() || total == 256, "n={n}");
            for &(_, bits, dir) in &layout {
                assert!(bits - dir <= 32 - id_bits(n) && dir <= bits);
            }
        }
        assert_eq!(substring_layout(10_000_000, None, 3, 31).len(), 10);
        assert_eq!(substring_layout(1_000_000, None, 3, 31).len(), 11);
    }

    #[test]
    fn substrings_searched_at_the_larger_radius_are_longer() {
        let bits = |n, hint| -> Vec<u32> {
            substring_layout(n, None, DEFAULT_BUCKET_LOG2, hint)
                .iter()
                .map(|&(_, bits, _)| bits)
                .collect()
        };
        // Radius 31 over 10 substrings: the first 2 are searched at 3, the others at 2.
        assert_eq!(bits(10_000_000, 31), [vec![28; 2], vec![25; 8]].concat());
        assert_eq!(bits(10_000_000, 0), [vec![26; 6], vec![25; 4]].concat());
        // Radius 31 over 11: ten at 2 and the last at 1, which gets fewer bits.
        let at_1m = bits(1_000_000, 31);
        assert_eq!(at_1m.iter().sum::<u32>(), 256);
        assert!(at_1m.iter().take(10).all(|&b| b > at_1m[10]), "{at_1m:?}");
        for hint in [0, 1, 10, 31, 64, 200] {
            for n in [100, 100_000, 10_000_000] {
                let layout = substring_layout(n, None, DEFAULT_BUCKET_LOG2, hint);
                let mut offset = 0;
                for &(bit_offset, bits, dir) in &layout {
                    assert_eq!(bit_offset, offset);
                    assert!(bits <= 32 && dir <= bits && bits - dir <= 32 - id_bits(n));
                    offset += bits;
                }
                assert_eq!(offset, 256, "n={n} hint={hint}");
            }
        }
    }

    #[test]
    fn cells_give_ids_just_enough_bits() {
        assert_eq!(id_bits(0), MIN_ID_BITS);
        assert_eq!(id_bits(1 << 16), 16);
        assert_eq!(id_bits((1 << 16) + 1), 17);
        assert_eq!(id_bits(10_000_000), 24);
        assert_eq!(id_bits(MAX_CODES), MAX_ID_BITS);
        let layout = substring_layout(10_000_000, None, 2, 31);
        assert!(layout.iter().all(|&(_, bits, dir)| bits - dir <= 8));
    }

    #[test]
    fn radii_follow_the_refined_pigeonhole() {
        assert_eq!(
            substring_radii(11, 31),
            [vec![Some(2); 10], vec![Some(1)]].concat()
        );
        assert_eq!(substring_radii(4, 2), vec![Some(0), Some(0), Some(0), None]);
    }

    #[test]
    fn empty_index_and_ball_sizes() {
        let error = PdqIndex::build(vec![[0; 4]; 0], IndexParams::default()).map(|i| i.len());
        assert_eq!(error, Ok(0));
        assert_eq!(ball_size(4, 10), 16.0);
    }
}
