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
type Lanes = [f32; STRIP];

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

/// Filter the image whose luma rows `source(y, row)` writes (`width` values each) and return
/// the 64×64 samples. Requires `width, height >= 1`.
pub(crate) fn downsample_64(
    source: &impl Fn(usize, &mut [f32]),
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

/// The same code compiled with 256-bit vectors and fused multiply-add. AVX2 gives wider lanes,
/// not different arithmetic: IEEE single-precision add, subtract and divide round identically
/// in every width; Rust never contracts a multiply and an add into an FMA by itself, so the
/// only FMAs are [`Divisor`]'s, which are exact.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn downsample_64_avx2(
    source: &impl Fn(usize, &mut [f32]),
    work: &mut Workspace,
    width: usize,
    height: usize,
) -> [f32; SAMPLES * SAMPLES] {
    downsample_64_with::<true>(source, work, width, height)
}

#[inline(always)]
fn downsample_64_with<const AVX: bool>(
    source: &impl Fn(usize, &mut [f32]),
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

/// The reference's phase lengths for a running box sum of `window` over `length` values:
/// accumulate without output, write with a growing window, write with the full window
/// (adding the entering value, then subtracting the leaving one), write with a shrinking one.
/// Output `o` of the growing and full phases adds input `o + warm_up`; output `o` of the full
/// and shrinking phases subtracts input `o - growing`.
#[derive(Clone, Copy)]
struct Phases {
    warm_up: usize,
    growing: usize,
    full: usize,
    shrinking: usize,
}

impl Phases {
    /// Requires `1 <= window <= length` (true of every `jarosz_window`).
    fn new(length: usize, window: usize) -> Self {
        let half = (window + 2) / 2;
        Self {
            warm_up: half - 1,
            growing: window - half + 1,
            full: length - window,
            shrinking: half - 1,
        }
    }

    /// The window size the reference divides output `o` by.
    #[inline(always)]
    fn count_at(&self, o: usize) -> usize {
        let window = self.warm_up + self.growing;
        if o < self.growing {
            self.warm_up + o + 1
        } else if o < self.growing + self.full {
            window
        } else {
            // Past the full phase the window shrinks by one per output, down to
            // `window - shrinking` at the last.
            (window + self.growing + self.full - o - 1).max(window - self.shrinking)
        }
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

/// Window sizes up to this one may be divided by [`Divisor`]'s corrected reciprocal: the test
/// `corrected_reciprocal_equals_division_for_every_significand` checks every odd size up to it
/// against every significand, which covers every size up to it and every finite sum the
/// filter can make (module docs of [`Divisor`]). Images up to 16,384 pixels a side.
const MAX_CORRECTED_COUNT: usize = 128;

/// A window size to divide running sums by, bit for bit as IEEE `f32` division does.
///
/// Where the CPU has FMA and the size is at most [`MAX_CORRECTED_COUNT`], the quotient is
/// q = q₀ + (s − c·q₀)·y with y = RN(1/c) and q₀ = RN(s·y): the remainder is exact in one
/// FMA, and one correction of a quotient that close gives the correctly rounded one
/// (Markstein's theorem), at two FMAs and a multiply instead of a division, which the divider
/// can only start every few cycles. Every step scales exactly with powers of two in `s` and in
/// `c`, so checking all significands against all odd sizes covers every normal sum; sums are
/// never subnormal (nonzero ones are at least 2⁻⁶⁰: they are built from lumas ≥ 0.114, whose
/// ulps are ≥ 2⁻²⁷), and zero gives +0 as division does (−0 never arises: sums start at +0
/// and x − x is +0).
#[derive(Clone, Copy)]
struct Divisor {
    count: f32,
    reciprocal: f32,
    corrected: bool,
}

impl Divisor {
    /// `FMA`: whether the caller runs with fused multiply-add in hardware.
    #[inline(always)]
    fn new<const FMA: bool>(count: usize) -> Self {
        let value = count as f32;
        Self {
            count: value,
            reciprocal: 1.0 / value,
            corrected: FMA && count <= MAX_CORRECTED_COUNT,
        }
    }

    #[inline(always)]
    fn quotient(self, sum: f32) -> f32 {
        if self.corrected {
            let estimate = sum * self.reciprocal;
            let remainder = (-estimate).mul_add(self.count, sum);
            remainder.mul_add(self.reciprocal, estimate)
        } else {
            sum / self.count
        }
    }
}

#[inline(always)]
fn divide<const L: usize>(out: &mut [f32; L], sum: &[f32; L], divisor: Divisor) {
    if divisor.corrected {
        for (o, s) in out.iter_mut().zip(sum) {
            let estimate = *s * divisor.reciprocal;
            let remainder = (-estimate).mul_add(divisor.count, *s);
            *o = remainder.mul_add(divisor.reciprocal, estimate);
        }
    } else {
        for (o, s) in out.iter_mut().zip(sum) {
            *o = *s / divisor.count;
        }
    }
}

/// The reference's `box1DFloat` over a sequence of lane vectors, every output written:
/// `output[o]` is the running sum at `o` divided by the window size there. `output` is as
/// long as `input`.
#[inline(always)]
fn box_all<const L: usize, const FMA: bool>(
    input: &[[f32; L]],
    window: usize,
    output: &mut [[f32; L]],
) {
    let n = input.len();
    let p = Phases::new(n, window);
    let (Some((warm_up, rest)), Some((growing_out, rest_out))) = (
        input.split_at_checked(p.warm_up),
        output.split_at_mut_checked(p.growing),
    ) else {
        return;
    };
    let Some((full_out, shrinking_out)) = rest_out.split_at_mut_checked(p.full) else {
        return;
    };
    let mut sum = [0f32; L];
    for values in warm_up {
        add(&mut sum, values);
    }
    let mut count = p.warm_up;
    for (values, out) in rest.iter().zip(growing_out) {
        add(&mut sum, values);
        count += 1;
        divide(out, &sum, Divisor::new::<FMA>(count));
    }
    let full = Divisor::new::<FMA>(window);
    let entering = input.get(window..).unwrap_or(&[]);
    for ((entering, leaving), out) in entering.iter().zip(input).zip(full_out) {
        add(&mut sum, entering);
        subtract(&mut sum, leaving);
        divide(out, &sum, full);
    }
    let leaving = input.get(n - window..).unwrap_or(&[]);
    for (leaving, out) in leaving.iter().zip(shrinking_out) {
        subtract(&mut sum, leaving);
        count -= 1;
        divide(out, &sum, Divisor::new::<FMA>(count));
    }
}

/// The second row pass's share of [`box_both`]: its input strip, the sampled columns and
/// where their quotients go.
type SecondPass<'a> = (&'a [Lanes], &'a [usize; SAMPLES], &'a mut [Lanes; SAMPLES]);

/// [`box_all`] over `first` and [`box_sampled`] over `second` (same length and window) in one
/// loop: four independent chains of sums per step instead of two, the same arithmetic for
/// each.
#[inline(always)]
fn box_both<const FMA: bool>(
    (first, first_out): (&[Lanes], &mut [Lanes]),
    (second, positions, picked): SecondPass<'_>,
    window: usize,
) {
    let n = first.len();
    if second.len() != n || first_out.len() != n {
        box_all::<STRIP, FMA>(first, window, first_out);
        box_sampled::<STRIP, FMA>(second, window, positions, picked);
        return;
    }
    let p = Phases::new(n, window);
    let (mut sum, mut second_sum) = ([0f32; STRIP], [0f32; STRIP]);
    let mut next = 0usize;
    for (values, second_values) in first.iter().zip(second).take(p.warm_up) {
        add(&mut sum, values);
        add(&mut second_sum, second_values);
    }
    let entering = first.iter().zip(second).skip(p.warm_up);
    let mut count = p.warm_up;
    for (o, ((values, second_values), out)) in
        entering.zip(&mut *first_out).take(p.growing).enumerate()
    {
        add(&mut sum, values);
        add(&mut second_sum, second_values);
        count += 1;
        let divisor = Divisor::new::<FMA>(count);
        divide(out, &sum, divisor);
        pick(o, &second_sum, divisor, positions, picked, &mut next);
    }
    let full = Divisor::new::<FMA>(window);
    let entering = first.iter().zip(second).skip(window);
    let leaving = first.iter().zip(second);
    let outputs = first_out.iter_mut().enumerate().skip(p.growing);
    for (((entering, second_entering), (leaving, second_leaving)), (o, out)) in
        entering.zip(leaving).zip(outputs).take(p.full)
    {
        add(&mut sum, entering);
        subtract(&mut sum, leaving);
        add(&mut second_sum, second_entering);
        subtract(&mut second_sum, second_leaving);
        divide(out, &sum, full);
        pick(o, &second_sum, full, positions, picked, &mut next);
    }
    let leaving = first.iter().zip(second).skip(n - window);
    let outputs = first_out.iter_mut().enumerate().skip(p.growing + p.full);
    for ((leaving, second_leaving), (o, out)) in leaving.zip(outputs) {
        subtract(&mut sum, leaving);
        subtract(&mut second_sum, second_leaving);
        count -= 1;
        let divisor = Divisor::new::<FMA>(count);
        divide(out, &sum, divisor);
        pick(o, &second_sum, divisor, positions, picked, &mut next);
    }
}

/// Divide out `sum` (output `o`) into every slot whose position is `o`, from `*next` on.
#[inline(always)]
fn pick(
    o: usize,
    sum: &Lanes,
    divisor: Divisor,
    positions: &[usize; SAMPLES],
    picked: &mut [Lanes; SAMPLES],
    next: &mut usize,
) {
    while positions.get(*next) == Some(&o) {
        if let Some(slot) = picked.get_mut(*next) {
            divide(slot, sum, divisor);
        }
        *next += 1;
    }
}

/// The reference's `box1DFloat` over a sequence of lane vectors, divided out only at
/// `positions` (non-decreasing, each below `input.len()`; a position repeats when the image is
/// narrower than 64): the sums still run over every input, in the reference's order.
#[inline(always)]
fn box_sampled<const L: usize, const FMA: bool>(
    input: &[[f32; L]],
    window: usize,
    positions: &[usize; SAMPLES],
    output: &mut [[f32; L]; SAMPLES],
) {
    let p = Phases::new(input.len(), window);
    let (growing_end, full_end) = (p.growing, p.growing + p.full);
    let mut sum = [0f32; L];
    for values in input.get(..p.warm_up).unwrap_or(&[]) {
        add(&mut sum, values);
    }
    // Outputs `0..done` have been stepped through; `sum` is the sum of output `done - 1`.
    let mut done = 0usize;
    for (out, &position) in output.iter_mut().zip(positions) {
        let target = position + 1;
        let stop = target.min(growing_end);
        if done < stop {
            for values in input.get(done + p.warm_up..stop + p.warm_up).unwrap_or(&[]) {
                add(&mut sum, values);
            }
            done = stop;
        }
        let stop = target.min(full_end);
        if done < stop {
            let entering = input.get(done + p.warm_up..stop + p.warm_up).unwrap_or(&[]);
            let leaving = input.get(done - growing_end..).unwrap_or(&[]);
            for (entering, leaving) in entering.iter().zip(leaving) {
                add(&mut sum, entering);
                subtract(&mut sum, leaving);
            }
            done = stop;
        }
        if done < target {
            let leaving = input.get(done - growing_end..target - growing_end);
            for values in leaving.unwrap_or(&[]) {
                subtract(&mut sum, values);
            }
            done = target;
        }
        divide(out, &sum, Divisor::new::<FMA>(p.count_at(position)));
    }
}

/// Copy the first `lanes` rows of `image` (zero-padded to sixteen) into a strip of lane
/// vectors, transposing 8×8 tiles: for each run of 8 columns, one tile per group of 8 rows.
#[inline(always)]
fn load_strip<const AVX: bool>(image: &[f32], width: usize, lanes: usize, strip: &mut [Lanes]) {
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
fn store_strip<const AVX: bool>(strip: &[Lanes], image: &mut [f32], width: usize, lanes: usize) {
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

impl<F: Fn(usize, &mut [f32]), const AVX: bool> RowRound<'_, F, AVX> {
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
        let luma_rows = self.staging.as_flattened_mut();
        for (lane, row) in luma_rows.chunks_exact_mut(width).take(lanes).enumerate() {
            (self.source)(first + lane, row);
        }
        load_strip::<AVX>(luma_rows, width, lanes, self.strip);
        match second {
            Some((input, positions, picked)) => box_both::<AVX>(
                (self.strip, self.staging),
                (input, positions, picked),
                self.window,
            ),
            None => box_all::<STRIP, AVX>(self.strip, self.window, self.staging),
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
    fn new<F: Fn(usize, &mut [f32]), const AVX: bool>(
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
    fn next_strip<F: Fn(usize, &mut [f32]), const AVX: bool>(
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
            column_block::<WIDE, AVX>(sums, inputs, &divisors, cells);
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
            column_block::<TILE, AVX>(sums, inputs, &divisors, cells);
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
/// divide; then transpose the quotients into the `W` cells of the strip.
#[inline(always)]
fn column_block<const W: usize, const AVX: bool>(
    sums: &mut [f32; W],
    (entering, leaving, block): (&RowRuns<'_, W>, &RowRuns<'_, W>, usize),
    divisors: &[Divisor; STRIP],
    cells: &mut [Lanes],
) {
    let mut sum = *sums;
    let mut quotients = [[0f32; W]; STRIP];
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
                box_all::<1, true>(&input, 7, &mut all);
                box_sampled::<1, true>(&input, 7, &positions, &mut sampled);
            } else {
                box_all::<1, false>(&input, 7, &mut all);
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

#[cfg(test)]
mod equivalence_tests;
