//! Every way a piece of media can fail to hash, in the caller's terms.

use crate::MediaKind;

/// Why `hash_media` (or a PDQ entry point) could not hash its input.
///
/// Each variant names a property of the *input*; none of them means a bug in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Zero bytes.
    #[error("the input is empty")]
    Empty,
    /// The magic bytes match no image or video format this crate knows.
    #[error("unknown format: the leading bytes match no supported image or video type")]
    UnknownFormat,
    /// The input is larger than [`crate::Limits::max_bytes`].
    #[error("the input is {size} bytes, over the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    /// The header declares more pixels than [`crate::Limits::max_pixels`]; nothing was allocated.
    #[error("the image declares {width}x{height} pixels, over the limit of {limit}")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    /// The header declares a width or height of zero.
    #[error("the {kind} image declares a zero dimension ({width}x{height})")]
    ZeroDimension {
        kind: MediaKind,
        width: u32,
        height: u32,
    },
    /// The data ends before the image does.
    #[error("the {kind} data is truncated")]
    Truncated { kind: MediaKind },
    /// The decoder would need more memory than the limits allow (e.g. a decompression bomb
    /// whose header looked small enough).
    #[error("decoding the {kind} image would exceed the memory limit")]
    MemoryLimit { kind: MediaKind },
    /// The format is recognised but the data is malformed or uses a feature the decoder lacks.
    #[error("cannot decode the {kind} data: {message}")]
    Decode { kind: MediaKind, message: String },
    /// A video was recognised; perceptual hashing of video frames is not implemented yet.
    #[error("{kind} is a video format; video perceptual hashing is not supported yet")]
    VideoNotSupportedYet { kind: MediaKind },
    /// The container declares a longer duration than [`crate::VideoLimits::max_duration_seconds`];
    /// nothing was decoded.
    #[error("the video declares {declared_seconds} s, over the limit of {limit_seconds} s")]
    TooLong {
        declared_seconds: u64,
        limit_seconds: u64,
    },
    /// The video yields more sampled frames than [`crate::VideoLimits::max_frames`].
    #[error("the video yields more than {limit} sampled frames")]
    TooManyFrames { limit: u64 },
    /// The container holds no video stream with dimensions.
    #[error("the {kind} container holds no decodable video stream")]
    NoVideoStream { kind: MediaKind },
    /// The video stream declares no usable frame rate, so frames have no timestamps.
    #[error("the {kind} video declares no usable frame rate")]
    NoFrameRate { kind: MediaKind },
    /// Decoding did not finish within [`crate::VideoLimits::max_wall`]; the decoder was killed.
    #[error("{program} was killed at the {seconds} s deadline")]
    DecodeTimeout { program: String, seconds: u64 },
    /// The external decoder (or `prlimit`, which sandboxes it) cannot be run on this machine.
    #[error("cannot run {program}: {message}")]
    DecoderUnavailable { program: String, message: String },
    /// Talking to the decoder process failed (pipes, the private input copy).
    #[error("decoder I/O failed: {message}")]
    DecoderIo { message: String },
    /// vPDQ was asked of a still-image format.
    #[error("{kind} is a still-image format, not a video or animation")]
    NotMoving { kind: MediaKind },
    /// A vPDQ text line is malformed.
    #[error("vPDQ line {line}: {message}")]
    VpdqFormat { line: u64, message: String },
    /// A caller-supplied pixel buffer does not match its declared dimensions.
    #[error("the pixel buffer holds {actual} bytes, but {width}x{height} RGB needs {expected}")]
    PixelBufferSize {
        width: u32,
        height: u32,
        expected: u64,
        actual: u64,
    },
}
