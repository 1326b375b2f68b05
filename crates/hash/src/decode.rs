//! Bounded decoding of still images into the luma plane PDQ consumes.
//!
//! Pixels are taken as the reference ecosystem sees them after Pillow's `convert("RGB")`:
//! stored orientation (EXIF is ignored), first frame of an animation, alpha dropped (not
//! composited), grey replicated to R=G=B before the luma formula. This module must never
//! allocate for pixels before the header's dimensions have been checked against [`Limits`].

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use crate::luma::{LumaTable, Rgb8Rows};
use crate::pdq::{PdqResult, pdq_with_rows};
use crate::{HashError, Limits, MediaKind};

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

/// PDQ of a decoded image, with luma as the reference computes it from Pillow's RGB conversion.
pub(crate) fn pdq_of_image(image: &DynamicImage) -> PdqResult {
    let (width, height) = (image.width() as usize, image.height() as usize);
    if let DynamicImage::ImageRgb8(buffer) = image {
        // The common case (every colour JPEG): luma rows made on demand, vectorised.
        let rows = Rgb8Rows {
            pixels: buffer.as_raw(),
            width,
        };
        return pdq_with_rows(width, height, rows);
    }
    let mut luma = vec![0f32; width * height];
    let table = LumaTable::get();
    map_pixels(image, &mut luma, |r, g, b| table.luma(r, g, b));
    pdq_with_rows(width, height, |y: usize, row: &mut [f32]| {
        if let Some(values) = luma.get(y * width..(y + 1) * width) {
            row.copy_from_slice(values);
        }
    })
}

/// Interleaved RGB bytes of `image` as Pillow's `convert("RGB")` gives them.
pub(crate) fn rgb8_as_reference(image: &DynamicImage) -> Vec<u8> {
    let pixels = image.width() as usize * image.height() as usize;
    let mut rgb = vec![[0u8; 3]; pixels];
    map_pixels(image, &mut rgb, |r, g, b| [r, g, b]);
    rgb.into_flattened()
}

/// Apply `f` to every pixel's (R, G, B) as Pillow's `convert("RGB")` produces them: alpha
/// dropped without compositing, grey replicated to all three channels.
fn map_pixels<O>(image: &DynamicImage, out: &mut [O], f: impl Fn(u8, u8, u8) -> O) {
    match image {
        DynamicImage::ImageRgb8(buffer) => {
            interleaved(out, buffer.as_raw(), 3, |p| (p[0], p[1], p[2]), &f)
        }
        DynamicImage::ImageRgba8(buffer) => {
            interleaved(out, buffer.as_raw(), 4, |p| (p[0], p[1], p[2]), &f)
        }
        DynamicImage::ImageLuma8(buffer) => {
            interleaved(out, buffer.as_raw(), 1, |p| (p[0], p[0], p[0]), &f)
        }
        DynamicImage::ImageLumaA8(buffer) => {
            interleaved(out, buffer.as_raw(), 2, |p| (p[0], p[0], p[0]), &f)
        }
        // Pillow opens 16-bit greyscale PNG as mode "I;16" and its RGB conversion clips each
        // value at 255 instead of scaling it down; the reference vectors (I16.png) reflect
        // that, so we clip too.
        DynamicImage::ImageLuma16(buffer) => interleaved(
            out,
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
            out,
            buffer.as_raw(),
            2,
            |p| {
                let grey = high_byte(p[0]);
                (grey, grey, grey)
            },
            &f,
        ),
        DynamicImage::ImageRgb16(buffer) => interleaved(
            out,
            buffer.as_raw(),
            3,
            |p| (high_byte(p[0]), high_byte(p[1]), high_byte(p[2])),
            &f,
        ),
        DynamicImage::ImageRgba16(buffer) => interleaved(
            out,
            buffer.as_raw(),
            4,
            |p| (high_byte(p[0]), high_byte(p[1]), high_byte(p[2])),
            &f,
        ),
        // No enabled decoder produces other layouts today; convert generically if one appears.
        other => {
            let rgb = other.to_rgb8();
            interleaved(out, rgb.as_raw(), 3, |p| (p[0], p[1], p[2]), &f)
        }
    }
}

#[inline(always)]
fn interleaved<T: Copy, O>(
    out: &mut [O],
    samples: &[T],
    channels: usize,
    rgb: impl Fn(&[T]) -> (u8, u8, u8),
    f: &impl Fn(u8, u8, u8) -> O,
) {
    for (value, pixel) in out.iter_mut().zip(samples.chunks_exact(channels)) {
        let (r, g, b) = rgb(pixel);
        *value = f(r, g, b);
    }
}

fn clip_to_u8(value: u16) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

fn high_byte(value: u16) -> u8 {
    (value >> 8) as u8
}
