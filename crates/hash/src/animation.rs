//! Animated GIF and WebP: recognising them from their bytes, and decoding animated WebP's
//! frames in-process (the `image` crate composites each frame onto the canvas) for vPDQ.
//!
//! GIF goes through the FFmpeg subprocess like any video, as in the reference (whose hashes it
//! then reproduces exactly); Debian's FFmpeg cannot decode animated WebP, so WebP stays here,
//! under the same [`VideoLimits`]: canvas size before allocation, frame count, wall-clock
//! deadline. Frames are sampled by their display time. This module must never hold more than
//! one composited frame beyond the decoder's own canvas.

use std::io::Cursor;
use std::time::Instant;

use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, ImageDecoder};

use crate::video::{Frame, VideoInfo, VideoLimits, VideoOptions};
use crate::{HashError, MediaKind};

/// True when a GIF holds at least two images (walks the block structure; a malformed file
/// counts only the images before the damage).
pub(crate) fn gif_is_animated(bytes: &[u8]) -> bool {
    let Some(&packed) = bytes.get(10) else {
        return false;
    };
    let mut at = 13 + colour_table_len(packed);
    let mut images = 0;
    while let Some(&marker) = bytes.get(at) {
        at = match marker {
            0x21 => match skip_sub_blocks(bytes, at + 2) {
                Some(next) => next,
                None => return false,
            },
            0x2C => {
                images += 1;
                if images >= 2 {
                    return true;
                }
                let Some(&local) = bytes.get(at + 9) else {
                    return false;
                };
                // Descriptor (10 bytes), local table, LZW code size byte, then data blocks.
                match skip_sub_blocks(bytes, at + 10 + colour_table_len(local) + 1) {
                    Some(next) => next,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    false
}

fn colour_table_len(packed: u8) -> usize {
    if packed & 0x80 == 0 {
        0
    } else {
        3 << ((packed & 0x07) + 1)
    }
}

/// Index just past a run of GIF data sub-blocks (each a length byte and that many bytes,
/// ended by a zero length).
fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = usize::from(*bytes.get(at)?);
        at += 1;
        if len == 0 {
            return Some(at);
        }
        at += len;
    }
}

/// True when a WebP file is the extended format with its animation flag set.
pub(crate) fn webp_is_animated(bytes: &[u8]) -> bool {
    bytes.get(12..16) == Some(b"VP8X") && bytes.get(20).is_some_and(|flags| flags & 0x02 != 0)
}

/// Decode an animated (or still) WebP's frames, sampled as [`VideoOptions::seconds_per_hash`]
/// asks, into `on_frame`.
pub(crate) fn decode_webp_frames(
    bytes: &[u8],
    options: &VideoOptions,
    on_frame: impl FnMut(Frame<'_>) -> Result<(), HashError>,
) -> Result<VideoInfo, HashError> {
    let kind = MediaKind::Webp;
    if options.downsample.is_some() {
        // The reference resizes with FFmpeg's area filter; no in-process equivalent here.
        return Err(HashError::Decode {
            kind,
            message: "downsampling is not supported for animated WebP".to_string(),
        });
    }
    let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(|e| decode_error(kind, e))?;
    let (width, height) = check_canvas(decoder.dimensions(), kind, &options.limits)?;
    decoder
        .set_limits(image_limits(&options.limits))
        .map_err(|e| decode_error(kind, e))?;
    sample_frames(decoder, (width, height), kind, options, on_frame)
}

fn check_canvas(
    (width, height): (u32, u32),
    kind: MediaKind,
    limits: &VideoLimits,
) -> Result<(u32, u32), HashError> {
    if width == 0 || height == 0 {
        return Err(HashError::ZeroDimension {
            kind,
            width,
            height,
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_frame_pixels {
        return Err(HashError::TooManyPixels {
            width,
            height,
            limit: limits.max_frame_pixels,
        });
    }
    Ok((width, height))
}

fn image_limits(limits: &VideoLimits) -> image::Limits {
    let mut image_limits = image::Limits::default();
    // Canvas, previous canvas and one frame in RGBA, with room for decoder scratch.
    image_limits.max_alloc = Some(limits.max_frame_pixels.saturating_mul(16));
    image_limits
}

fn sample_frames<'a>(
    decoder: impl AnimationDecoder<'a>,
    (width, height): (u32, u32),
    kind: MediaKind,
    options: &VideoOptions,
    mut on_frame: impl FnMut(Frame<'_>) -> Result<(), HashError>,
) -> Result<VideoInfo, HashError> {
    let limits = &options.limits;
    let deadline = Instant::now() + limits.max_wall;
    let mut start_ms = 0.0f64;
    let mut next_sample = 0.0f64;
    let mut sampled = 0u64;
    let mut count = 0u64;
    let mut rgb = Vec::new();
    for (number, frame) in decoder.into_frames().enumerate() {
        if Instant::now() > deadline {
            return Err(HashError::DecodeTimeout {
                program: "the animation decoder".to_string(),
                seconds: limits.max_wall.as_secs(),
            });
        }
        let frame = frame.map_err(|e| decode_error(kind, e))?;
        count += 1;
        let seconds = start_ms / 1000.0;
        let (numer, denom) = frame.delay().numer_denom_ms();
        start_ms += f64::from(numer) / f64::from(denom.max(1));
        if start_ms / 1000.0 > limits.max_duration_seconds {
            return Err(HashError::TooLong {
                declared_seconds: (start_ms / 1000.0) as u64,
                limit_seconds: limits.max_duration_seconds as u64,
            });
        }
        if options.seconds_per_hash > 0.0 && seconds < next_sample {
            continue;
        }
        while options.seconds_per_hash > 0.0 && next_sample <= seconds {
            next_sample += options.seconds_per_hash;
        }
        if sampled >= limits.max_frames {
            return Err(HashError::TooManyFrames {
                limit: limits.max_frames,
            });
        }
        let canvas = frame.buffer();
        if canvas.dimensions() != (width, height) {
            return Err(HashError::Decode {
                kind,
                message: "a frame's canvas differs from the declared size".to_string(),
            });
        }
        rgb.clear();
        rgb.extend(
            canvas
                .pixels()
                .flat_map(|pixel| [pixel[0], pixel[1], pixel[2]]),
        );
        on_frame(Frame {
            number: number as u64,
            timestamp: seconds,
            width,
            height,
            rgb: &rgb,
        })?;
        sampled += 1;
    }
    if count == 0 {
        return Err(HashError::Truncated { kind });
    }
    let duration_seconds = start_ms / 1000.0;
    Ok(VideoInfo {
        width,
        height,
        frame_rate: if duration_seconds > 0.0 {
            count as f64 / duration_seconds
        } else {
            0.0
        },
        duration_seconds,
    })
}

fn decode_error(kind: MediaKind, error: image::ImageError) -> HashError {
    match error {
        image::ImageError::Limits(_) => HashError::MemoryLimit { kind },
        other => HashError::Decode {
            kind,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gif_block_walk_counts_images_and_survives_damage() {
        // Header, 1x1 screen without a global table, then image descriptors.
        let mut gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00".to_vec();
        let image = b"\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00";
        gif.extend_from_slice(image);
        assert!(!gif_is_animated(&gif));
        gif.extend_from_slice(b"\x21\xF9\x04\x00\x0A\x00\x00\x00");
        gif.extend_from_slice(image);
        gif.push(0x3B);
        assert!(gif_is_animated(&gif));
        for cut in 0..gif.len() {
            let _ = gif_is_animated(&gif[..cut]);
        }
        assert!(!gif_is_animated(b"GIF89a"));
        assert!(!webp_is_animated(b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(webp_is_animated(
            b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x02\0\0\0"
        ));
    }
}
