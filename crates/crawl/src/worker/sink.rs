//! The seam through which media entering the review queue leaves the crawler: the review
//! room's encrypted vault implements [`ReviewMediaSink`]; by default nothing is kept.
//!
//! The crawler itself must never write media bytes anywhere: pages and media are dropped
//! after hashing unless handed to this sink.

/// Receives the bytes of media that entered (or is pending in) the review queue.
///
/// Called from a blocking thread, possibly several times for the same media (after a
/// restart, or when the same media is seen again while pending): implementations must be
/// idempotent by `sha256`. An error does not stop the crawl: the review entry stays, and a
/// later sighting of the media while it is pending hands the bytes again.
pub trait ReviewMediaSink: Send + Sync + 'static {
    fn keep(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<(), String>;
}

/// Keeps nothing: the review queue gets its entry; the bytes are dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardMedia;

impl ReviewMediaSink for DiscardMedia {
    fn keep(&self, _sha256: &[u8; 32], _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }
}
