//! Bounded decoding of still images into the luma plane PDQ consumes.
//!
//! Pixels are taken as the reference ecosystem sees them after Pillow's `convert("RGB")`:
//! stored orientation (EXIF is ignored), first frame of an animation, alpha dropped (not
//! composited), grey replicated to R=G=B before the luma formula. This module must never
//! allocate for pixels before the header's dimensions have been checked against [`Limits`].

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use crate::pdq::luma_of;
use crate::{HashError, Limits, MediaKind};

/// A decoded image reduced to what hashing needs.
pub(crate) struct LumaImage {
    pub width: u32,
    pub height: u32,
    pub luma: Vec<f32>,
}

/// Decode `bytes` (already sniffed as `kind`) to a luma plane, within `limits`.
pub(crate) fn decode_luma(
    bytes: &[u8],
    kind: MediaKind,
    limits: &Limits,
) -> Result<LumaImage, HashError> {
    let image = decode_first_frame(bytes, kind, limits)?;
    let (width, height) = (image.width(), image.height());
    let luma = luma_plane(&image);
    Ok(LumaImage {
        width,
        height,
        luma,
    })
}

/// Decode the first frame as `image` stores it, checking the declared size before the pixel
/// buffer exists.
pub(crate) fn decode_first_frame(
    bytes: &[u8],
    kind: MediaKind,
    limits: &Limits,
) -> Result<DynamicImage, HashError> {
    let format = match kind {
        MediaKind::Jpeg => ImageFormat::Jpeg,
        MediaKind::Png => ImageFormat::Png,
        MediaKind::Gif => ImageFormat::Gif,
        MediaKind::Webp => ImageFormat::WebP,
        MediaKind::Bmp => ImageFormat::Bmp,
        video => return Err(HashError::VideoNotSupportedYet { kind: video }),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = image::Limits::default();
    // Eight bytes a pixel covers the widest layout the decoders produce (RGBA, 16 bits);
    // decoders' own scratch buffers come on top, so allow one more pixel buffer's worth.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(16));
    image_limits.max_image_width = None;
    image_limits.max_image_height = None;
    reader.limits(image_limits);
    let decoder = reader
        .into_decoder()
        .map_err(|error| classify(error, kind))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(HashError::ZeroDimension {
            kind,
            width,
            height,
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(HashError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    DynamicImage::from_decoder(decoder).map_err(|error| classify(error, kind))
}

/// Map the decoder's error onto what was wrong with the input.
fn classify(error: ImageError, kind: MediaKind) -> HashError {
    match error {
        ImageError::Limits(_) => HashError::MemoryLimit { kind },
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            HashError::Truncated { kind }
        }
        other => {
            let message = other.to_string();
            let lower = message.to_ascii_lowercase();
            // The decoders report running out of data in prose rather than as an I/O kind.
            if lower.contains("eof")
                || lower.contains("end of file")
                || lower.contains("truncated")
                || lower.contains("unexpected end")
                || lower.contains("no more data")
                || lower.contains("not enough data")
            {
                HashError::Truncated { kind }
            } else {
                HashError::Decode { kind, message }
            }
        }
    }
}

/// The luma plane of `image` as the reference computes it from Pillow's RGB conversion.
fn luma_plane(image: &DynamicImage) -> Vec<f32> {
    map_pixels(image, luma_of)
}

/// Interleaved RGB bytes of `image` as Pillow's `convert("RGB")` gives them.
pub(crate) fn rgb8_as_reference(image: &DynamicImage) -> Vec<u8> {
    map_pixels(image, |r, g, b| [r, g, b]).into_flattened()
}

/// Apply `f` to every pixel's (R, G, B) as Pillow's `convert("RGB")` produces them: alpha
/// dropped without compositing, grey replicated to all three channels.
fn map_pixels<O>(image: &DynamicImage, f: impl Fn(u8, u8, u8) -> O) -> Vec<O> {
    match image {
        DynamicImage::ImageRgb8(buffer) => {
            interleaved(buffer.as_raw(), 3, |p| (p[0], p[1], p[2]), &f)
        }
        DynamicImage::ImageRgba8(buffer) => {
            interleaved(buffer.as_raw(), 4, |p| (p[0], p[1], p[2]), &f)
        }
        DynamicImage::ImageLuma8(buffer) => {
            interleaved(buffer.as_raw(), 1, |p| (p[0], p[0], p[0]), &f)
        }
        DynamicImage::ImageLumaA8(buffer) => {
            interleaved(buffer.as_raw(), 2, |p| (p[0], p[0], p[0]), &f)
        }
        // Pillow opens 16-bit greyscale PNG as mode "I;16" and its RGB conversion clips each
        // value at 255 instead of scaling it down; the reference vectors (I16.png) reflect
        // that, so we clip too.
        DynamicImage::ImageLuma16(buffer) => interleaved(
            buffer.as_raw(),
            1,
            |p| {
                let grey = clip_to_u8(p[0]);
                (grey, grey, grey)
            },
            &f,
        ),
        // 16-bit grey+alpha and colour PNGs are read by Pillow keeping the high byte
        // ("LA;16B", "RGB;16B", "RGBA;16B").
        DynamicImage::ImageLumaA16(buffer) => interleaved(
            buffer.as_raw(),
            2,
            |p| {
                let grey = high_byte(p[0]);
                (grey, grey, grey)
            },
            &f,
        ),
        DynamicImage::ImageRgb16(buffer) => interleaved(
            buffer.as_raw(),
            3,
            |p| (high_byte(p[0]), high_byte(p[1]), high_byte(p[2])),
            &f,
        ),
        DynamicImage::ImageRgba16(buffer) => interleaved(
            buffer.as_raw(),
            4,
            |p| (high_byte(p[0]), high_byte(p[1]), high_byte(p[2])),
            &f,
        ),
        // No enabled decoder produces other layouts today; convert generically if one appears.
        other => {
            let rgb = other.to_rgb8();
            interleaved(rgb.as_raw(), 3, |p| (p[0], p[1], p[2]), &f)
        }
    }
}

#[inline(always)]
fn interleaved<T: Copy, O>(
    samples: &[T],
    channels: usize,
    rgb: impl Fn(&[T]) -> (u8, u8, u8),
    f: &impl Fn(u8, u8, u8) -> O,
) -> Vec<O> {
    samples
        .chunks_exact(channels)
        .map(|pixel| {
            let (r, g, b) = rgb(pixel);
            f(r, g, b)
        })
        .collect()
}

fn clip_to_u8(value: u16) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

fn high_byte(value: u16) -> u8 {
    (value >> 8) as u8
}
