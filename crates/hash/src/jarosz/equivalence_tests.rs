//! The fast paths against plainer forms of the same arithmetic: whole-plane filtering in the
//! reference's order, and the portable build against the vectorised one. Bit-for-bit.

use super::*;

/// The reference's `box1DFloat` written plainly: one loop per phase, a closure per output.
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

/// The reference's order of work, whole planes at a time: each row, then each column,
/// twice, then the samples. Shares only the one-dimensional kernel with the fast path.
fn full_planes(image: &[f32], width: usize, height: usize) -> [f32; 64 * 64] {
    let (row_window, column_window) = (jarosz_window(width), jarosz_window(height));
    let along_rows = |plane: &[f32]| {
        let mut out = vec![0f32; plane.len()];
        for (row, out_row) in plane.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            let lanes: Vec<[f32; 1]> = row.iter().map(|&v| [v]).collect();
            running_box(&lanes, row_window, |x, sum, count| {
                out_row[x] = sum[0] / count
            });
        }
        out
    };
    let along_columns = |plane: &[f32]| {
        let mut out = vec![0f32; plane.len()];
        for x in 0..width {
            let lanes: Vec<[f32; 1]> = (0..height).map(|y| [plane[y * width + x]]).collect();
            running_box(&lanes, column_window, |y, sum, count| {
                out[y * width + x] = sum[0] / count
            });
        }
        out
    };
    let filtered = along_columns(&along_rows(&along_columns(&along_rows(image))));
    let (columns, rows) = (sample_positions(width), sample_positions(height));
    std::array::from_fn(|i| filtered[rows[i / 64] * width + columns[i % 64]])
}

/// The ring of rows and the strips must not change a bit, whatever the column window
/// (tall images have windows far taller than a strip), and one workspace serves images of
/// any size in turn, larger and smaller, without carrying anything over.
#[test]
fn strips_and_ring_agree_with_whole_planes() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut work = Workspace::default();
    for (width, height) in [(5, 5), (300, 17), (23, 2100), (130, 4100), (517, 333)] {
        let image: Vec<f32> = (0..width * height)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 25_600) as f32 / 100.0
            })
            .collect();
        let source =
            |y: usize, row: &mut [f32]| row.copy_from_slice(&image[y * width..(y + 1) * width]);
        let fast = downsample_64(&source, &mut work, width, height);
        let expected = full_planes(&image, width, height);
        assert!(
            fast.iter()
                .zip(&expected)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{width}x{height}"
        );
    }
}

/// The AVX2 build and the portable build must produce identical samples, so a machine
/// without AVX2 gets the same hashes.
#[test]
fn portable_and_vectorised_paths_agree_bit_for_bit() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for (width, height) in [
        (5, 5),
        (7, 13),
        (64, 65),
        (257, 129),
        (1000, 9),
        (9, 1000),
        (333, 517),
    ] {
        let image: Vec<f32> = (0..width * height)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 25_600) as f32 / 100.0
            })
            .collect();
        let source =
            |y: usize, row: &mut [f32]| row.copy_from_slice(&image[y * width..(y + 1) * width]);
        let mut work = Workspace::default();
        let portable = downsample_64_with::<false>(&source, &mut work, width, height);
        let dispatched = downsample_64(&source, &mut work, width, height);
        assert!(
            portable
                .iter()
                .zip(&dispatched)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{width}x{height}"
        );
    }
}
