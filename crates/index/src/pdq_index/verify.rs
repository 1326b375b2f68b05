//! Whether an index read from a file holds the substring tables its codes build.
//!
//! A snapshot's checksum catches damage, not a file written wrong (a bug, a hand edit, a
//! hostile copy with its checksum redone), and a table that does not list a code in the bucket
//! its substring names hides that code from every search probing it: a silent miss. Comparing
//! each cell with its code would be one random read of the codes per cell (a 10M index holds
//! 100M cells: seconds of cache misses), so both sides are summed instead, each read in order:
//! the codes give every (bucket, low bits, id) a table must hold, the table gives the ones it
//! holds, and each is mixed with a key drawn at random for this check before being added up.
//! The codes are read once for all tables.
//! Equal sums with every bucket's ids increasing (as `build_table` lays them) mean the table is
//! the built one; a wrong table sums equal only by chance (about 2^-64), since its writer cannot
//! know the key.

use std::hash::{BuildHasher, RandomState};
use std::thread;

use super::{Code, PdqIndex, SubstringTable, substring};

impl PdqIndex {
    /// The position of the first substring table that is not the one [`PdqIndex::build`] makes
    /// from the codes with its layout, if any. Both sides are split over the cores: the codes
    /// in ranges (each read once for every table), the tables one by one.
    pub(crate) fn first_table_not_built_from_codes(&self) -> Option<usize> {
        if self.tables.is_empty() {
            return None;
        }
        let random = RandomState::new();
        let key = Key(random.hash_one(1u8), random.hash_one(2u8) | 1);
        let id_bits = self.id_bits();
        let workers = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(self.tables.len());
        let (expected, held) = if workers <= 1 || self.codes.len() < 100_000 {
            let held = (0..self.tables.len())
                .map(|slot| table_sum(&self.tables[slot], id_bits, key))
                .collect();
            (codes_sums(&self.codes, &self.tables, id_bits, key), held)
        } else {
            thread::scope(|scope| {
                let chunk = self.codes.len().div_ceil(workers);
                let expected: Vec<_> = self
                    .codes
                    .chunks(chunk)
                    .enumerate()
                    .map(|(part, codes)| {
                        let tables = &self.tables;
                        let first_id = part * chunk;
                        scope.spawn(move || codes_sums_from(codes, first_id, tables, id_bits, key))
                    })
                    .collect();
                let held: Vec<_> = (0..workers)
                    .map(|worker| {
                        scope.spawn(move || {
                            (worker..self.tables.len())
                                .step_by(workers)
                                .map(|slot| (slot, table_sum(&self.tables[slot], id_bits, key)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                // A worker that panicked summed nothing: its part can match no table.
                let mut sums = vec![0u64; self.tables.len()];
                for part in expected {
                    match part.join() {
                        Ok(part) => sums
                            .iter_mut()
                            .zip(part)
                            .for_each(|(sum, add)| *sum = sum.wrapping_add(add)),
                        Err(_) => return (sums, vec![None; self.tables.len()]),
                    }
                }
                let mut tables = vec![None; self.tables.len()];
                for worker in held {
                    let Ok(done) = worker.join() else {
                        return (sums, vec![None; self.tables.len()]);
                    };
                    for (slot, sum) in done {
                        tables[slot] = sum;
                    }
                }
                (sums, tables)
            })
        };
        expected
            .iter()
            .zip(&held)
            .position(|(expected, held)| *held != Some(*expected))
    }
}

/// The key of one check: cells are mixed as `fold((cell ^ .0) × .1)`, `.1` odd.
#[derive(Debug, Clone, Copy)]
struct Key(u64, u64);

/// A folded multiply (as wyhash mixes): the 128-bit product's halves xored, so that every
/// input bit moves the output in a way no sum of other cells can undo without the key.
fn mix(cell: u64, key: Key) -> u64 {
    let product = u128::from(cell ^ key.0) * u128::from(key.1);
    (product as u64) ^ ((product >> 64) as u64)
}

/// A cell as the check sees it: (bucket << 32 | low bits << id_bits | id), distinct for
/// distinct ids.
fn cell_key(bucket: u64, cell: u64) -> u64 {
    (bucket << 32) | cell
}

fn codes_sums(codes: &[Code], tables: &[SubstringTable], id_bits: u32, key: Key) -> Vec<u64> {
    codes_sums_from(codes, 0, tables, id_bits, key)
}

/// For each table, the sum of the cells `codes` (ids from `first_id`) must put in it.
fn codes_sums_from(
    codes: &[Code],
    first_id: usize,
    tables: &[SubstringTable],
    id_bits: u32,
    key: Key,
) -> Vec<u64> {
    let layouts: Vec<(u32, u32, u32)> = tables
        .iter()
        .map(|t| (t.bit_offset, t.bits, t.bits - t.dir_bits))
        .collect();
    let mut sums = vec![0u64; tables.len()];
    for (id, code) in (first_id..).zip(codes) {
        for (sum, &(bit_offset, bits, low_bits)) in sums.iter_mut().zip(&layouts) {
            let value = u64::from(substring(code, bit_offset, bits));
            let low = value & ((1u64 << low_bits) - 1);
            let cell = cell_key(value >> low_bits, (low << id_bits) | id as u64);
            *sum = sum.wrapping_add(mix(cell, key));
        }
    }
    sums
}

/// The sum of the cells `table` holds, or `None` if a bucket's ids are not increasing (or
/// the directory points outside the cells).
fn table_sum(table: &SubstringTable, id_bits: u32, key: Key) -> Option<u64> {
    let id_mask = (1u32 << id_bits) - 1;
    let mut sum = 0u64;
    for (bucket, bounds) in table.directory.windows(2).enumerate() {
        let cells = table.cells.get(bounds[0] as usize..bounds[1] as usize)?;
        let mut previous = None;
        for &cell in cells {
            let id = cell & id_mask;
            if previous.is_some_and(|previous| previous >= id) {
                return None;
            }
            previous = Some(id);
            sum = sum.wrapping_add(mix(cell_key(bucket as u64, u64::from(cell)), key));
        }
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdq_index::IndexParams;

    fn codes(n: usize, seed: u64) -> Vec<Code> {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix(state, Key(0, 0xff51_afd7_ed55_8ccd))
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
