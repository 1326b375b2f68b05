//! Whether an index read from a file holds the substring tables its codes build.
//!
//! A snapshot's checksum catches damage, not a file written wrong (a bug, a hand edit, a
//! hostile copy with its checksum redone), and a table that does not list a code in the bucket
//! its substring names hides that code from every search probing it: a silent miss. Comparing
//! each cell with its code would be one random read of the codes per cell (a 10M index holds
//! 100M cells: seconds of cache misses), so both sides are summed instead, each read in order:
//! the codes give every (bucket, low bits, id) a table must hold, the table gives the ones it
//! holds, and each is mixed with a key drawn at random for this check before being added up.
//! Equal sums with every bucket's ids increasing (as `build_table` lays them) mean the table is
//! the built one; a wrong table sums equal only by chance (about 2^-64), since its writer cannot
//! know the key.

use std::hash::{BuildHasher, RandomState};
use std::thread;

use super::{Code, PdqIndex, SubstringTable, substring};

impl PdqIndex {
    /// The position of the first substring table that is not the one [`PdqIndex::build`] makes
    /// from the codes with its layout, if any. Tables are checked on every core.
    pub(crate) fn first_table_not_built_from_codes(&self) -> Option<usize> {
        let key = RandomState::new().hash_one(0x5eed_u64);
        let id_bits = self.id_bits();
        let wrong = |slot: usize| !table_holds_codes(&self.codes, &self.tables[slot], id_bits, key);
        let workers = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(self.tables.len());
        if workers <= 1 || self.codes.len() < 100_000 {
            return (0..self.tables.len()).find(|&slot| wrong(slot));
        }
        thread::scope(|scope| {
            let wrong = &wrong;
            let handles: Vec<_> = (0..workers)
                .map(|worker| {
                    scope.spawn(move || {
                        (worker..self.tables.len())
                            .step_by(workers)
                            .find(|&slot| wrong(slot))
                    })
                })
                .collect();
            handles
                .into_iter()
                // A worker that panicked checked nothing: count its tables as wrong.
                .filter_map(|handle| handle.join().unwrap_or(Some(0)))
                .min()
        })
    }
}

/// murmur3's 64-bit finalizer: a bijection in which every input bit moves every output bit.
fn mix(value: u64) -> u64 {
    let mut x = value;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn table_holds_codes(codes: &[Code], table: &SubstringTable, id_bits: u32, key: u64) -> bool {
    let low_bits = table.bits - table.dir_bits;
    let low_mask = (1u64 << low_bits) - 1;
    // A cell as (bucket << 32 | low bits << id_bits | id): distinct for distinct ids.
    let mut expected = 0u64;
    for (id, code) in codes.iter().enumerate() {
        let key_bits = u64::from(substring(code, table.bit_offset, table.bits));
        let cell = ((key_bits & low_mask) << id_bits) | id as u64;
        expected = expected.wrapping_add(mix(((key_bits >> low_bits) << 32 | cell) ^ key));
    }
    let id_mask = (1u32 << id_bits) - 1;
    let mut held = 0u64;
    for (bucket, bounds) in table.directory.windows(2).enumerate() {
        let Some(cells) = table.cells.get(bounds[0] as usize..bounds[1] as usize) else {
            return false;
        };
        let mut previous = None;
        for &cell in cells {
            let id = cell & id_mask;
            if previous.is_some_and(|previous| previous >= id) {
                return false;
            }
            previous = Some(id);
            held = held.wrapping_add(mix(((bucket as u64) << 32 | u64::from(cell)) ^ key));
        }
    }
    expected == held
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdq_index::IndexParams;

    fn codes(n: usize, seed: u64) -> Vec<Code> {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix(state)
        };
        (0..n).map(|_| [next(), next(), next(), next()]).collect()
    }

    #[test]
    fn a_built_index_passes_and_any_moved_or_changed_cell_fails() {
        for n in [1, 2, 300, 5_000] {
            let index = PdqIndex::build(codes(n, n as u64), IndexParams::default()).unwrap();
            assert_eq!(index.first_table_not_built_from_codes(), None, "n={n}");
            let id_bits = index.id_bits();
            for slot in 0..index.tables.len() {
                // Another id in a cell (a code listed twice, another never).
                let mut forged = index.clone();
                let cell = &mut forged.tables[slot].cells[0];
                *cell ^= 1;
                if n > 1 {
                    assert_eq!(forged.first_table_not_built_from_codes(), Some(slot));
                }
                // The same id with other low bits: searches filter it out of its bucket.
                let mut forged = index.clone();
                if index.tables[slot].bits > index.tables[slot].dir_bits {
                    forged.tables[slot].cells[0] ^= 1 << id_bits;
                    assert_eq!(forged.first_table_not_built_from_codes(), Some(slot));
                }
                // Two cells of one bucket swapped: the same cells, not in the built order.
                let mut forged = index.clone();
                let table = &mut forged.tables[slot];
                let crowded = table.directory.windows(2).find(|b| b[1] - b[0] >= 2);
                if let Some(&[start, _]) = crowded {
                    table.cells.swap(start as usize, start as usize + 1);
                    assert_eq!(forged.first_table_not_built_from_codes(), Some(slot));
                }
                // A cell moved to the next bucket (the directory still consistent).
                let mut forged = index.clone();
                let directory = &mut forged.tables[slot].directory;
                if let Some(bucket) = (1..directory.len() - 1).find(|&b| directory[b] > 0) {
                    directory[bucket] -= 1;
                    assert_eq!(forged.first_table_not_built_from_codes(), Some(slot));
                }
            }
        }
    }

    #[test]
    fn the_check_on_several_cores_finds_the_first_wrong_table() {
        let index = PdqIndex::build(codes(120_000, 7), IndexParams::default()).unwrap();
        assert_eq!(index.first_table_not_built_from_codes(), None);
        let last = index.tables.len() - 1;
        for slot in [last, 1] {
            let mut forged = index.clone();
            forged.tables[slot].cells.swap(10, 20);
            forged.tables[last].cells[5] ^= 1 << index.id_bits();
            assert_eq!(
                forged.first_table_not_built_from_codes(),
                Some(slot.min(last))
            );
        }
    }
}
