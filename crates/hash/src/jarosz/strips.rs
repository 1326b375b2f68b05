//! Moving sixteen rows between row-major layout and a strip of lane vectors (one
//! `[f32; 16]` per column), through 8×8 tile transposes. Pure data movement: it cannot change
//! a hash.

use super::{GROUPS, Lanes, STRIP, TILE};
use crate::tile::{Tile, transpose};

/// Copy the first `lanes` rows of `image` (zero-padded to sixteen) into a strip of lane
/// vectors, transposing 8×8 tiles: for each run of 8 columns, one tile per group of 8 rows.
#[inline(always)]
pub(super) fn load_strip<const AVX: bool>(
    image: &[f32],
    width: usize,
    lanes: usize,
    strip: &mut [Lanes],
) {
    let rows: [&[f32]; STRIP] = std::array::from_fn(|lane| {
        if lane < lanes {
            image.get(lane * width..(lane + 1) * width).unwrap_or(&[])
        } else {
            &[]
        }
    });
    let full_tiles = width / TILE;
    if rows.iter().all(|row| row.len() == width) {
        // Every row present (all strips but an image's last): no per-value tests.
        let tiles: [&[[f32; TILE]]; STRIP] =
            std::array::from_fn(|lane| rows[lane].as_chunks::<TILE>().0);
        for (tile_index, cells) in strip.chunks_exact_mut(TILE).take(full_tiles).enumerate() {
            let cells: &mut [Lanes; TILE] = match cells.try_into() {
                Ok(cells) => cells,
                Err(_) => continue,
            };
            for group in 0..GROUPS {
                // A loop, not `array::from_fn`: that one is not always inlined into the AVX2
                // build, and then every tile goes through a call and a copy.
                let mut tile: Tile = [[0.0; TILE]; TILE];
                for (row, source) in tile.iter_mut().zip(&tiles[group * TILE..]) {
                    if let Some(values) = source.get(tile_index) {
                        *row = *values;
                    }
                }
                let transposed = transpose::<AVX>(&tile);
                for (cell, column) in cells.iter_mut().zip(&transposed) {
                    cell[group * TILE..(group + 1) * TILE].copy_from_slice(column);
                }
            }
        }
    } else {
        for (tile_index, cells) in strip.chunks_exact_mut(TILE).take(full_tiles).enumerate() {
            let x0 = tile_index * TILE;
            for group in 0..GROUPS {
                let tile: Tile = std::array::from_fn(|r| {
                    rows[group * TILE + r]
                        .get(x0..x0 + TILE)
                        .and_then(|values| values.try_into().ok())
                        .unwrap_or([0.0; TILE])
                });
                let transposed = transpose::<AVX>(&tile);
                for (cell, column) in cells.iter_mut().zip(&transposed) {
                    cell[group * TILE..(group + 1) * TILE].copy_from_slice(column);
                }
            }
        }
    }
    for (x, cell) in strip
        .iter_mut()
        .enumerate()
        .take(width)
        .skip(full_tiles * TILE)
    {
        *cell = std::array::from_fn(|lane| rows[lane].get(x).copied().unwrap_or(0.0));
    }
}

/// Write the first `lanes` lanes of a strip as the first `lanes` rows of `image`.
#[inline(always)]
pub(super) fn store_strip<const AVX: bool>(
    strip: &[Lanes],
    image: &mut [f32],
    width: usize,
    lanes: usize,
) {
    let Some(image) = image.get_mut(..lanes * width) else {
        return;
    };
    let full_tiles = width / TILE;
    let mut rows = image.chunks_exact_mut(width);
    let mut rows: [&mut [f32]; STRIP] = std::array::from_fn(|_| rows.next().unwrap_or_default());
    if lanes == STRIP {
        let mut tiles = rows.each_mut().map(|row| row.as_chunks_mut::<TILE>().0);
        for (tile_index, cells) in strip.chunks_exact(TILE).take(full_tiles).enumerate() {
            for group in 0..GROUPS {
                let mut tile: Tile = [[0.0; TILE]; TILE];
                for (row, cell) in tile.iter_mut().zip(cells) {
                    row.copy_from_slice(&cell[group * TILE..(group + 1) * TILE]);
                }
                let transposed = transpose::<AVX>(&tile);
                for (row, values) in tiles[group * TILE..].iter_mut().zip(&transposed) {
                    if let Some(target) = row.get_mut(tile_index) {
                        *target = *values;
                    }
                }
            }
        }
    } else {
        for (tile_index, cells) in strip.chunks_exact(TILE).take(full_tiles).enumerate() {
            let x0 = tile_index * TILE;
            for group in 0..GROUPS {
                let tile: Tile = std::array::from_fn(|i| {
                    cells[i][group * TILE..(group + 1) * TILE]
                        .try_into()
                        .unwrap_or([0.0; TILE])
                });
                let transposed = transpose::<AVX>(&tile);
                for (row, values) in rows[group * TILE..].iter_mut().zip(&transposed) {
                    if let Some(target) = row.get_mut(x0..x0 + TILE) {
                        target.copy_from_slice(values);
                    }
                }
            }
        }
    }
    for (lane, row) in rows.iter_mut().enumerate() {
        for (value, cell) in row.iter_mut().zip(strip).skip(full_tiles * TILE) {
            *value = cell[lane];
        }
    }
}
