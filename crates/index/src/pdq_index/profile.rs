//! What one query costs the multi-index search, counted rather than timed: probes, the 64-byte
//! lines of directories and cells they touch, candidates, hits. For benchmarks and tuning
//! (`examples/probe_profile.rs`); the search itself never calls this.
//!
//! It must walk exactly the probes the search walks (same enumeration, same budgets), or its
//! counts describe another search.

use super::{Code, PdqIndex, hamming, probe::enumerate_buckets, substring, substring_radii};

/// Counts for one query (see the module doc). Lines are distinct per query and per array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchProfile {
    /// Directory buckets read (one per probe).
    pub probes: u64,
    /// Probes whose bucket holds at least one cell.
    pub nonempty_probes: u64,
    /// Distinct 64-byte directory lines the probes read.
    pub directory_lines: u64,
    /// Bucket cells filtered on their low substring bits.
    pub cells: u64,
    /// Distinct 64-byte lines of cells read.
    pub cell_lines: u64,
    /// Cells that passed the filter: codes read and compared in full.
    pub candidates: u64,
    /// Distinct ids among the candidates.
    pub distinct_candidates: u64,
    /// Candidates whose code was within the radius (before the report-once rule).
    pub candidates_within: u64,
    /// Codes within the radius, each once.
    pub hits: u64,
}

const LINE_U32S: u32 = 16;

impl PdqIndex {
    /// Counts what [`PdqIndex::search`] does for `query` at `radius` on the multi-index path
    /// (whether or not the index would prefer to scan).
    pub fn search_profile(&self, query: &Code, radius: u32) -> SearchProfile {
        let mut profile = SearchProfile::default();
        let radii = substring_radii(self.tables.len(), radius);
        let id_mask = (1u32 << self.id_bits()) - 1;
        let mut probes = Vec::new();
        let mut directory_lines = Vec::new();
        let mut cell_lines = Vec::new();
        let mut ids = Vec::new();
        for (slot, (table, search_radius)) in self.tables.iter().zip(&radii).enumerate() {
            let Some(search_radius) = *search_radius else {
                continue;
            };
            let key = substring(query, table.bit_offset, table.bits);
            probes.clear();
            enumerate_buckets(table, slot as u32, key, search_radius, &mut probes);
            let low_key = key & ((1 << table.low_bits()) - 1);
            let tag = (slot as u64) << 32;
            for probe in &probes {
                let bucket = probe.bucket;
                directory_lines.push(tag | u64::from(bucket / LINE_U32S));
                let (Some(&start), Some(&end)) = (
                    table.directory.get(bucket as usize),
                    table.directory.get(bucket as usize + 1),
                ) else {
                    continue;
                };
                profile.probes += 1;
                if end > start {
                    profile.nonempty_probes += 1;
                    cell_lines.extend(
                        (start / LINE_U32S..=(end - 1) / LINE_U32S).map(|l| tag | u64::from(l)),
                    );
                }
                for &cell in table.cells.get(start as usize..end as usize).unwrap_or(&[]) {
                    profile.cells += 1;
                    if ((cell >> self.id_bits()) ^ low_key).count_ones() <= probe.budget {
                        profile.candidates += 1;
                        let id = cell & id_mask;
                        ids.push(id);
                        if self
                            .codes
                            .get(id as usize)
                            .is_some_and(|code| hamming(code, query) <= radius)
                        {
                            profile.candidates_within += 1;
                        }
                    }
                }
            }
        }
        let distinct = |values: &mut Vec<u64>| {
            values.sort_unstable();
            values.dedup();
            values.len() as u64
        };
        profile.directory_lines = distinct(&mut directory_lines);
        profile.cell_lines = distinct(&mut cell_lines);
        let mut ids: Vec<u64> = ids.into_iter().map(u64::from).collect();
        profile.distinct_candidates = distinct(&mut ids);
        profile.hits = ids
            .iter()
            .filter_map(|&id| self.codes.get(id as usize))
            .filter(|code| hamming(code, query) <= radius)
            .count() as u64;
        profile
    }
}
