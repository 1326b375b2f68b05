//! Image bytes for media items: the corpus file as is, or a transformed copy (resized,
//! re-encoded, cropped, watermarked, thumbnailed, converted), made on first request and cached.
//!
//! Encoders are deterministic, so the same item always has the same bytes. Must not read
//! anything but the corpus.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex, OnceLock};

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

use crate::corpus::{Corpus, content_type_for_ext};
use crate::error::SimWebError;
use crate::world::Transform;

/// Rendered copies kept in memory at most (a few tens of KiB each).
const MAX_CACHED: usize = 4096;

/// Bytes and content type of one rendered copy.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Arc<Vec<u8>>,
    pub content_type: &'static str,
}

#[derive(Debug, Default)]
pub struct MediaCache {
    copies: Mutex<HashMap<(usize, Transform), Rendered>>,
    /// Copies a caller asked to keep ([`MediaCache::pin`]): never evicted, unbounded.
    pinned: Mutex<HashMap<(usize, Transform), Rendered>>,
    placeholder: OnceLock<Arc<Vec<u8>>>,
}

impl MediaCache {
    /// The copy if it is rendered already (cheap: no decoding, no encoding).
    pub fn cached(&self, source: usize, transform: Transform) -> Option<Rendered> {
        let key = (source, transform);
        self.pinned
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            .or_else(|| self.copies.lock().ok().and_then(|c| c.get(&key).cloned()))
    }

    /// The copy, rendered now if it is not cached (CPU work: call from a blocking thread).
    pub fn render(
        &self,
        corpus: &Corpus,
        source: usize,
        transform: Transform,
    ) -> Result<Rendered, SimWebError> {
        if let Some(hit) = self.cached(source, transform) {
            return Ok(hit);
        }
        let original = corpus.bytes(source)?;
        let rendered = match transform {
            Transform::Original => Rendered {
                bytes: original,
                content_type: content_type_for_ext(corpus.ext(source)),
            },
            other => {
                let image =
                    image::load_from_memory(&original).map_err(|e| SimWebError::CorpusImage {
                        file: corpus.file_name(source).to_owned(),
                        reason: e.to_string(),
                    })?;
                let ext = other.ext().unwrap_or("jpg");
                let bytes =
                    transformed(image, other).map_err(|reason| SimWebError::CorpusImage {
                        file: corpus.file_name(source).to_owned(),
                        reason,
                    })?;
                Rendered {
                    bytes: Arc::new(bytes),
                    content_type: content_type_for_ext(ext),
                }
            }
        };
        if let Ok(mut copies) = self.copies.lock() {
            // Bytes are deterministic, so forgetting them only costs time: bound the memory a
            // full crawl of the demo world would otherwise pin.
            if copies.len() >= MAX_CACHED {
                copies.clear();
            }
            copies.insert((source, transform), rendered.clone());
        }
        Ok(rendered)
    }

    /// Renders a copy and keeps it outside the bounded cache until the world stops.
    pub fn pin(
        &self,
        corpus: &Corpus,
        source: usize,
        transform: Transform,
    ) -> Result<(), SimWebError> {
        let rendered = self.render(corpus, source, transform)?;
        if let Ok(mut pinned) = self.pinned.lock() {
            pinned.insert((source, transform), rendered);
        }
        Ok(())
    }

    /// The image some providers serve instead of removed content: a grey card with a stripe.
    pub fn placeholder(&self) -> Arc<Vec<u8>> {
        self.placeholder
            .get_or_init(|| {
                let card = RgbImage::from_fn(240, 160, |x, y| {
                    if (60..100).contains(&y) && (20..220).contains(&x) {
                        Rgb([200, 40, 40])
                    } else {
                        Rgb([180 + (x % 8) as u8, 180, 180])
                    }
                });
                Arc::new(encode_png(&DynamicImage::ImageRgb8(card)).unwrap_or_default())
            })
            .clone()
    }
}

fn transformed(image: DynamicImage, transform: Transform) -> Result<Vec<u8>, String> {
    let (w, h) = (image.width().max(1), image.height().max(1));
    let scaled = |p: u8, v: u32| (v * u32::from(p) / 100).max(1);
    match transform {
        Transform::Original => Err("original is not transformed".to_owned()),
        Transform::Resize { percent } => {
            let out = image.resize_exact(
                scaled(percent, w),
                scaled(percent, h),
                image::imageops::FilterType::Triangle,
            );
            encode_jpeg(&out, 85)
        }
        Transform::Reencode { quality } => encode_jpeg(&image, quality),
        Transform::Crop { percent } => {
            let (dx, dy) = (w * u32::from(percent) / 100, h * u32::from(percent) / 100);
            let out = image.crop_imm(
                dx,
                dy,
                w.saturating_sub(2 * dx).max(1),
                h.saturating_sub(2 * dy).max(1),
            );
            encode_jpeg(&out, 88)
        }
        Transform::Watermark => {
            encode_jpeg(&DynamicImage::ImageRgb8(watermark(image.to_rgb8())), 88)
        }
        Transform::Thumbnail { max_side } => {
            let side = u32::from(max_side);
            encode_jpeg(
                &image.resize(side, side, image::imageops::FilterType::Triangle),
                88,
            )
        }
        Transform::ConvertPng => encode_png(&DynamicImage::ImageRgb8(image.to_rgb8())),
    }
}

/// A translucent banner in the lower right, as image hosts stamp their name on uploads.
fn watermark(mut pixels: RgbImage) -> RgbImage {
    let (w, h) = pixels.dimensions();
    let (x0, y0) = (w - w / 6, h - h / 20);
    for y in y0..h {
        for x in x0..w {
            let stripe = ((x + y) / 4) % 2 == 0;
            let pixel = pixels.get_pixel_mut(x, y);
            for channel in pixel.0.iter_mut() {
                let ink: u16 = if stripe { 255 } else { 230 };
                *channel = ((u16::from(*channel) * 3 + ink) / 4) as u8;
            }
        }
    }
    pixels
}

fn encode_jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode_image(&DynamicImage::ImageRgb8(image.to_rgb8()))
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}
