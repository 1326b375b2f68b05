//! The blurred, grayscale thumbnail analysts see by default: decoded within limits, shrunk
//! to at most 160 pixels, turned gray and box-blurred three times (close to a Gaussian)
//! so shapes are recognisable but detail is not, and encoded as PNG in memory.
//!
//! Must not write to disk: media bytes only pass through memory here.

use aranea_hash::MediaKind;

use crate::error::ReviewError;

const MAX_SIDE: u32 = 160;
const BLUR_RADIUS: usize = 6;

/// The Content-Type for revealing media of this kind.
pub fn content_type(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Jpeg => "image/jpeg",
        MediaKind::Png => "image/png",
        MediaKind::Gif => "image/gif",
        MediaKind::Webp => "image/webp",
        MediaKind::Bmp => "image/bmp",
        MediaKind::Mp4 => "video/mp4",
        MediaKind::Webm => "video/webm",
        _ => "application/octet-stream",
    }
}

/// A blurred grayscale PNG of an image; media that is not a decodable image (video,
/// archives) gets a plain gray placeholder, never its content.
pub fn blurred(bytes: &[u8]) -> Result<Vec<u8>, ReviewError> {
    let limits = aranea_hash::Limits::default();
    let (gray, width, height) = match aranea_hash::decode_rgb8(bytes, &limits) {
        Ok((rgb, w, h)) => shrink_gray(&rgb, w, h),
        Err(_) => (vec![128u8; 64 * 64], 64, 64),
    };
    let blurred = blur(&gray, width as usize, height as usize);
    encode_png(&blurred, width, height)
}

/// A blurred grayscale PNG of an RGB frame (`width * height * 3` bytes), as [`blurred`]
/// makes of an image.
pub fn blurred_rgb(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ReviewError> {
    let (gray, w, h) = shrink_gray(rgb, width, height);
    encode_png(&blur(&gray, w as usize, h as usize), w, h)
}

fn shrink_gray(rgb: &[u8], width: u32, height: u32) -> (Vec<u8>, u32, u32) {
    let scale = (width.max(height)).div_ceil(MAX_SIDE).max(1);
    let (w, h) = ((width / scale).max(1), (height / scale).max(1));
    let mut out = vec![0u8; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let (mut sum, mut n) = (0u32, 0u32);
            for sy in y * scale..((y + 1) * scale).min(height) {
                for sx in x * scale..((x + 1) * scale).min(width) {
                    let i = ((sy * width + sx) * 3) as usize;
                    if let Some(p) = rgb.get(i..i + 3) {
                        sum +=
                            (299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]))
                                / 1000;
                        n += 1;
                    }
                }
            }
            out[(y * w + x) as usize] = u8::try_from(sum / n.max(1)).unwrap_or(255);
        }
    }
    (out, w, h)
}

fn blur(pixels: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut current = pixels.to_vec();
    for _ in 0..3 {
        current = box_pass(&current, width, height, true);
        current = box_pass(&current, width, height, false);
    }
    current
}

fn box_pass(pixels: &[u8], width: usize, height: usize, horizontal: bool) -> Vec<u8> {
    let mut out = vec![0u8; pixels.len()];
    let (lines, len) = if horizontal {
        (height, width)
    } else {
        (width, height)
    };
    let at = |line: usize, i: usize| {
        if horizontal {
            line * width + i
        } else {
            i * width + line
        }
    };
    for line in 0..lines {
        for i in 0..len {
            let lo = i.saturating_sub(BLUR_RADIUS);
            let hi = (i + BLUR_RADIUS).min(len - 1);
            let sum: u32 = (lo..=hi).map(|j| u32::from(pixels[at(line, j)])).sum();
            out[at(line, i)] = u8::try_from(sum / (hi - lo + 1) as u32).unwrap_or(255);
        }
    }
    out
}

fn encode_png(gray: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ReviewError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(gray, width, height, image::ExtendedColorType::L8)
        .map_err(|e| ReviewError::Thumbnail(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_removes_detail() {
        // A checkerboard (maximal detail) comes out nearly uniform.
        let (w, h) = (64usize, 64usize);
        let board: Vec<u8> = (0..w * h)
            .map(|i| if (i % w + i / w) % 2 == 0 { 0 } else { 255 })
            .collect();
        let out = blur(&board, w, h);
        let (min, max) = out
            .iter()
            .fold((255u8, 0u8), |(a, b), &p| (a.min(p), b.max(p)));
        assert!(max - min < 40, "range {min}..{max}");
    }

    #[test]
    fn hostile_bytes_give_a_placeholder() {
        for bad in [&b""[..], b"\xff\xd8\xff", &[0u8; 1000]] {
            let png = blurred(bad).unwrap();
            assert!(png.starts_with(b"\x89PNG"));
        }
    }
}
