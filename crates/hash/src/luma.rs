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
//! it must never become a multiplication by 1/1000. A test checks all 2²⁴ colours against
//! [`luma_arithmetic`], the binding's formula as written.

use std::sync::LazyLock;

/// Luma of interleaved RGB bytes into `out`, vectorised where the CPU allows. `ahead` is how
/// many bytes past each pixel the caller will read next (the same row of the next strip of
/// rows): those bytes are asked for now, so that memory delivers them while the filter works
/// on this strip.
pub(crate) fn luma_from_rgb8(pixels: &[u8], out: &mut [f32], ahead: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above; that is the only requirement.
        return unsafe { luma_from_rgb8_avx2(pixels, out, ahead) };
    }
    let _ = ahead;
    luma_from_rgb8_portable(pixels, out);
}

/// The exact-integer form with 256-bit vectors (see the module docs); no "fma" feature, and
/// every product and sum before the division is an exact integer anyway.
///
/// Luma is the first pass over a decoded image several megabytes large, so it waits on memory
/// unless the bytes were asked for well before: a hint 1 KiB ahead in the same row gained ~8%,
/// asking for the next strip's row (into L2, a strip of filtering ahead) more.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn luma_from_rgb8_avx2(pixels: &[u8], out: &mut [f32], ahead: usize) {
    let mut out_blocks = out.chunks_exact_mut(16);
    let mut pixel_blocks = pixels.chunks_exact(48);
    for (o, p) in (&mut out_blocks).zip(&mut pixel_blocks) {
        let (Ok(o), Ok(p)) = (<&mut [f32; 16]>::try_from(o), <&[u8; 48]>::try_from(p)) else {
            continue;
        };
        // A hint only: prefetching never faults, so the address may lie past the buffer.
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
            p.as_ptr().wrapping_add(ahead).cast(),
        );
        *o = sixteen_lumas_avx2(p);
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
/// pixels (A: pixels 0–3 and 8–11, B: pixels 4–7 and 12–15), so one in-lane byte shuffle per
/// channel puts each channel's bytes straight into zero-extended 32-bit lanes; the channels
/// are converted to `f32`, weighted by 299, 587 and 114 (exact: integers under 2²⁴) and divided
/// by 1000 (the one rounding, as in [`luma_exact`]); a final swap of halves restores the order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sixteen_lumas_avx2(p: &[u8; 48]) -> [f32; 16] {
    use std::arch::x86_64::*;
    /// Shuffle mask: 32-bit lane k of each half takes byte `first + 3k` of that half (the
    /// other three bytes zero).
    const fn mask(first_lo: i8, first_hi: i8) -> [i8; 32] {
        let mut m = [-1i8; 32];
        let mut k = 0;
        while k < 4 {
            m[4 * k as usize] = first_lo + 3 * k;
            m[16 + 4 * k as usize] = first_hi + 3 * k;
            k += 1;
        }
        m
    }
    // A's halves start at bytes 0 and 24 (pixels 0 and 8); B's at bytes 12 and 32, where
    // pixel 12 begins 4 bytes in (starting at 36 would read past the 48 bytes).
    const MASKS_A: [[i8; 32]; 3] = [mask(0, 0), mask(1, 1), mask(2, 2)];
    const MASKS_B: [[i8; 32]; 3] = [mask(0, 4), mask(1, 5), mask(2, 6)];
    // SAFETY: this function only runs where AVX2 was detected; the four 16-byte loads start at
    // offsets 0, 24, 12 and 32 of a 48-byte array, and the stores write one 16-float array.
    unsafe {
        let at = |offset: usize| p.as_ptr().add(offset).cast::<__m128i>();
        let a = _mm256_loadu2_m128i(at(24), at(0));
        let b = _mm256_loadu2_m128i(at(32), at(12));
        let channel = |source: __m256i, mask: &[i8; 32]| {
            let m = _mm256_loadu_si256(mask.as_ptr().cast());
            _mm256_cvtepi32_ps(_mm256_shuffle_epi8(source, m))
        };
        let luma = |source: __m256i, masks: &[[i8; 32]; 3]| {
            let weighted = _mm256_add_ps(
                _mm256_add_ps(
                    _mm256_mul_ps(channel(source, &masks[0]), _mm256_set1_ps(299.0)),
                    _mm256_mul_ps(channel(source, &masks[1]), _mm256_set1_ps(587.0)),
                ),
                _mm256_mul_ps(channel(source, &masks[2]), _mm256_set1_ps(114.0)),
            );
            _mm256_div_ps(weighted, _mm256_set1_ps(1000.0))
        };
        let (from_a, from_b) = (luma(a, &MASKS_A), luma(b, &MASKS_B));
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
        luma_from_rgb8(&pixels, &mut dispatched, 4096);
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
