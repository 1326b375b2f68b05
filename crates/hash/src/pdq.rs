//! PDQ, bit for bit as Meta's reference computes it at full resolution.
//!
//! The reference ecosystem (the PyPI `pdqhash` binding that Hasher-Matcher-Actioner uses, and
//! the C++ core underneath it) fixes every floating-point step; a different order of additions
//! flips bits near the median. So each stage here keeps the reference's per-value operation
//! order and only changes *which values are computed side by side*: running sums advance many
//! independent rows or columns in lock-step, which the compiler turns into SIMD without changing
//! any lane's arithmetic. This module must never reorder a sum, fuse a multiply-add, or replace
//! a division with a multiplication by a reciprocal.
//!
//! Stages: luma → two rounds of (box filter along rows, box filter along columns) with windows
//! ceil(W/128), ceil(H/128) → 64×64 samples at the reference's centre positions → quality from
//! the 64×64 gradients → 16×16 DCT (without the DC row and column) → threshold at the median.

use std::sync::LazyLock;

use crate::luma::Rgb8Rows;
use crate::{HashError, PdqHash, jarosz};

/// Images with a side under this many pixels hash to all zeroes with quality 0, as in the
/// reference.
const MIN_HASHABLE_DIM: usize = 5;

/// The result of hashing one image with PDQ.
#[derive(Clone, PartialEq)]
pub struct PdqResult {
    /// The 256-bit hash.
    pub hash: PdqHash,
    /// The reference's quality metric, 0–100; hashes under ~50 are unreliable for matching.
    pub quality: u8,
    /// The 16×16 DCT coefficients the hash thresholds; kept so rotations and flips can be derived
    /// without touching pixels again.
    dct: Box<[f32; 256]>,
}

impl std::fmt::Debug for PdqResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdqResult")
            .field("hash", &self.hash)
            .field("quality", &self.quality)
            .finish_non_exhaustive()
    }
}

/// The eight rotations and flips, in the reference's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dihedral {
    Original,
    Rotate90,
    Rotate180,
    Rotate270,
    FlipX,
    FlipY,
    FlipPlus1,
    FlipMinus1,
}

impl Dihedral {
    /// All eight, in the order [`PdqResult::dihedral`] returns them.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// Whether the transform swaps the image's axes, and so the DCT's rows and columns.
    fn transposes(self) -> bool {
        matches!(
            self,
            Self::Rotate90 | Self::Rotate270 | Self::FlipPlus1 | Self::FlipMinus1
        )
    }

    /// Whether coefficient (i, j) of the original is negated when it moves to its new place.
    /// Coefficient (i, j) is frequency (i+1, j+1), so "even i" means an odd frequency, whose
    /// cosine is antisymmetric about the centre and changes sign under a flip of that axis.
    fn negates(self, i: usize, j: usize) -> bool {
        match self {
            Self::Original | Self::FlipPlus1 => false,
            Self::Rotate90 | Self::FlipY => j.is_multiple_of(2),
            Self::Rotate180 | Self::FlipMinus1 => (i + j) % 2 == 1,
            Self::Rotate270 | Self::FlipX => i.is_multiple_of(2),
        }
    }
}

impl PdqResult {
    /// The hash of the image rotated or flipped by `transform`, derived from the DCT
    /// coefficients as the reference does (sign flips and a transpose), not by re-hashing
    /// pixels. Close to, but not always identical with, hashing transformed pixels: the box
    /// filters are not symmetric.
    pub fn transformed(&self, transform: Dihedral) -> PdqHash {
        let mut moved = [0f32; 256];
        for i in 0..16 {
            for j in 0..16 {
                let value = self.dct[i * 16 + j];
                let value = if transform.negates(i, j) {
                    -value
                } else {
                    value
                };
                let target = if transform.transposes() {
                    j * 16 + i
                } else {
                    i * 16 + j
                };
                moved[target] = value;
            }
        }
        bits_above_median(&moved)
    }

    /// All eight rotation/flip hashes, the plain hash first, in the reference's order:
    /// original, rotate 90, rotate 180, rotate 270, flip x, flip y, flip +1, flip −1.
    pub fn dihedral(&self) -> [PdqHash; 8] {
        Dihedral::ALL.map(|transform| self.transformed(transform))
    }
}

/// PDQ of an interleaved 8-bit RGB buffer (`width * height * 3` bytes, row-major), e.g. a
/// decoded image or a video frame.
pub fn pdq_from_rgb8(pixels: &[u8], width: u32, height: u32) -> Result<PdqResult, HashError> {
    let expected = u64::from(width) * u64::from(height) * 3;
    if pixels.len() as u64 != expected {
        return Err(HashError::PixelBufferSize {
            width,
            height,
            expected,
            actual: pixels.len() as u64,
        });
    }
    let rows = Rgb8Rows {
        pixels,
        width: width as usize,
    };
    Ok(pdq_with_rows(width as usize, height as usize, rows))
}

thread_local! {
    /// The filter's buffers, reused per thread so that hashing image after image does not
    /// allocate, zero and fault in fresh pages each time.
    static WORKSPACE: std::cell::RefCell<jarosz::Workspace> =
        std::cell::RefCell::new(jarosz::Workspace::default());
}

/// Workspaces above this many values (very wide or tall images) are released after use.
const KEEP_WORKSPACE_UP_TO: usize = 16 * 1024 * 1024;

/// PDQ of a `width`×`height` image whose luma rows `source(y, row)` writes, on demand and
/// possibly more than once per row.
pub(crate) fn pdq_with_rows(
    width: usize,
    height: usize,
    source: impl jarosz::LumaRows,
) -> PdqResult {
    if width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM {
        return PdqResult {
            hash: PdqHash::default(),
            quality: 0,
            dct: Box::new([0.0; 256]),
        };
    }
    let samples = if width == 64 && height == 64 {
        // The reference skips filtering when the input already is 64×64 (pre-scaled video
        // frames).
        let mut samples = [0f32; 64 * 64];
        for (y, row) in samples.chunks_exact_mut(64).enumerate() {
            source.row(y, row);
        }
        samples
    } else {
        WORKSPACE.with(|work| match work.try_borrow_mut() {
            Ok(mut work) => {
                let samples = jarosz::downsample_64(&source, &mut work, width, height);
                if work.capacity() > KEEP_WORKSPACE_UP_TO {
                    *work = jarosz::Workspace::default();
                }
                samples
            }
            // Only if `source` itself hashes an image: give that inner call its own buffers.
            Err(_) => {
                jarosz::downsample_64(&source, &mut jarosz::Workspace::default(), width, height)
            }
        })
    };
    let quality = quality_of(&samples);
    let dct = Box::new(dct_64_to_16(&samples));
    let hash = bits_above_median(&dct);
    PdqResult { hash, quality, dct }
}

/// The reference's quality heuristic: the sum of quantised vertical and horizontal gradients
/// of the 64×64 samples, divided by 90, capped at 100.
fn quality_of(samples: &[f32; 64 * 64]) -> u8 {
    let step = |u: f32, v: f32| ((((u - v) * 100.0) / 255.0) as i32).abs();
    let mut gradient_sum: i64 = 0;
    for i in 0..63 {
        for j in 0..64 {
            gradient_sum += i64::from(step(samples[i * 64 + j], samples[(i + 1) * 64 + j]));
        }
    }
    for i in 0..64 {
        for j in 0..63 {
            gradient_sum += i64::from(step(samples[i * 64 + j], samples[i * 64 + j + 1]));
        }
    }
    (gradient_sum / 90).min(100) as u8
}

/// Rows 1..=16 of the 64-point DCT-II matrix, as the reference builds it: the scale factor is
/// a `float`, the cosine a `double`, their product rounded to `float`.
static DCT_MATRIX: LazyLock<[[f32; 64]; 16]> = LazyLock::new(|| {
    let scale = (2.0f64 / 64.0).sqrt() as f32;
    let mut matrix = [[0f32; 64]; 16];
    for (i, row) in matrix.iter_mut().enumerate() {
        for (j, value) in row.iter_mut().enumerate() {
            let angle = (std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
            *value = (f64::from(scale) * angle.cos()) as f32;
        }
    }
    matrix
});

/// B = D · A · Dᵀ with D the 16×64 matrix above; every dot product is accumulated in `float`,
/// k ascending, as in the reference (vectorised across the independent output columns).
fn dct_64_to_16(samples: &[f32; 64 * 64]) -> [f32; 256] {
    let d = &*DCT_MATRIX;
    let mut t = [[0f32; 64]; 16];
    for (t_row, d_row) in t.iter_mut().zip(d) {
        for (k, &dk) in d_row.iter().enumerate() {
            let a_row = &samples[k * 64..(k + 1) * 64];
            for (tv, &av) in t_row.iter_mut().zip(a_row) {
                *tv += dk * av;
            }
        }
    }
    let mut d_transposed = [[0f32; 16]; 64];
    for (j, d_row) in d.iter().enumerate() {
        for (k, &value) in d_row.iter().enumerate() {
            d_transposed[k][j] = value;
        }
    }
    let mut b = [0f32; 256];
    for (b_row, t_row) in b.chunks_exact_mut(16).zip(&t) {
        for (&tk, dt_row) in t_row.iter().zip(&d_transposed) {
            for (bv, &dv) in b_row.iter_mut().zip(dt_row) {
                *bv += tk * dv;
            }
        }
    }
    b
}

/// One bit per coefficient: set when it is strictly above the median.
fn bits_above_median(coefficients: &[f32; 256]) -> PdqHash {
    let median = torben_median(coefficients);
    let mut hash = PdqHash::default();
    for (index, &value) in coefficients.iter().enumerate() {
        if value > median {
            hash.set_bit(index);
        }
    }
    hash
}

/// Torben Mogensen's selection-free median, as the reference uses it; for an even count it
/// returns the lower middle value, which decides the bits of ties.
fn torben_median(values: &[f32]) -> f32 {
    let Some(&first) = values.first() else {
        return 0.0;
    };
    let half = values.len().div_ceil(2);
    let (mut min, mut max) = (first, first);
    for &v in values {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    loop {
        let guess = (min + max) / 2.0;
        let (mut less, mut greater, mut equal) = (0usize, 0usize, 0usize);
        let (mut max_below, mut min_above) = (min, max);
        for &v in values {
            if v < guess {
                less += 1;
                if v > max_below {
                    max_below = v;
                }
            } else if v > guess {
                greater += 1;
                if v < min_above {
                    min_above = v;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                max_below
            } else if less + equal >= half {
                guess
            } else {
                min_above
            };
        }
        // NaN cannot reach here: coefficients come from finite sums of finite luma values.
        if less > greater {
            max = max_below;
        } else {
            min = min_above;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_images_hash_to_zero_with_quality_zero() {
        let result = pdq_from_rgb8(&[200; 4 * 100 * 3], 4, 100).unwrap();
        assert_eq!(result.hash, PdqHash::default());
        assert_eq!(result.quality, 0);
        assert!(result.dihedral().iter().all(|h| *h == PdqHash::default()));
    }

    #[test]
    fn a_wrong_buffer_size_is_an_error_not_a_panic() {
        assert!(matches!(
            pdq_from_rgb8(&[0; 10], 2, 2),
            Err(HashError::PixelBufferSize {
                expected: 12,
                actual: 10,
                ..
            })
        ));
    }

    #[test]
    fn median_of_an_even_count_is_the_lower_middle() {
        assert_eq!(torben_median(&[4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(torben_median(&[5.0, 5.0, 5.0]), 5.0);
    }
}
