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

/// Luma of interleaved RGB bytes into `out`, vectorised where the CPU allows.
pub(crate) fn luma_from_rgb8(pixels: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above; that is the only requirement.
        return unsafe { luma_from_rgb8_avx2(pixels, out) };
    }
    luma_from_rgb8_portable(pixels, out);
}

/// The exact-integer form with 256-bit vectors (see the module docs); no "fma" feature, and
/// every product and sum before the division is an exact integer anyway.
/// How far ahead of the pixels being converted to ask for the next ones. Luma is the first
/// pass over a decoded image several megabytes large, so it waits on memory; the hardware
/// prefetcher alone left it a third of the hashing time (this hint gave ~8% overall; 512 to
/// 4096 bytes all measured alike).
#[cfg(target_arch = "x86_64")]
const PREFETCH_AHEAD: usize = 1024;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn luma_from_rgb8_avx2(pixels: &[u8], out: &mut [f32]) {
    let mut out_blocks = out.chunks_exact_mut(8);
    let mut pixel_blocks = pixels.chunks_exact(24);
    for (o, p) in (&mut out_blocks).zip(&mut pixel_blocks) {
        let (Ok(o), Ok(p)) = (<&mut [f32; 8]>::try_from(o), <&[u8; 24]>::try_from(p)) else {
            continue;
        };
        // A hint only: prefetching never faults, so the address may lie past the buffer.
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            p.as_ptr().wrapping_add(PREFETCH_AHEAD).cast(),
        );
        *o = eight_lumas_avx2(p);
    }
    for (o, p) in out_blocks
        .into_remainder()
        .iter_mut()
        .zip(pixel_blocks.remainder().chunks_exact(3))
    {
        *o = luma_exact(p[0], p[1], p[2]);
    }
}

/// Luma of eight interleaved RGB pixels: byte shuffles de-interleave the channels, which are
/// widened to `f32`, weighted by 299, 587 and 114 (exact: integers under 2²⁴) and divided by
/// 1000 (the one rounding, as in [`luma_exact`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn eight_lumas_avx2(p: &[u8; 24]) -> [f32; 8] {
    use std::arch::x86_64::*;
    // Shuffle masks: byte k of the result takes byte mask[k] of the source (-1 gives zero).
    const fn mask(first: i8, count: i8, offset: i8) -> [i8; 16] {
        let mut m = [-1i8; 16];
        let mut k = 0;
        while k < count {
            m[(offset + k) as usize] = first + 3 * k;
            k += 1;
        }
        m
    }
    // Pixels 0..=5 lie in bytes 0..16 (with pixel 5's blue at 17), pixels 5..8 in bytes 16..24.
    const R_LO: [i8; 16] = mask(0, 6, 0); // bytes 0,3,..,15
    const R_HI: [i8; 16] = mask(2, 2, 6); // bytes 18,21 (hi offsets 2,5)
    const G_LO: [i8; 16] = mask(1, 5, 0); // bytes 1,4,..,13
    const G_HI: [i8; 16] = mask(0, 3, 5); // bytes 16,19,22
    const B_LO: [i8; 16] = mask(2, 5, 0); // bytes 2,5,..,14
    const B_HI: [i8; 16] = mask(1, 3, 5); // bytes 17,20,23
    // SAFETY: this function only runs where AVX2 was detected; the loads read 16 and 8 bytes
    // from a 24-byte array, and the store writes one 8-float array.
    unsafe {
        let load = |m: &[i8; 16]| _mm_loadu_si128(m.as_ptr().cast());
        let lo = _mm_loadu_si128(p.as_ptr().cast());
        let hi = _mm_loadl_epi64(p.as_ptr().add(16).cast());
        let channel = |mask_lo: &[i8; 16], mask_hi: &[i8; 16]| {
            let bytes = _mm_or_si128(
                _mm_shuffle_epi8(lo, load(mask_lo)),
                _mm_shuffle_epi8(hi, load(mask_hi)),
            );
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes))
        };
        let r = channel(&R_LO, &R_HI);
        let g = channel(&G_LO, &G_HI);
        let b = channel(&B_LO, &B_HI);
        let weighted = _mm256_add_ps(
            _mm256_add_ps(
                _mm256_mul_ps(r, _mm256_set1_ps(299.0)),
                _mm256_mul_ps(g, _mm256_set1_ps(587.0)),
            ),
            _mm256_mul_ps(b, _mm256_set1_ps(114.0)),
        );
        let mut out = [0f32; 8];
        _mm256_storeu_ps(
            out.as_mut_ptr(),
            _mm256_div_ps(weighted, _mm256_set1_ps(1000.0)),
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
