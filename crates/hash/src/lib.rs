//! Media hashing for Aranea: what a piece of media *is* (magic bytes), its cryptographic
//! digests (MD5, SHA-1, SHA-256 of the exact bytes) and its PDQ perceptual hash, bit-compatible
//! with Meta's reference; for videos and animations, vPDQ ([`vpdq_hash`]: PDQ of sampled frames,
//! decoded by a sandboxed `ffmpeg` child process) and its comparison ([`compare_vpdq`]).
//!
//! ```no_run
//! let bytes = std::fs::read("photo.jpg")?;
//! let hashes = aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default())?;
//! println!("{} {}", hashes.sha256_hex(), hashes.pdq.map(|p| p.hash.to_hex()).unwrap_or_default());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This crate is computation (plus the sandboxed decoder child for video): it must never touch
//! the network, a database or an async runtime, and never trust a file name or Content-Type. Every input-size decision is bounded
//! by [`Limits`] before memory is allocated for pixels.

mod animation;
mod crypto;
mod decode;
mod error;
mod jarosz;
mod luma;
mod pdq;
mod pdq_hash;
mod sniff;
mod tile;
mod video;
mod vpdq;

pub use crypto::{CryptoHasher, CryptoHashes, base32, crypto_hashes};
pub use error::HashError;
pub use pdq::{Dihedral, PdqResult, pdq_from_rgb8};
pub use pdq_hash::{PdqHash, PdqHashParseError};
pub use sniff::{MediaKind, sniff};
pub use video::{Frame, VideoInfo, VideoLimits, VideoOptions, decode_video_frames};
pub use vpdq::{
    VideoHashes, VpdqComparison, VpdqFeature, VpdqMatchParams, compare_vpdq, is_moving_picture,
    parse_vpdq_line, parse_vpdq_text, prune_vpdq, vpdq_hash, write_vpdq_text,
};

/// Hard bounds on what [`hash_media`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes (default 256 MiB: well above any real photo, below
    /// what would strain a crawler node).
    pub max_bytes: u64,
    /// Largest image accepted, in pixels, as declared by the header (default 64 million);
    /// checked before any pixel buffer is allocated.
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            max_pixels: 64_000_000,
        }
    }
}

/// Everything [`hash_media`] learns about one piece of media.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaHashes {
    /// The type, from magic bytes.
    pub kind: MediaKind,
    /// Pixel width as stored (EXIF orientation ignored); 0 for video (decoded by [`vpdq_hash`]).
    pub width: u32,
    /// Pixel height as stored; 0 for video.
    pub height: u32,
    /// Length of the input in bytes.
    pub size_bytes: u64,
    pub md5: [u8; 16],
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    /// PDQ of the first frame; `None` for video, whose frames [`vpdq_hash`] hashes.
    pub pdq: Option<PdqResult>,
}

impl MediaHashes {
    pub fn crypto(&self) -> CryptoHashes {
        CryptoHashes {
            md5: self.md5,
            sha1: self.sha1,
            sha256: self.sha256,
        }
    }
    pub fn md5_hex(&self) -> String {
        self.crypto().md5_hex()
    }
    pub fn sha1_hex(&self) -> String {
        self.crypto().sha1_hex()
    }
    /// SHA-1 in RFC 4648 base32, as the Arachnid Shield API's `sha1_base32`.
    pub fn sha1_base32(&self) -> String {
        self.crypto().sha1_base32()
    }
    pub fn sha256_hex(&self) -> String {
        self.crypto().sha256_hex()
    }
    /// The PDQ result, or [`HashError::VideoNotSupportedYet`] for video.
    pub fn require_pdq(&self) -> Result<&PdqResult, HashError> {
        self.pdq
            .as_ref()
            .ok_or(HashError::VideoNotSupportedYet { kind: self.kind })
    }
}

/// Sniff, bound, decode and hash one piece of media.
///
/// Images get all four hashes. Videos are recognised and get their cryptographic hashes, with
/// `pdq: None` and zero dimensions (their frames are [`vpdq_hash`]'s job, in a sandboxed child
/// process). Any other input is an error that says what was wrong with it.
pub fn hash_media(bytes: &[u8], limits: &Limits) -> Result<MediaHashes, HashError> {
    if bytes.is_empty() {
        return Err(HashError::Empty);
    }
    let size_bytes = bytes.len() as u64;
    if size_bytes > limits.max_bytes {
        return Err(HashError::TooLarge {
            size: size_bytes,
            limit: limits.max_bytes,
        });
    }
    let kind = sniff(bytes).ok_or(HashError::UnknownFormat)?;
    let (width, height, pdq) = if kind.is_video() {
        (0, 0, None)
    } else {
        let image = decode::decode_first_frame(bytes, kind, limits)?;
        let (width, height) = (image.width(), image.height());
        let result = decode::pdq_of_image(&image);
        (width, height, Some(result))
    };
    let crypto = crypto_hashes(bytes);
    Ok(MediaHashes {
        kind,
        width,
        height,
        size_bytes,
        md5: crypto.md5,
        sha1: crypto.sha1,
        sha256: crypto.sha256,
        pdq,
    })
}

/// Decode an image (within `limits`) to interleaved 8-bit RGB as the PDQ reference sees it,
/// for callers that time or reuse decoding separately from hashing.
pub fn decode_rgb8(bytes: &[u8], limits: &Limits) -> Result<(Vec<u8>, u32, u32), HashError> {
    if bytes.is_empty() {
        return Err(HashError::Empty);
    }
    let kind = sniff(bytes).ok_or(HashError::UnknownFormat)?;
    let image = decode::decode_first_frame(bytes, kind, limits)?;
    let (width, height) = (image.width(), image.height());
    Ok((decode::rgb8_as_reference(&image), width, height))
}
