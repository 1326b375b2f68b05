//! PDQ's downsampling: a Jarosz filter (two rounds of a box filter along rows, then along
//! columns) followed by taking 64×64 samples, with the reference's exact arithmetic.
//!
//! The reference (`downscaling.cpp`) filters the whole image four times. Every value is a
//! running sum divided by a window size, and a running sum's rounding depends on its whole
//! history, so sums must run over every pixel in the reference's order. What may change is
//! which *independent* sums run side by side, and which quotients are computed at all:
//!
//! - rows are filtered sixteen at a time, transposed (in 8×8 tiles) into a strip of
//!   `[f32; 16]` so that each step of the sixteen running sums is two vector operations;
//! - luma rows are made on demand for the first pass, so no full-size luma plane exists;
//! - the first round's row pass runs only as far ahead as the column pass needs, into a ring of
//!   rows a little taller than the column window, so no full-size filtered plane exists either
//!   (writing and re-reading one was a third of the hashing time on a 1 MP image);
//! - columns are filtered with all columns of a row as lanes, and each strip of filtered rows
//!   goes straight into the second round's row pass while it is in cache;
//! - the second round only divides where a sample will be taken (64 columns, then 64 rows).
//!
//! This module must never reassociate a sum, fuse a multiply-add, or divide by a reciprocal.

use crate::tile::{Tile, transpose};

/// Rows per strip: two AVX registers of `f32`, so each step of the running sums is two
/// independent dependency chains and the adder's latency is hidden.
const STRIP: usize = 16;
/// Side of the transposed tiles.
const TILE: usize = 8;
/// Tiles per strip height.
const GROUPS: usize = STRIP / TILE;

/// Box window for one dimension: a 128th of it, rounded up (two rounds cover a 64th).
pub(crate) fn jarosz_window(dimension: usize) -> usize {
    dimension.div_ceil(128)
}

/// The reference's sample positions: the centres of 64 equal cells, in double precision.
#[inline(always)]
fn sample_positions(length: usize) -> [usize; 64] {
    std::array::from_fn(|i| (((i as f64 + 0.5) * length as f64) / 64.0) as usize)
}

/// Rows in the ring between the first round's row and column passes: the column window plus a
/// strip, since the row pass produces a whole strip ahead of the row the column pass needs,
/// and a multiple of the strip height so that every strip lands in consecutive rows.
fn ring_rows(height: usize) -> usize {
    (jarosz_window(height) + STRIP).next_multiple_of(STRIP)
}

/// Values of scratch space [`downsample_64`] needs.
pub(crate) fn scratch_len(width: usize, height: usize) -> usize {
    ring_rows(height) * width
}

/// Filter the image whose luma rows `source(y, row)` writes (`width` values each) and return
/// the 64×64 samples. `scratch` holds at least [`scratch_len`] values.
/// Requires `width, height >= 1`.
pub(crate) fn downsample_64(
    source: &impl Fn(usize, &mut [f32]),
    scratch: &mut [f32],
    width: usize,
    height: usize,
) -> [f32; 64 * 64] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above; that is the only requirement.
        return unsafe { downsample_64_avx2(source, scratch, width, height) };
    }
    downsample_64_with::<false>(source, scratch, width, height)
}

/// The same code compiled with 256-bit vectors. AVX2 gives wider lanes, not different
/// arithmetic: IEEE single-precision add, subtract and divide round identically in every
/// width, and "fma" is deliberately not enabled (Rust never fuses, but say so anyway).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn downsample_64_avx2(
    source: &impl Fn(usize, &mut [f32]),
    scratch: &mut [f32],
    width: usize,
    height: usize,
) -> [f32; 64 * 64] {
    downsample_64_with::<true>(source, scratch, width, height)
}

#[inline(always)]
fn downsample_64_with<const AVX: bool>(
    source: &impl Fn(usize, &mut [f32]),
    scratch: &mut [f32],
    width: usize,
    height: usize,
) -> [f32; 64 * 64] {
    let row_window = jarosz_window(width);
    let column_window = jarosz_window(height);
    let columns = sample_positions(width);
    let rows = sample_positions(height);

    let ring_len = scratch_len(width, height);
    let ring = match scratch.get_mut(..ring_len) {
        Some(ring) => ring,
        None => return [0.0; 64 * 64],
    };
    let mut first_round_rows =
        RowRound::<_, AVX>::new(source, ring, width, height, row_window, ring_rows(height));

    // First round along columns, fused with the second round along rows: each strip of
    // filtered rows is passed on while still in cache, so no second full-size plane exists.
    // The second round along rows keeps full running sums but divides only at the 64 sampled
    // columns.
    let mut sampled_columns = vec![0f32; height * 64];
    let mut strip_rows = vec![0f32; STRIP * width];
    let mut strip = vec![[0f32; STRIP]; width];
    let mut first_round_columns = ColumnFilter::new(width, height, column_window);
    first_round_columns.warm_up(&mut first_round_rows);
    for first in (0..height).step_by(STRIP) {
        let lanes = STRIP.min(height - first);
        for row in strip_rows.chunks_exact_mut(width).take(lanes) {
            first_round_columns.next_row(&mut first_round_rows, row);
        }
        load_strip::<AVX>(&strip_rows, width, lanes, 0, &mut strip);
        box_strip_at::<AVX>(
            &strip,
            row_window,
            &columns,
            &mut sampled_columns,
            height,
            first,
        );
    }
    // Second round, columns: only the 64 sampled columns exist now.
    let mut filtered = vec![0f32; height * 64];
    box_lanes(&sampled_columns, &mut filtered, 64, height, column_window);

    let mut samples = [0f32; 64 * 64];
    for (sample_row, &y) in samples.chunks_exact_mut(64).zip(&rows) {
        sample_row.copy_from_slice(&filtered[y * 64..(y + 1) * 64]);
    }
    samples
}

/// The reference's phase lengths for a running box sum of `window` over `length` values:
/// accumulate without output, write with a growing window, write with the full window
/// (adding the entering value, then subtracting the leaving one), write with a shrinking one.
#[derive(Clone, Copy)]
struct Phases {
    warm_up: usize,
    growing: usize,
    full: usize,
    shrinking: usize,
}

impl Phases {
    fn new(length: usize, window: usize) -> Self {
        let half = (window + 2) / 2;
        Self {
            warm_up: half - 1,
            growing: window - half + 1,
            full: length - window,
            shrinking: half - 1,
        }
    }
}

/// The reference's `box1DFloat` over a sequence of lane vectors: `emit(index, sum, count)` is
/// called once per output position, in order, with the running sums and the window size the
/// reference divides by there.
#[inline(always)]
fn running_box<const L: usize>(
    input: &[[f32; L]],
    window: usize,
    mut emit: impl FnMut(usize, &[f32; L], f32),
) {
    let phases = Phases::new(input.len(), window);
    let mut sum = [0f32; L];
    let mut count = 0usize;
    let (mut left, mut right, mut out) = (0usize, 0usize, 0usize);
    for _ in 0..phases.warm_up {
        add(&mut sum, &input[right]);
        count += 1;
        right += 1;
    }
    for _ in 0..phases.growing {
        add(&mut sum, &input[right]);
        count += 1;
        emit(out, &sum, count as f32);
        right += 1;
        out += 1;
    }
    let full = count as f32;
    for _ in 0..phases.full {
        add(&mut sum, &input[right]);
        subtract(&mut sum, &input[left]);
        emit(out, &sum, full);
        left += 1;
        right += 1;
        out += 1;
    }
    for _ in 0..phases.shrinking {
        subtract(&mut sum, &input[left]);
        count -= 1;
        emit(out, &sum, count as f32);
        left += 1;
        out += 1;
    }
}

#[inline(always)]
fn add<const L: usize>(sum: &mut [f32; L], values: &[f32; L]) {
    for (s, v) in sum.iter_mut().zip(values) {
        *s += *v;
    }
}

#[inline(always)]
fn subtract<const L: usize>(sum: &mut [f32; L], values: &[f32; L]) {
    for (s, v) in sum.iter_mut().zip(values) {
        *s -= *v;
    }
}

/// Copy rows `first..first + STRIP` (zero-padded past `height`) into a strip of lane vectors,
/// transposing 8×8 tiles: for each run of 8 columns, one tile per group of 8 rows.
#[inline(always)]
fn load_strip<const AVX: bool>(
    image: &[f32],
    width: usize,
    height: usize,
    first: usize,
    strip: &mut [[f32; STRIP]],
) {
    let rows: [&[f32]; STRIP] = std::array::from_fn(|lane| {
        let y = first + lane;
        if y < height {
            image.get(y * width..(y + 1) * width).unwrap_or(&[])
        } else {
            &[]
        }
    });
    let full_tiles = width / TILE;
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
    for (x, cell) in strip
        .iter_mut()
        .enumerate()
        .take(width)
        .skip(full_tiles * TILE)
    {
        *cell = std::array::from_fn(|lane| rows[lane].get(x).copied().unwrap_or(0.0));
    }
}

/// Write a strip back as rows `first..` of `image` (rows past `height` are dropped).
#[inline(always)]
fn store_strip<const AVX: bool>(
    strip: &[[f32; STRIP]],
    image: &mut [f32],
    width: usize,
    height: usize,
    first: usize,
) {
    let lanes = STRIP.min(height - first);
    let Some(rows) = image.get_mut(first * width..(first + lanes) * width) else {
        return;
    };
    let full_tiles = width / TILE;
    for (tile_index, cells) in strip.chunks_exact(TILE).take(full_tiles).enumerate() {
        let x0 = tile_index * TILE;
        for group in 0..GROUPS {
            let tile: Tile = std::array::from_fn(|i| {
                cells[i][group * TILE..(group + 1) * TILE]
                    .try_into()
                    .unwrap_or([0.0; TILE])
            });
            let transposed = transpose::<AVX>(&tile);
            for (r, values) in transposed.iter().enumerate() {
                let lane = group * TILE + r;
                if lane < lanes
                    && let Some(target) = rows.get_mut(lane * width + x0..lane * width + x0 + TILE)
                {
                    target.copy_from_slice(values);
                }
            }
        }
    }
    for lane in 0..lanes {
        let row = &mut rows[lane * width..(lane + 1) * width];
        for (value, cell) in row.iter_mut().zip(strip).skip(full_tiles * TILE) {
            *value = cell[lane];
        }
    }
}

/// First round along rows, every output value, sixteen rows at a time and only on demand:
/// filtered row `t` lives in ring row `t % ring_rows` until the row pass comes round again.
struct RowRound<'a, F, const AVX: bool> {
    source: &'a F,
    ring: &'a mut [f32],
    width: usize,
    height: usize,
    window: usize,
    ring_rows: usize,
    /// Rows `0..produced` have been filtered (the last `ring_rows` of them are in the ring).
    produced: usize,
    /// Sixteen rows of luma, made on demand: the full-size luma plane never exists.
    luma_rows: Vec<f32>,
    strip_in: Vec<[f32; STRIP]>,
    strip_out: Vec<[f32; STRIP]>,
}

impl<'a, F: Fn(usize, &mut [f32]), const AVX: bool> RowRound<'a, F, AVX> {
    #[inline(always)]
    fn new(
        source: &'a F,
        ring: &'a mut [f32],
        width: usize,
        height: usize,
        window: usize,
        ring_rows: usize,
    ) -> Self {
        Self {
            source,
            ring,
            width,
            height,
            window,
            ring_rows,
            produced: 0,
            luma_rows: vec![0f32; STRIP * width],
            strip_in: vec![[0f32; STRIP]; width],
            strip_out: vec![[0f32; STRIP]; width],
        }
    }

    /// Filter strips until row `t` exists (or the image ends). The caller never needs a row
    /// more than the column window behind `t`, and the ring keeps a strip more than that.
    #[inline(always)]
    fn ensure(&mut self, t: usize) {
        while self.produced <= t && self.produced < self.height {
            self.produce_strip();
        }
    }

    #[inline(always)]
    fn produce_strip(&mut self) {
        let (width, first) = (self.width, self.produced);
        let lanes = STRIP.min(self.height - first);
        for (lane, row) in self
            .luma_rows
            .chunks_exact_mut(width)
            .take(lanes)
            .enumerate()
        {
            (self.source)(first + lane, row);
        }
        load_strip::<AVX>(&self.luma_rows, width, lanes, 0, &mut self.strip_in);
        let strip_out = &mut self.strip_out;
        running_box(&self.strip_in, self.window, |x, sum, count| {
            if let Some(cell) = strip_out.get_mut(x) {
                for (o, s) in cell.iter_mut().zip(sum) {
                    *o = *s / count;
                }
            }
        });
        let slot = first % self.ring_rows;
        if let Some(target) = self.ring.get_mut(slot * width..(slot + lanes) * width) {
            store_strip::<AVX>(&self.strip_out, target, width, lanes, 0);
        }
        self.produced += lanes;
    }

    /// Filtered row `t`, which [`Self::ensure`] has produced and the ring still holds.
    #[inline(always)]
    fn row(&self, t: usize) -> &[f32] {
        let slot = t % self.ring_rows;
        self.ring
            .get(slot * self.width..(slot + 1) * self.width)
            .unwrap_or(&[])
    }
}

/// Second round along one strip of rows: running sums over every pixel, quotients only at
/// `columns` (non-decreasing; a position repeats when the image is narrower than 64), written
/// to rows `first..` of `output`, which has 64 values per row.
#[inline(always)]
fn box_strip_at<const AVX: bool>(
    strip: &[[f32; STRIP]],
    window: usize,
    columns: &[usize; 64],
    output: &mut [f32],
    height: usize,
    first: usize,
) {
    let mut picked = [[0f32; STRIP]; 64];
    let mut next = 0usize;
    running_box(strip, window, |x, sum, count| {
        while next < 64 && columns[next] == x {
            for (o, s) in picked[next].iter_mut().zip(sum) {
                *o = *s / count;
            }
            next += 1;
        }
    });
    store_strip::<AVX>(&picked, output, 64, height, first);
}

/// The reference's column box filter with every column of a row as a lane, producing one
/// output row per call, in order: the same phases and arithmetic as [`running_box`], as a
/// state machine so that its input rows can be made just in time and its output consumed
/// while in cache.
struct ColumnFilter {
    phases: Phases,
    sum: Vec<f32>,
    count: usize,
    left: usize,
    right: usize,
    out: usize,
}

impl ColumnFilter {
    #[inline(always)]
    fn new(lanes: usize, length: usize, window: usize) -> Self {
        Self {
            phases: Phases::new(length, window),
            sum: vec![0f32; lanes],
            count: 0,
            left: 0,
            right: 0,
            out: 0,
        }
    }

    /// The reference's accumulation before the first output; call once, first.
    #[inline(always)]
    fn warm_up<F: Fn(usize, &mut [f32]), const AVX: bool>(
        &mut self,
        rows: &mut RowRound<'_, F, AVX>,
    ) {
        for _ in 0..self.phases.warm_up {
            self.add_right(rows);
        }
    }

    #[inline(always)]
    fn add_right<F: Fn(usize, &mut [f32]), const AVX: bool>(
        &mut self,
        rows: &mut RowRound<'_, F, AVX>,
    ) {
        rows.ensure(self.right);
        for (s, &v) in self.sum.iter_mut().zip(rows.row(self.right)) {
            *s += v;
        }
        self.count += 1;
        self.right += 1;
    }

    /// Write the next output row into `out_row` (`lanes` values); past the end, do nothing.
    #[inline(always)]
    fn next_row<F: Fn(usize, &mut [f32]), const AVX: bool>(
        &mut self,
        rows: &mut RowRound<'_, F, AVX>,
        out_row: &mut [f32],
    ) {
        let Phases {
            growing,
            full,
            shrinking,
            ..
        } = self.phases;
        if self.out < growing {
            self.add_right(rows);
        } else if self.out < growing + full {
            rows.ensure(self.right);
            let (entering, leaving) = (rows.row(self.right), rows.row(self.left));
            for ((s, &add), &sub) in self.sum.iter_mut().zip(entering).zip(leaving) {
                *s += add;
                *s -= sub;
            }
            self.left += 1;
            self.right += 1;
        } else if self.out < growing + full + shrinking {
            for (s, &sub) in self.sum.iter_mut().zip(rows.row(self.left)) {
                *s -= sub;
            }
            self.count -= 1;
            self.left += 1;
        } else {
            return;
        }
        let divisor = self.count as f32;
        for (value, s) in out_row.iter_mut().zip(&self.sum) {
            *value = *s / divisor;
        }
        self.out += 1;
    }
}

/// Box filter along columns, all `lanes` columns of a row advancing together. Sequence `l` is
/// `input[t * lanes + l]` for `t` in `0..length`; same arithmetic as [`running_box`].
#[inline(always)]
fn box_lanes(input: &[f32], output: &mut [f32], lanes: usize, length: usize, window: usize) {
    let phases = Phases::new(length, window);
    let row = |t: usize| &input[t * lanes..(t + 1) * lanes];
    let mut sum = vec![0f32; lanes];
    let mut count = 0usize;
    let (mut left, mut right, mut out) = (0usize, 0usize, 0usize);
    for _ in 0..phases.warm_up {
        for (s, &v) in sum.iter_mut().zip(row(right)) {
            *s += v;
        }
        count += 1;
        right += 1;
    }
    for _ in 0..phases.growing {
        let divisor = (count + 1) as f32;
        let out_row = &mut output[out * lanes..(out + 1) * lanes];
        for ((s, &v), o) in sum.iter_mut().zip(row(right)).zip(out_row) {
            *s += v;
            *o = *s / divisor;
        }
        count += 1;
        right += 1;
        out += 1;
    }
    let divisor = count as f32;
    for _ in 0..phases.full {
        let out_row = &mut output[out * lanes..(out + 1) * lanes];
        for (((s, &entering), &leaving), o) in
            sum.iter_mut().zip(row(right)).zip(row(left)).zip(out_row)
        {
            *s += entering;
            *s -= leaving;
            *o = *s / divisor;
        }
        left += 1;
        right += 1;
        out += 1;
    }
    for _ in 0..phases.shrinking {
        count -= 1;
        let divisor = count as f32;
        let out_row = &mut output[out * lanes..(out + 1) * lanes];
        for ((s, &leaving), o) in sum.iter_mut().zip(row(left)).zip(out_row) {
            *s -= leaving;
            *o = *s / divisor;
        }
        left += 1;
        out += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's comment works 0..16 with window 7: 6,10,15,21,28,...,84,75,65,54.
    const SUMS: [u32; 16] = [
        6, 10, 15, 21, 28, 35, 42, 49, 56, 63, 70, 77, 84, 75, 65, 54,
    ];
    const COUNTS: [u32; 16] = [4, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 5, 4];

    #[test]
    fn both_kernels_match_the_reference_worked_example() {
        let input: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut by_lanes = vec![0f32; 16];
        box_lanes(&input, &mut by_lanes, 1, 16, 7);
        let strip: Vec<[f32; 1]> = input.iter().map(|&v| [v]).collect();
        let mut by_strip = [0f32; 16];
        running_box(&strip, 7, |x, sum, count| by_strip[x] = sum[0] / count);
        for (i, (sum, count)) in SUMS.iter().zip(COUNTS).enumerate() {
            let expected = *sum as f32 / count as f32;
            assert_eq!(by_lanes[i], expected, "lanes kernel at {i}");
            assert_eq!(by_strip[i], expected, "strip kernel at {i}");
        }
    }

    #[test]
    fn window_is_ceil_of_a_128th() {
        assert_eq!(jarosz_window(1), 1);
        assert_eq!(jarosz_window(128), 1);
        assert_eq!(jarosz_window(129), 2);
        assert_eq!(jarosz_window(1024), 8);
    }

    #[test]
    fn sample_positions_repeat_for_narrow_images() {
        let narrow = sample_positions(10);
        assert_eq!(narrow[0], 0);
        assert_eq!(narrow[63], 9);
        assert!(narrow.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(sample_positions(64), std::array::from_fn(|i| i));
    }
}

#[cfg(test)]
mod equivalence_tests;
