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
//! - luma rows are made on demand for the first pass, so no full-size luma plane exists, and
//!   while the first pass runs over one strip it asks memory for the next strip's pixels, a
//!   few bytes per step ([`LumaRows::prefetch`]): asked for all at once, in the luma loop
//!   itself, they stalled that loop for a third of its time;
//! - the first round's row pass runs only as far ahead as the column pass needs, into a ring of
//!   rows a little taller than the column window, so no full-size filtered plane exists either
//!   (writing and re-reading one was a third of the hashing time on a 1 MP image);
//! - columns are filtered sixteen output rows at a time in runs of 32 columns, the sums held
//!   in registers down the sixteen rows and the quotients transposed straight into a strip for
//!   the second round's row pass, so no filtered row is stored;
//! - the second round's row pass over one strip runs in the same loop as the first round's row
//!   pass over the next, so four chains of dependent additions overlap instead of two;
//! - the second round only divides where a sample will be taken (64 columns, then 64 rows);
//! - every buffer lives in a [`Workspace`] that callers keep between images, so hashing image
//!   after image allocates and zeroes nothing.
//!
//! The kernels walk each phase of a running sum as one loop over zipped slices, so the inner
//! loops carry no bounds checks or phase tests (they were half the instructions).
//!
//! This module must never reassociate a sum or fuse a multiply-add into the reference's
//! arithmetic. Its one liberty with division is [`Divisor`]: a quotient from the reciprocal
//! with an exact-remainder correction, used only where a test has shown it to equal IEEE
//! division for every input.

use crate::tile::{Tile, transpose};
use running_box::{
    Divisor, Phases, SecondPass, add, box_all, box_both, box_sampled, divide, subtract,
};
use strips::{load_strip, store_strip};

/// Rows per strip: two AVX registers of `f32`, so each step of the running sums is two
/// independent dependency chains and the adder's latency is hidden.
pub(crate) const STRIP: usize = 16;
/// Side of the transposed tiles.
const TILE: usize = 8;
/// Tiles per strip height.
const GROUPS: usize = STRIP / TILE;
/// Samples per side.
const SAMPLES: usize = 64;

/// One column of a strip: the same pixel position in sixteen consecutive rows.
pub(crate) type Lanes = [f32; STRIP];

/// Where the filter gets its input: luma rows made on demand.
pub(crate) trait LumaRows {
    /// Write row `y`'s luma (`width` values) into `out`; may be asked more than once per row.
    fn row(&self, y: usize, out: &mut [f32]);

    /// A hint that row `y` will be asked for soon, from pixel `x` on (sixteen pixels): the
    /// filter calls it while it computes, so that memory delivers the pixels in time.
    #[inline(always)]
    fn prefetch(&self, _y: usize, _x: usize) {}

    /// Write the luma of rows `first..first + lanes` straight into a strip (lane `r` holds
    /// row `first + r`; lanes from `lanes` on hold zeroes), if this source can do that without
    /// going through whole rows; `false` if it cannot, and then the filter asks for rows.
    /// `AVX`: whether the caller runs with AVX2 and FMA enabled.
    #[inline(always)]
    fn strip<const AVX: bool>(&self, _first: usize, _lanes: usize, _strip: &mut [Lanes]) -> bool {
        false
    }
}

impl<F: Fn(usize, &mut [f32])> LumaRows for F {
    #[inline(always)]
    fn row(&self, y: usize, out: &mut [f32]) {
        self(y, out);
    }
}

/// Box window for one dimension: a 128th of it, rounded up (two rounds cover a 64th).
pub(crate) fn jarosz_window(dimension: usize) -> usize {
    dimension.div_ceil(128)
}

/// The reference's sample positions: the centres of 64 equal cells, in double precision.
#[inline(always)]
fn sample_positions(length: usize) -> [usize; SAMPLES] {
    std::array::from_fn(|i| (((i as f64 + 0.5) * length as f64) / 64.0) as usize)
}

/// Rows in the ring between the first round's row and column passes: the column window plus
/// two strips, since the column pass reads a strip's worth of rows beyond its window at once
/// and the row pass produces a whole strip ahead of the last row asked for; and a multiple of
/// the strip height so that every strip lands in consecutive rows.
fn ring_rows(height: usize) -> usize {
    (jarosz_window(height) + 2 * STRIP).next_multiple_of(STRIP)
}

/// The buffers [`downsample_64`] works in, kept by the caller from one image to the next.
/// Their contents never carry over: each image writes every value before reading it.
#[derive(Default)]
pub(crate) struct Workspace {
    ring: Vec<f32>,
    /// Sixteen luma rows on the way into the first row pass, its output strip on the way out
    /// (one buffer: the rows are transposed into `strip` before the output is written).
    staging: Vec<Lanes>,
    /// The first row pass's input.
    strip: Vec<Lanes>,
    /// The column pass's output, the second row pass's input.
    handed_on: Vec<Lanes>,
    column_sums: Vec<f32>,
    sampled_columns: Vec<[f32; SAMPLES]>,
}

impl Workspace {
    /// Size every buffer for a `width`×`height` image.
    fn prepare(&mut self, width: usize, height: usize) {
        self.ring.resize(ring_rows(height) * width, 0.0);
        self.staging.resize(width, [0.0; STRIP]);
        self.strip.resize(width, [0.0; STRIP]);
        self.handed_on.resize(width, [0.0; STRIP]);
        self.column_sums.resize(width, 0.0);
        self.sampled_columns.resize(height, [0.0; SAMPLES]);
    }

    /// Values held, so that a caller can let go of the buffers after a huge image.
    pub(crate) fn capacity(&self) -> usize {
        self.ring.capacity()
            + self.column_sums.capacity()
            + STRIP * (self.staging.capacity() + self.strip.capacity() + self.handed_on.capacity())
            + SAMPLES * self.sampled_columns.capacity()
    }
}

/// Filter the image whose luma rows `source.row(y, row)` writes (`width` values each) and return
/// the 64×64 samples. Requires `width, height >= 1`.
pub(crate) fn downsample_64(
    source: &impl LumaRows,
    work: &mut Workspace,
    width: usize,
    height: usize,
) -> [f32; SAMPLES * SAMPLES] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above; that is the only
        // requirement.
        return unsafe { downsample_64_avx2(source, work, width, height) };
    }
    downsample_64_with::<false>(source, work, width, height)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn downsample_64_avx2(
    source: &impl LumaRows,
    work: &mut Workspace,
    width: usize,
    height: usize,
) -> [f32; SAMPLES * SAMPLES] {
    downsample_64_with::<true>(source, work, width, height)
}

#[inline(always)]
fn downsample_64_with<const AVX: bool>(
    source: &impl LumaRows,
    work: &mut Workspace,
    width: usize,
    height: usize,
) -> [f32; SAMPLES * SAMPLES] {
    work.prepare(width, height);
    let Workspace {
        ring,
        staging,
        strip,
        handed_on,
        column_sums,
        sampled_columns,
    } = work;
    let row_window = jarosz_window(width);
    let column_window = jarosz_window(height);
    let columns = sample_positions(width);
    let rows = sample_positions(height);

    let mut first_round_rows = RowRound::<_, AVX> {
        source,
        ring,
        staging,
        strip,
        width,
        height,
        window: row_window,
        ring_rows: ring_rows(height),
        produced: 0,
    };
    // First round along columns, fused with the second round along rows: each strip of
    // filtered rows is passed on while still in cache, so no second full-size plane exists.
    // The second round along rows keeps full running sums but divides only at the 64 sampled
    // columns.
    let mut first_round_columns =
        ColumnRound::new(column_sums, &mut first_round_rows, height, column_window);
    for sampled in sampled_columns.chunks_mut(STRIP) {
        let lanes = sampled.len();
        first_round_columns.next_strip(&mut first_round_rows, handed_on);
        let mut picked = [[0f32; STRIP]; SAMPLES];
        // The second row pass is one dependency chain per eight rows, the first row pass too:
        // when the next column strip will need another first-pass strip, make it now, in the
        // same loop, so that the two passes' chains overlap.
        let due = first_round_columns.last_entering_next();
        if due.is_some_and(|t| first_round_rows.produced <= t) {
            first_round_rows.produce_strip(Some((&*handed_on, &columns, &mut picked)));
        } else {
            box_sampled::<STRIP, AVX>(handed_on, row_window, &columns, &mut picked);
        }
        store_strip::<AVX>(&picked, sampled.as_flattened_mut(), SAMPLES, lanes);
    }
    // Second round, columns: only the 64 sampled columns exist now, and only the 64 sampled
    // rows are divided out.
    let mut samples = [[0f32; SAMPLES]; SAMPLES];
    box_sampled::<SAMPLES, AVX>(sampled_columns, column_window, &rows, &mut samples);
    let mut flat = [0f32; SAMPLES * SAMPLES];
    flat.copy_from_slice(samples.as_flattened());
    flat
}

/// First round along rows, every output value, sixteen rows at a time and only on demand:
/// filtered row `t` lives in ring row `t % ring_rows` until the row pass comes round again.
struct RowRound<'a, F, const AVX: bool> {
    source: &'a F,
    ring: &'a mut [f32],
    /// Sixteen rows of luma, made on demand (the full-size luma plane never exists), then the
    /// filtered strip.
    staging: &'a mut [Lanes],
    /// The strip the row pass runs over; the column pass hands its output on in it too.
    strip: &'a mut [Lanes],
    width: usize,
    height: usize,
    window: usize,
    ring_rows: usize,
    /// Rows `0..produced` have been filtered (the last `ring_rows` of them are in the ring).
    produced: usize,
}

impl<F: LumaRows, const AVX: bool> RowRound<'_, F, AVX> {
    /// Filter strips until row `t` exists (or the image ends). The caller never needs a row
    /// more than the column window behind `t`, and the ring keeps a strip more than that.
    #[inline(always)]
    fn ensure(&mut self, t: usize) {
        while self.produced <= t && self.produced < self.height {
            self.produce_strip(None);
        }
    }

    /// Filter the next strip; with `second`, also run the second row pass over that strip
    /// (of the column pass's output) in the same loop, divided out at the sampled columns.
    #[inline(always)]
    fn produce_strip(&mut self, second: Option<SecondPass<'_>>) {
        let (width, first) = (self.width, self.produced);
        let lanes = STRIP.min(self.height - first);
        if !self.source.strip::<AVX>(first, lanes, self.strip) {
            let luma_rows = self.staging.as_flattened_mut();
            for (lane, row) in luma_rows.chunks_exact_mut(width).take(lanes).enumerate() {
                self.source.row(first + lane, row);
            }
            load_strip::<AVX>(luma_rows, width, lanes, self.strip);
        }
        // While the filter runs over this strip, memory delivers the next one's pixels: one
        // hint per step, each for sixteen pixels of one of the next sixteen rows in turn.
        let (source, next) = (self.source, first + lanes);
        let rows_ahead = STRIP.min(self.height.saturating_sub(next));
        let ahead = |o: usize| {
            let lane = o % STRIP;
            if lane < rows_ahead {
                source.prefetch(next + lane, o - lane);
            }
        };
        match second {
            Some((input, positions, picked)) => box_both::<AVX>(
                (self.strip, self.staging),
                (input, positions, picked),
                self.window,
                ahead,
            ),
            None => box_all::<STRIP, AVX>(self.strip, self.window, self.staging, ahead),
        }
        let slot = first % self.ring_rows;
        if let Some(target) = self.ring.get_mut(slot * width..(slot + lanes) * width) {
            store_strip::<AVX>(self.staging, target, width, lanes);
        }
        self.produced += lanes;
    }

    /// Filtered row `t`, which [`Self::ensure`] has produced and the ring still holds.
    #[inline(always)]
    fn row(&self, t: usize) -> &[f32] {
        self.ring().row(t)
    }

    /// The rows the ring holds.
    #[inline(always)]
    fn ring(&self) -> Ring<'_> {
        Ring {
            values: self.ring,
            width: self.width,
            rows: self.ring_rows,
        }
    }
}

/// The first round's filtered rows that the ring holds.
#[derive(Clone, Copy)]
struct Ring<'a> {
    values: &'a [f32],
    width: usize,
    rows: usize,
}

impl<'a> Ring<'a> {
    /// Filtered row `t`, which the row pass has produced and the ring still holds.
    #[inline(always)]
    fn row(self, t: usize) -> &'a [f32] {
        let slot = t % self.rows;
        self.values
            .get(slot * self.width..(slot + 1) * self.width)
            .unwrap_or(&[])
    }
}

/// The reference's column box filter, sixteen output rows at a time, handed on as a strip for
/// the second round's row pass: for each run of 8 columns, the running sums stay in a register
/// while they step down the sixteen rows, and the two 8×8 tiles of quotients are transposed
/// straight into the strip. No filtered row is ever stored. Same phases and arithmetic per
/// column as [`box_all`].
struct ColumnRound<'a> {
    phases: Phases,
    sums: &'a mut [f32],
    /// Output rows `0..next` have been handed on.
    next: usize,
    height: usize,
}

impl<'a> ColumnRound<'a> {
    /// Start the column pass: the reference's accumulation before the first output.
    #[inline(always)]
    fn new<F: LumaRows, const AVX: bool>(
        sums: &'a mut [f32],
        rows: &mut RowRound<'_, F, AVX>,
        height: usize,
        window: usize,
    ) -> Self {
        let phases = Phases::new(height, window);
        sums.fill(0.0);
        for t in 0..phases.warm_up {
            rows.ensure(t);
            for (s, &v) in sums.iter_mut().zip(rows.row(t)) {
                *s += v;
            }
        }
        Self {
            phases,
            sums,
            next: 0,
            height,
        }
    }

    /// The last input row the next strip of output rows will add, if it adds any.
    #[inline(always)]
    fn last_entering_next(&self) -> Option<usize> {
        let Phases {
            warm_up,
            growing,
            full,
            ..
        } = self.phases;
        let last_adding = (growing + full).checked_sub(1)?;
        if self.next > last_adding {
            return None;
        }
        let last = (self.next + STRIP - 1).min(self.height.saturating_sub(1));
        Some(last.min(last_adding) + warm_up)
    }

    /// Filter the next `min(16, rows left)` output rows into `strip` (one lane per row; lanes
    /// past the image's end hold values nobody reads).
    #[inline(always)]
    fn next_strip<F: LumaRows, const AVX: bool>(
        &mut self,
        rows: &mut RowRound<'_, F, AVX>,
        strip: &mut [Lanes],
    ) {
        let Phases {
            warm_up,
            growing,
            full,
            ..
        } = self.phases;
        let first = self.next;
        let lanes = STRIP.min(self.height.saturating_sub(first));
        // Which input row enters and which leaves at each output row, and the divisor there.
        let mut entering = [None; STRIP];
        let mut leaving = [None; STRIP];
        let mut divisors = [Divisor::new::<AVX>(1); STRIP];
        for lane in 0..lanes {
            let o = first + lane;
            if o < growing + full {
                entering[lane] = Some(o + warm_up);
            }
            if o >= growing {
                leaving[lane] = Some(o - growing);
            }
            divisors[lane] = Divisor::new::<AVX>(self.phases.count_at(o));
        }
        if let Some(&last) = entering.iter().flatten().max() {
            rows.ensure(last);
        }
        let ring = rows.ring();
        let row_of = |t: Option<usize>| t.map_or(&[][..], |t| ring.row(t));
        let entering: [&[f32]; STRIP] = std::array::from_fn(|lane| row_of(entering[lane]));
        let leaving: [&[f32]; STRIP] = std::array::from_fn(|lane| row_of(leaving[lane]));
        // Runs of 32 columns: four independent chains of sums per row step, so the adder's
        // latency is hidden (one run of 8 was a single chain sixteen rows long).
        // The quotient blocks live across calls: a fresh zeroed block per call was a `memset`
        // as large as the block's output.
        let mut wide_quotients = [[0f32; WIDE]; STRIP];
        let mut narrow_quotients = [[0f32; TILE]; STRIP];
        let (wide_sums, rest) = self.sums.as_chunks_mut::<WIDE>();
        let (wide_entering, wide_leaving) = (
            entering.map(|row| row.as_chunks::<WIDE>().0),
            leaving.map(|row| row.as_chunks::<WIDE>().0),
        );
        for (block, (sums, cells)) in wide_sums
            .iter_mut()
            .zip(strip.chunks_exact_mut(WIDE))
            .enumerate()
        {
            let inputs = (&wide_entering, &wide_leaving, block);
            column_block::<WIDE, AVX>(sums, inputs, &divisors, &mut wide_quotients, cells);
        }
        let done = wide_sums.len() * WIDE;
        let (sum_tiles, sum_tail) = rest.as_chunks_mut::<TILE>();
        let (entering_tiles, leaving_tiles) = (
            entering.map(|row| row.get(done..).unwrap_or(&[]).as_chunks::<TILE>().0),
            leaving.map(|row| row.get(done..).unwrap_or(&[]).as_chunks::<TILE>().0),
        );
        let narrow_cells = strip.get_mut(done..).unwrap_or_default();
        for (block, (sums, cells)) in sum_tiles
            .iter_mut()
            .zip(narrow_cells.chunks_exact_mut(TILE))
            .enumerate()
        {
            let inputs = (&entering_tiles, &leaving_tiles, block);
            column_block::<TILE, AVX>(sums, inputs, &divisors, &mut narrow_quotients, cells);
        }
        let tail_start = done + sum_tiles.len() * TILE;
        for (offset, (s, cell)) in sum_tail
            .iter_mut()
            .zip(strip.iter_mut().skip(tail_start))
            .enumerate()
        {
            let x = tail_start + offset;
            for lane in 0..STRIP {
                if let Some(&value) = entering[lane].get(x) {
                    *s += value;
                }
                if let Some(&value) = leaving[lane].get(x) {
                    *s -= value;
                }
                cell[lane] = divisors[lane].quotient(*s);
            }
        }
        self.next += lanes;
    }
}

/// Columns per run of the column pass's widest blocks.
const WIDE: usize = 32;

/// For each lane of a strip, one row of the ring cut into runs of `W` columns (empty when no
/// row enters or leaves there).
type RowRuns<'a, const W: usize> = [&'a [[f32; W]]; STRIP];

/// Sixteen output rows of the column pass for one run of `W` columns (`W` a multiple of 8):
/// per row, add the entering row's values, subtract the leaving row's (either may be absent),
/// divide into `quotients` (scratch: every value is written before it is read); then
/// transpose the quotients into the `W` cells of the strip.
#[inline(always)]
fn column_block<const W: usize, const AVX: bool>(
    sums: &mut [f32; W],
    (entering, leaving, block): (&RowRuns<'_, W>, &RowRuns<'_, W>, usize),
    divisors: &[Divisor; STRIP],
    quotients: &mut [[f32; W]; STRIP],
    cells: &mut [Lanes],
) {
    let mut sum = *sums;
    for (lane, quotient) in quotients.iter_mut().enumerate() {
        if let Some(values) = entering[lane].get(block) {
            add(&mut sum, values);
        }
        if let Some(values) = leaving[lane].get(block) {
            subtract(&mut sum, values);
        }
        divide(quotient, &sum, divisors[lane]);
    }
    *sums = sum;
    for (x0, cells) in (0..W).step_by(TILE).zip(cells.chunks_exact_mut(TILE)) {
        for group in 0..GROUPS {
            let mut tile: Tile = [[0.0; TILE]; TILE];
            for (row, quotient) in tile.iter_mut().zip(&quotients[group * TILE..]) {
                row.copy_from_slice(&quotient[x0..x0 + TILE]);
            }
            let transposed = transpose::<AVX>(&tile);
            for (cell, column) in cells.iter_mut().zip(&transposed) {
                cell[group * TILE..(group + 1) * TILE].copy_from_slice(column);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::running_box::MAX_CORRECTED_COUNT;
    use super::*;

    /// The reference's comment works 0..16 with window 7: 6,10,15,21,28,...,84,75,65,54.
    const SUMS: [u32; 16] = [
        6, 10, 15, 21, 28, 35, 42, 49, 56, 63, 70, 77, 84, 75, 65, 54,
    ];
    const COUNTS: [u32; 16] = [4, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 5, 4];

    #[test]
    fn both_kernels_match_the_reference_worked_example() {
        let input: Vec<[f32; 1]> = (0..16).map(|v| [v as f32]).collect();
        let positions = sample_positions(16);
        let mut all = vec![[0f32; 1]; 16];
        let mut sampled = [[0f32; 1]; SAMPLES];
        for corrected in [false, true] {
            if corrected {
                box_all::<1, true>(&input, 7, &mut all, |_| {});
                box_sampled::<1, true>(&input, 7, &positions, &mut sampled);
            } else {
                box_all::<1, false>(&input, 7, &mut all, |_| {});
                box_sampled::<1, false>(&input, 7, &positions, &mut sampled);
            }
            for (i, (sum, count)) in SUMS.iter().zip(COUNTS).enumerate() {
                let expected = *sum as f32 / count as f32;
                assert_eq!(all[i][0], expected, "every output at {i}");
                assert_eq!(Phases::new(16, 7).count_at(i), count as usize);
            }
            for (out, &position) in sampled.iter().zip(&positions) {
                assert_eq!(out[0], all[position][0], "sampled at {position}");
            }
        }
    }

    /// Every significand (all floats in [1, 2)) against every odd window size up to the
    /// largest corrected one; powers of two scale every step exactly, so this covers every
    /// normal sum and every size up to [`MAX_CORRECTED_COUNT`].
    #[test]
    fn corrected_reciprocal_equals_division_for_every_significand() {
        fn wrong_quotients(count: usize, stride: usize) -> usize {
            let divisor = Divisor::new::<true>(count);
            assert!(divisor.corrected);
            (1.0f32.to_bits()..2.0f32.to_bits())
                .step_by(stride)
                .map(f32::from_bits)
                .filter(|&sum| divisor.quotient(sum).to_bits() != (sum / count as f32).to_bits())
                .count()
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn wrong_quotients_fma(count: usize) -> usize {
            wrong_quotients(count, 1)
        }
        for count in (1..=MAX_CORRECTED_COUNT).step_by(2) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: AVX2 and FMA were detected just above.
                assert_eq!(unsafe { wrong_quotients_fma(count) }, 0, "size {count}");
                continue;
            }
            // Software FMA is slow: a stride through the significands.
            assert_eq!(wrong_quotients(count, 97), 0, "size {count}");
        }
        // A plain product by the reciprocal is not enough, which is why the correction exists.
        let reciprocal = 1.0f32 / 7.0;
        assert!((1..1000).any(|n| (n as f32 * reciprocal).to_bits() != (n as f32 / 7.0).to_bits()));
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

mod running_box;
mod strips;

#[cfg(test)]
mod equivalence_tests;
