//! 8×8 transposes of `f32` tiles, the data movement between row-major images and the row
//! strips the box filter runs on. Pure data movement: no arithmetic, so it cannot change a hash.
//!
//! The AVX form is the classic unpack/shuffle/permute sequence (24 shuffles for 64 values);
//! the portable form is what the compiler makes of plain indexing.

pub(crate) type Tile = [[f32; 8]; 8];

/// `tile[r][c]` → `result[c][r]`. `AVX` may be true only when the caller runs with AVX enabled.
#[inline(always)]
pub(crate) fn transpose<const AVX: bool>(tile: &Tile) -> Tile {
    #[cfg(target_arch = "x86_64")]
    if AVX {
        // SAFETY: AVX is true only inside functions compiled with `target_feature(enable =
        // "avx2")`, which are called only after runtime detection; the pointers come from
        // references to 8-float arrays, and the loads and stores are the unaligned kind.
        return unsafe { transpose_avx(tile) };
    }
    std::array::from_fn(|c| std::array::from_fn(|r| tile[r][c]))
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transpose_avx(tile: &Tile) -> Tile {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };
    // SAFETY: see `transpose`; every pointer is to a whole [f32; 8].
    unsafe {
        let r = |i: usize| _mm256_loadu_ps(tile[i].as_ptr());
        let (r0, r1, r2, r3, r4, r5, r6, r7) = (r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7));
        let t0 = _mm256_unpacklo_ps(r0, r1);
        let t1 = _mm256_unpackhi_ps(r0, r1);
        let t2 = _mm256_unpacklo_ps(r2, r3);
        let t3 = _mm256_unpackhi_ps(r2, r3);
        let t4 = _mm256_unpacklo_ps(r4, r5);
        let t5 = _mm256_unpackhi_ps(r4, r5);
        let t6 = _mm256_unpacklo_ps(r6, r7);
        let t7 = _mm256_unpackhi_ps(r6, r7);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let columns = [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ];
        let mut out = [[0f32; 8]; 8];
        for (row, column) in out.iter_mut().zip(columns) {
            _mm256_storeu_ps(row.as_mut_ptr(), column);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_transpose() {
        let tile: Tile = std::array::from_fn(|r| std::array::from_fn(|c| (r * 8 + c) as f32));
        let portable = transpose::<false>(&tile);
        for r in 0..8 {
            for c in 0..8 {
                assert_eq!(portable[c][r], tile[r][c]);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            assert_eq!(transpose::<true>(&tile), portable);
        }
    }
}
