//! The reference's running box sum (`box1DFloat`) over sequences of lane vectors, in the
//! forms the filter needs: every output, only sampled outputs, or both passes of a strip in one
//! loop; and the window sizes' exact division.
//!
//! Each phase of a sum is one loop over zipped slices, so the inner loops carry no bounds
//! checks or phase tests. This module must never reassociate a sum or fuse a multiply-add into
//! the reference's arithmetic; the only FMAs are [`Divisor`]'s, which are exact.

use super::{Lanes, SAMPLES, STRIP};

/// The reference's phase lengths for a running box sum of `window` over `length` values:
/// accumulate without output, write with a growing window, write with the full window
/// (adding the entering value, then subtracting the leaving one), write with a shrinking one.
/// Output `o` of the growing and full phases adds input `o + warm_up`; output `o` of the full
/// and shrinking phases subtracts input `o - growing`.
#[derive(Clone, Copy)]
pub(super) struct Phases {
    pub(super) warm_up: usize,
    pub(super) growing: usize,
    pub(super) full: usize,
    pub(super) shrinking: usize,
}

impl Phases {
    /// Requires `1 <= window <= length` (true of every `jarosz_window`).
    pub(super) fn new(length: usize, window: usize) -> Self {
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
    pub(super) fn count_at(&self, o: usize) -> usize {
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
pub(super) fn add<const L: usize>(sum: &mut [f32; L], values: &[f32; L]) {
    for (s, v) in sum.iter_mut().zip(values) {
        *s += *v;
    }
}

#[inline(always)]
pub(super) fn subtract<const L: usize>(sum: &mut [f32; L], values: &[f32; L]) {
    for (s, v) in sum.iter_mut().zip(values) {
        *s -= *v;
    }
}

/// Window sizes up to this one may be divided by [`Divisor`]'s corrected reciprocal: the test
/// `corrected_reciprocal_equals_division_for_every_significand` checks every odd size up to it
/// against every significand, which covers every size up to it and every finite sum the
/// filter can make (module docs of [`Divisor`]). Images up to 16,384 pixels a side.
pub(super) const MAX_CORRECTED_COUNT: usize = 128;

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
pub(super) struct Divisor {
    pub(super) count: f32,
    pub(super) reciprocal: f32,
    pub(super) corrected: bool,
}

impl Divisor {
    /// `FMA`: whether the caller runs with fused multiply-add in hardware.
    #[inline(always)]
    pub(super) fn new<const FMA: bool>(count: usize) -> Self {
        let value = count as f32;
        Self {
            count: value,
            reciprocal: 1.0 / value,
            corrected: FMA && count <= MAX_CORRECTED_COUNT,
        }
    }

    #[inline(always)]
    pub(super) fn quotient(self, sum: f32) -> f32 {
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
pub(super) fn divide<const L: usize>(out: &mut [f32; L], sum: &[f32; L], divisor: Divisor) {
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
pub(super) fn box_all<const L: usize, const FMA: bool>(
    input: &[[f32; L]],
    window: usize,
    output: &mut [[f32; L]],
    ahead: impl Fn(usize),
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
    for (o, (values, out)) in rest.iter().zip(growing_out).enumerate() {
        ahead(o);
        add(&mut sum, values);
        count += 1;
        divide(out, &sum, Divisor::new::<FMA>(count));
    }
    let full = Divisor::new::<FMA>(window);
    let entering = input.get(window..).unwrap_or(&[]);
    for (o, ((entering, leaving), out)) in entering.iter().zip(input).zip(full_out).enumerate() {
        ahead(o + p.growing);
        add(&mut sum, entering);
        subtract(&mut sum, leaving);
        divide(out, &sum, full);
    }
    let leaving = input.get(n - window..).unwrap_or(&[]);
    for (o, (leaving, out)) in leaving.iter().zip(shrinking_out).enumerate() {
        ahead(o + p.growing + p.full);
        subtract(&mut sum, leaving);
        count -= 1;
        divide(out, &sum, Divisor::new::<FMA>(count));
    }
}

/// The second row pass's share of [`box_both`]: its input strip, the sampled columns and
/// where their quotients go.
pub(super) type SecondPass<'a> = (&'a [Lanes], &'a [usize; SAMPLES], &'a mut [Lanes; SAMPLES]);

/// [`box_all`] over `first` and [`box_sampled`] over `second` (same length and window) in one
/// loop: four independent chains of sums per step instead of two, the same arithmetic for
/// each.
#[inline(always)]
pub(super) fn box_both<const FMA: bool>(
    (first, first_out): (&[Lanes], &mut [Lanes]),
    (second, positions, picked): SecondPass<'_>,
    window: usize,
    ahead: impl Fn(usize),
) {
    let n = first.len();
    if second.len() != n || first_out.len() != n {
        box_all::<STRIP, FMA>(first, window, first_out, ahead);
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
        ahead(o);
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
        ahead(o);
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
        ahead(o);
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
pub(super) fn pick(
    o: usize,
    sum: &Lanes,
    divisor: Divisor,
    positions: &[usize; SAMPLES],
    picked: &mut [Lanes; SAMPLES],
    next: &mut usize,
) {
    // The test first, on its own: with the loop's own test alone, the compiler computed the
    // quotients (both kinds of division, blended) before it, at every step of the row instead
    // of at the 64 sampled ones.
    if positions.get(*next) != Some(&o) {
        return;
    }
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
pub(super) fn box_sampled<const L: usize, const FMA: bool>(
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
