//! Luma from RGB exactly as the reference binding computes it: NumPy multiplies the `uint8`
//! planes by the double-precision coefficients 0.299, 0.587 and 0.114, adds left to right in
//! double, and casts the sum to `float32`. (Meta's C++ tools compute the same formula in
//! `float`, which differs in the last bit for about a third of all colours; the golden corpus
//! and the test vectors come from the binding, the flavour Hasher-Matcher-Actioner runs.)
//!
//! The fast paths compute the same bits more cheaply, as `(299r + 587g + 114b) / 1000` in
//! `f32`. Why that is the same: the exact luma is N/1000 for the integer N = 299r + 587g + 114b.
//! N/1000 is never halfway between two floats (that would need N/1000 = odd/2^m, impossible
//! unless 125 divides N, and then N/1000 = j/8 is itself a float), and its distance to the
//! nearest halfway point is at least 1/(125·2^m) — about 3·10⁻¹¹ for the smallest non-zero
//! luma — while the double computation is within ~10⁻¹⁴ of N/1000. So the binding's result is
//! N/1000 correctly rounded to `f32`, which is what one IEEE `f32` division of the exact
//! integers N (< 2²⁴) and 1000 gives. The multiplies and adds before it are exact (every
//! intermediate is an integer under 2²⁴), so their order does not matter; the division does:
//! it must never become a plain multiplication by 1/1000 (that is wrong for 60% of all N).
//! The AVX2 path divides without the divider: q₀ = N·y with y = RN(1/1000), then one
//! fused-multiply-add correction q = q₀ + (N − 1000·q₀)·y (Markstein's step: the remainder is
//! exact, and one correction of a close enough quotient gives the correctly rounded one). A
//! test checks that for every one of the 255,001 possible N. Another checks all 2²⁴ colours
//! against [`luma_arithmetic`], the binding's formula as written.

use std::sync::LazyLock;

use crate::jarosz::{Lanes, LumaRows, STRIP};
#[cfg(target_arch = "x86_64")]
use crate::tile::{Tile, transpose};

/// An interleaved 8-bit RGB image as the filter's input: luma rows on demand, and the pixels
/// asked of memory ahead of time.
pub(crate) struct Rgb8Rows<'a> {
    pub(crate) pixels: &'a [u8],
    pub(crate) width: usize,
}

impl LumaRows for Rgb8Rows<'_> {
    #[inline(always)]
    fn row(&self, y: usize, out: &mut [f32]) {
        let row_bytes = self.width * 3;
        if let Some(bytes) = self.pixels.get(y * row_bytes..(y + 1) * row_bytes) {
            luma_from_rgb8(bytes, out);
        }
    }

    #[inline(always)]
    fn prefetch(&self, y: usize, x: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            // No bounds test: the filter asks only for rows it will read, and a prefetch
            // never faults, wherever the (wrapping) address points.
            let at = self.pixels.as_ptr().wrapping_add((y * self.width + x) * 3);
            // SAFETY: SSE is part of x86_64; a prefetch only hints, it reads nothing.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (y, x);
    }

    /// With AVX2, sixteen lumas of each of the sixteen rows at a time go straight into the
    /// strip through four 8×8 transposes in registers and L1, instead of through a strip's
    /// worth of luma rows written out and read back (a quarter of a megabyte per 1 MP image
    /// per pass, beyond L1).
    #[inline(always)]
    fn strip<const AVX: bool>(&self, first: usize, lanes: usize, strip: &mut [Lanes]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if AVX {
            let row_bytes = self.width * 3;
            let rows: [&[u8]; STRIP] = std::array::from_fn(|lane| {
                let y = first + lane;
                if lane < lanes {
                    self.pixels
                        .get(y * row_bytes..(y + 1) * row_bytes)
                        .unwrap_or(&[])
                } else {
                    &[]
                }
            });
            // SAFETY: `AVX` is true only where the caller runs with AVX2 and FMA enabled,
            // after runtime detection.
            unsafe { strip_from_rgb8_avx2(&rows, self.width, strip) };
            return true;
        }
        let _ = (first, lanes, strip);
        false
    }
}

/// [`Rgb8Rows::strip`]'s work: per run of sixteen columns, the sixteen rows' lumas into a
/// 16×16 block, then transposed into the strip's cells; the last `width % 16` columns one
/// value at a time. Rows that are empty (past the image) give zeroes.
///
/// # Safety
/// The caller must run with AVX2 and FMA enabled.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn strip_from_rgb8_avx2(rows: &[&[u8]; STRIP], width: usize, strip: &mut [Lanes]) {
    const HALF: usize = STRIP / 2;
    let runs = width / 16;
    // Zeroed once: a row is either present in every run or in none, so the lanes of absent
    // rows stay zero (zeroing the block per run was a `memset` call per sixteen columns).
    let mut lumas = [[0f32; 16]; STRIP];
    for (run, cells) in strip.chunks_exact_mut(16).take(runs).enumerate() {
        for (luma, row) in lumas.iter_mut().zip(rows) {
            if let Some(Ok(pixels)) = row.get(run * 48..run * 48 + 48).map(<&[u8; 48]>::try_from) {
                // SAFETY: the caller runs with AVX2 and FMA (this function's contract).
                *luma = unsafe { sixteen_lumas(pixels) };
            }
        }
        for half in 0..2 {
            for group in 0..2 {
                let mut tile: Tile = [[0.0; HALF]; HALF];
                for (tile_row, luma) in tile.iter_mut().zip(&lumas[group * HALF..]) {
                    tile_row.copy_from_slice(&luma[half * HALF..(half + 1) * HALF]);
                }
                let transposed = transpose::<true>(&tile);
                for (cell, column) in cells[half * HALF..].iter_mut().zip(&transposed) {
                    cell[group * HALF..(group + 1) * HALF].copy_from_slice(column);
                }
            }
        }
    }
    for (x, cell) in strip.iter_mut().enumerate().take(width).skip(runs * 16) {
        *cell = std::array::from_fn(|lane| match rows[lane].get(3 * x..3 * x + 3) {
            Some(&[r, g, b]) => luma_exact(r, g, b),
            _ => 0.0,
        });
    }
}

/// Luma of interleaved RGB bytes into `out`, vectorised where the CPU allows.
pub(crate) fn luma_from_rgb8(pixels: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above; that is the only
        // requirement.
        return unsafe { luma_from_rgb8_avx2(pixels, out) };
    }
    luma_from_rgb8_portable(pixels, out);
}

/// The exact-integer form with 256-bit vectors (see the module docs). The pixels were asked
/// of memory while the filter worked on the previous strip ([`Rgb8Rows::prefetch`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn luma_from_rgb8_avx2(pixels: &[u8], out: &mut [f32]) {
    let mut out_blocks = out.chunks_exact_mut(16);
    let mut pixel_blocks = pixels.chunks_exact(48);
    for (o, p) in (&mut out_blocks).zip(&mut pixel_blocks) {
        let (Ok(o), Ok(p)) = (<&mut [f32; 16]>::try_from(o), <&[u8; 48]>::try_from(p)) else {
            continue;
        };
        // SAFETY: this function runs with AVX2 and FMA enabled.
        *o = unsafe { sixteen_lumas(p) };
    }
    for (o, p) in out_blocks
        .into_remainder()
        .iter_mut()
        .zip(pixel_blocks.remainder().chunks_exact(3))
    {
        *o = luma_exact(p[0], p[1], p[2]);
    }
}

/// Luma of sixteen interleaved RGB pixels. Each 128-bit half of a register holds four whole
/// pixels (A: pixels 0–3 and 8–11, B: pixels 4–7 and 12–15), so one in-lane byte shuffle puts
/// each pixel's red and green into the two 16-bit halves of a 32-bit lane and another its blue;
/// two 16-bit multiply-adds make N = 299r + 587g + 114b exactly in 32-bit integers, which
/// convert to `f32` exactly (N < 2²⁴); [`thousandths_avx2`] divides by 1000 with one rounding
/// as in [`luma_exact`], and a final swap of halves restores the order.
///
/// # Safety
/// The caller must run with AVX2 and FMA enabled (a plain function rather than a
/// `target_feature` one, so that it inlines into every such caller).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sixteen_lumas(p: &[u8; 48]) -> [f32; 16] {
    use std::arch::x86_64::*;
    /// Shuffle masks: 32-bit lane k of each half takes bytes `first + 3k` and `first + 3k + 1`
    /// into its two 16-bit halves (red and green), or byte `first + 3k + 2` into its low half
    /// (blue); every other byte is zero.
    const fn masks(first_lo: i8, first_hi: i8) -> [[i8; 32]; 2] {
        let mut red_green = [-1i8; 32];
        let mut blue = [-1i8; 32];
        let mut k = 0;
        while k < 4 {
            let (lo, hi) = (4 * k as usize, 16 + 4 * k as usize);
            red_green[lo] = first_lo + 3 * k;
            red_green[lo + 2] = first_lo + 3 * k + 1;
            red_green[hi] = first_hi + 3 * k;
            red_green[hi + 2] = first_hi + 3 * k + 1;
            blue[lo] = first_lo + 3 * k + 2;
            blue[hi] = first_hi + 3 * k + 2;
            k += 1;
        }
        [red_green, blue]
    }
    // A's halves start at bytes 0 and 24 (pixels 0 and 8); B's at bytes 12 and 32, where
    // pixel 12 begins 4 bytes in (starting at 36 would read past the 48 bytes).
    const MASKS_A: [[i8; 32]; 2] = masks(0, 0);
    const MASKS_B: [[i8; 32]; 2] = masks(0, 4);
    // SAFETY: the caller runs with AVX2 and FMA (this function's contract); the four 16-byte loads
    // start at offsets 0, 24, 12 and 32 of a 48-byte array, and the stores write one 16-float
    // array.
    unsafe {
        let base = p.as_ptr();
        let at = |offset: usize| base.wrapping_add(offset).cast::<__m128i>();
        let a = _mm256_loadu2_m128i(at(24), at(0));
        let b = _mm256_loadu2_m128i(at(32), at(12));
        let red_green_weights = _mm256_set1_epi32((587 << 16) | 299);
        let blue_weight = _mm256_set1_epi32(114);
        /// A function inlined always rather than a closure: a closure would be compiled
        /// without AVX2, and its intrinsics called instead of inlined.
        #[inline(always)]
        unsafe fn luma(
            source: __m256i,
            masks: &[[i8; 32]; 2],
            weights: (__m256i, __m256i),
        ) -> __m256 {
            // SAFETY: the caller runs with AVX2 and FMA; the masks are 32-byte arrays.
            unsafe {
                let red_green =
                    _mm256_shuffle_epi8(source, _mm256_loadu_si256(masks[0].as_ptr().cast()));
                let blue =
                    _mm256_shuffle_epi8(source, _mm256_loadu_si256(masks[1].as_ptr().cast()));
                let weighted = _mm256_add_epi32(
                    _mm256_madd_epi16(red_green, weights.0),
                    _mm256_madd_epi16(blue, weights.1),
                );
                thousandths_avx2(_mm256_cvtepi32_ps(weighted))
            }
        }
        let weights = (red_green_weights, blue_weight);
        let (from_a, from_b) = (luma(a, &MASKS_A, weights), luma(b, &MASKS_B, weights));
        let mut out = [0f32; 16];
        _mm256_storeu_ps(
            out.as_mut_ptr(),
            _mm256_permute2f128_ps::<0x20>(from_a, from_b),
        );
        _mm256_storeu_ps(
            out.as_mut_ptr().add(8),
            _mm256_permute2f128_ps::<0x31>(from_a, from_b),
        );
        out
    }
}

/// `n / 1000` correctly rounded, for integers `n` in `0..=255_000` held exactly as `f32`:
/// the quotient by the reciprocal, corrected once with the exact remainder (module docs),
/// which the test `fma_division_is_exact_for_every_possible_luma` checks for every such `n`.
///
/// # Safety
/// The caller must run with AVX2 and FMA enabled.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn thousandths_avx2(n: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    // SAFETY: the caller runs with AVX2 and FMA (this function's contract).
    unsafe {
        let reciprocal = _mm256_set1_ps(1.0 / 1000.0);
        let quotient = _mm256_mul_ps(n, reciprocal);
        let remainder = _mm256_fnmadd_ps(quotient, _mm256_set1_ps(1000.0), n);
        _mm256_fmadd_ps(remainder, reciprocal, quotient)
    }
}

/// Eight pixels per step with constant indices, so the compiler can de-interleave with
/// shuffles and convert and multiply whole vectors.
#[inline(always)]
pub(crate) fn luma_from_rgb8_portable(pixels: &[u8], out: &mut [f32]) {
    let mut out_blocks = out.chunks_exact_mut(8);
    let mut pixel_blocks = pixels.chunks_exact(24);
    for (o, p) in (&mut out_blocks).zip(&mut pixel_blocks) {
        // Fixed-size views: the compiler then knows every index is in bounds.
        let (Ok(o), Ok(p)) = (<&mut [f32; 8]>::try_from(o), <&[u8; 24]>::try_from(p)) else {
            continue;
        };
        for i in 0..8 {
            o[i] = luma_exact(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
        }
    }
    for (o, p) in out_blocks
        .into_remainder()
        .iter_mut()
        .zip(pixel_blocks.remainder().chunks_exact(3))
    {
        *o = luma_exact(p[0], p[1], p[2]);
    }
}

/// The binding's luma from one integer and one correctly rounded division; equal to
/// [`luma_arithmetic`] for every colour (module docs; tested exhaustively).
#[inline(always)]
pub(crate) fn luma_exact(r: u8, g: u8, b: u8) -> f32 {
    let weighted = 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b);
    // Exact: `weighted` is at most 255,000, under 2^24.
    weighted as f32 / 1000.0
}

/// Luma of one pixel exactly as the reference binding computes it: NumPy multiplies the
/// `uint8` planes by the (double) coefficients, adds left to right in double, then casts to
/// `float32`. The definition the fast forms are tested against.
#[cfg(test)]
pub(crate) fn luma_arithmetic(r: u8, g: u8, b: u8) -> f32 {
    (f64::from(r) * 0.299 + f64::from(g) * 0.587 + f64::from(b) * 0.114) as f32
}

/// Products of each 8-bit level with the luma coefficients, in double precision, for the
/// layouts that are not interleaved 8-bit RGB (grey, alpha, 16-bit).
pub(crate) struct LumaTable([[f64; 256]; 3]);

static LUMA_TABLE: LazyLock<LumaTable> = LazyLock::new(|| {
    let column = |coefficient: f64| std::array::from_fn(|level| level as f64 * coefficient);
    LumaTable([column(0.299), column(0.587), column(0.114)])
});

impl LumaTable {
    pub(crate) fn get() -> &'static LumaTable {
        &LUMA_TABLE
    }

    /// The table holds the same correctly rounded products as [`luma_arithmetic`] computes,
    /// so the sums are equal.
    #[inline(always)]
    pub(crate) fn luma(&self, r: u8, g: u8, b: u8) -> f32 {
        let [red, green, blue] = &self.0;
        (red[usize::from(r)] + green[usize::from(g)] + blue[usize::from(b)]) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integer_form_equals_the_binding_for_all_colours() {
        for r in 0..=255u8 {
            for g in 0..=255u8 {
                for b in 0..=255u8 {
                    assert_eq!(
                        luma_exact(r, g, b).to_bits(),
                        luma_arithmetic(r, g, b).to_bits(),
                        "{r} {g} {b}"
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn fma_division_is_exact_for_every_possible_luma() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        for first in (0..=255_000u32).step_by(8) {
            let n: [f32; 8] = std::array::from_fn(|i| (first + i as u32) as f32);
            let mut quotients = [0f32; 8];
            // SAFETY: AVX2 and FMA were detected above; the pointers are to 8-float arrays.
            unsafe {
                use std::arch::x86_64::*;
                let q = thousandths_avx2(_mm256_loadu_ps(n.as_ptr()));
                _mm256_storeu_ps(quotients.as_mut_ptr(), q);
            }
            for (value, quotient) in n.iter().zip(quotients) {
                assert_eq!(quotient.to_bits(), (value / 1000.0).to_bits(), "{value}");
            }
        }
    }

    #[test]
    fn every_colour_through_the_dispatched_path_matches_the_binding() {
        let mut pixels = Vec::with_capacity(3 << 24);
        for r in 0..=255u8 {
            for g in 0..=255u8 {
                for b in 0..=255u8 {
                    pixels.extend_from_slice(&[r, g, b]);
                }
            }
        }
        let mut lumas = vec![0f32; 1 << 24];
        luma_from_rgb8(&pixels, &mut lumas);
        for (rgb, luma) in pixels.chunks_exact(3).zip(&lumas) {
            let expected = luma_arithmetic(rgb[0], rgb[1], rgb[2]);
            assert_eq!(luma.to_bits(), expected.to_bits(), "{rgb:?}");
        }
    }

    /// The strip made straight from RGB bytes holds, lane by lane, the rows' lumas, with
    /// zeroes past the image's last row: for widths with and without a remainder of sixteen,
    /// narrower than sixteen, and strips at the top, middle and bottom of an image.
    #[test]
    fn strips_straight_from_rgb_hold_each_rows_lumas() {
        #[cfg(target_arch = "x86_64")]
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        let mut state = 0x2545_F491u32;
        for (width, height, first) in [
            (1, 1, 0),
            (15, 16, 0),
            (16, 40, 16),
            (37, 40, 32),
            (100, 13, 0),
        ] {
            let pixels: Vec<u8> = (0..width * height * 3)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 24) as u8
                })
                .collect();
            let rows = Rgb8Rows {
                pixels: &pixels,
                width,
            };
            let lanes = STRIP.min(height - first);
            let mut strip = vec![[f32::NAN; STRIP]; width];
            let made = rows.strip::<{ cfg!(target_arch = "x86_64") }>(first, lanes, &mut strip);
            if !made {
                continue;
            }
            for (x, cell) in strip.iter().enumerate() {
                for (lane, value) in cell.iter().enumerate() {
                    let expected = if lane < lanes {
                        let at = ((first + lane) * width + x) * 3;
                        luma_arithmetic(pixels[at], pixels[at + 1], pixels[at + 2])
                    } else {
                        0.0
                    };
                    assert_eq!(
                        value.to_bits(),
                        expected.to_bits(),
                        "{width}x{height} at {x}, lane {lane}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_path_gives_the_same_bits_for_every_colour_sample() {
        // 2^24 colours are too many for a unit test; a stride through them covers every
        // level of each channel in many combinations, plus odd lengths for the remainders.
        let mut pixels = Vec::new();
        let mut state = 0x9E37_79B9u32;
        for _ in 0..200_003 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            pixels.extend_from_slice(&state.to_le_bytes()[..3]);
        }
        for level in 0..=255u8 {
            pixels.extend_from_slice(&[level, 255 - level, level / 2]);
        }
        let count = pixels.len() / 3;
        let mut dispatched = vec![0f32; count];
        luma_from_rgb8(&pixels, &mut dispatched);
        let mut portable = vec![0f32; count];
        luma_from_rgb8_portable(&pixels, &mut portable);
        let table = LumaTable::get();
        for (i, rgb) in pixels.chunks_exact(3).enumerate() {
            let expected = luma_arithmetic(rgb[0], rgb[1], rgb[2]);
            assert_eq!(
                dispatched[i].to_bits(),
                expected.to_bits(),
                "pixel {i} {rgb:?}"
            );
            assert_eq!(
                portable[i].to_bits(),
                expected.to_bits(),
                "pixel {i} {rgb:?}"
            );
            assert_eq!(
                table.luma(rgb[0], rgb[1], rgb[2]).to_bits(),
                expected.to_bits()
            );
        }
    }
}
