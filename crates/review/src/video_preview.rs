//! What analysts see of a queued video before deciding to look: blurred grayscale
//! thumbnails of frames at the vPDQ sample times (one a second, thinned evenly to at most
//! [`MAX_FRAME_THUMBS`]) and the video itself for muted, CSS-blurred playback.
//!
//! Decoding goes through the hash crate's sandboxed `ffmpeg` child, which reads a private
//! copy of its input: that copy is made only in a memory-backed directory (tmpfs), checked
//! before each decode, so decrypted media never reaches a disk. This module must not write
//! media anywhere else, nor keep it beyond the request, nor show a frame unblurred.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aranea_hash::{HashError, MediaKind, VideoLimits, VideoOptions, decode_video_frames};
use aranea_store::{ReviewItemId, UnixMillis};

use crate::access::Actor;
use crate::audit::{self, AuditAction};
use crate::error::ReviewError;
use crate::{Review, thumbnail};

/// Most frame thumbnails shown for one video.
pub const MAX_FRAME_THUMBS: usize = 12;
/// Videos whose thumbnails are kept in memory for the thumbnails' own requests.
const CACHED_VIDEOS: usize = 8;

/// One blurred frame: its number and time (as vPDQ numbers them) and a PNG.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameThumb {
    pub number: u64,
    pub timestamp: f64,
    pub png: Vec<u8>,
}

/// Recently made frame thumbnails, by media SHA-256 (blurred already; never originals).
#[derive(Default)]
pub(crate) struct FrameCache {
    entries: Vec<([u8; 32], Arc<Vec<FrameThumb>>)>,
}

impl FrameCache {
    fn get(&self, sha256: &[u8; 32]) -> Option<Arc<Vec<FrameThumb>>> {
        self.entries
            .iter()
            .find(|(sha, _)| sha == sha256)
            .map(|(_, frames)| Arc::clone(frames))
    }

    fn put(&mut self, sha256: [u8; 32], frames: Arc<Vec<FrameThumb>>) {
        self.entries.retain(|(sha, _)| *sha != sha256);
        if self.entries.len() >= CACHED_VIDEOS {
            self.entries.remove(0);
        }
        self.entries.push((sha256, frames));
    }
}

/// Whether `dir` lies on a memory-backed file system (tmpfs or ramfs), by the longest
/// mount point above it in `/proc/self/mounts`.
pub fn memory_backed(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, fs) = (fields.next()?, fields.next()?, fields.next()?);
            let point = point.replace("\\040", " ");
            dir.starts_with(&point)
                .then(|| (point.len(), fs.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .is_some_and(|(_, fs)| matches!(fs.as_str(), "tmpfs" | "ramfs"))
}

/// Blurred thumbnails of the frames vPDQ samples (one a second), thinned to at most
/// [`MAX_FRAME_THUMBS`] evenly spaced ones. `scratch` must be memory-backed.
pub fn frame_thumbnails(
    bytes: &[u8],
    kind: MediaKind,
    scratch: &Path,
) -> Result<Vec<FrameThumb>, ReviewError> {
    if !memory_backed(scratch) {
        return Err(ReviewError::Thumbnail(format!(
            "{} is not memory-backed: video is decoded only from tmpfs",
            scratch.display()
        )));
    }
    let options = VideoOptions {
        temp_dir: Some(scratch.to_path_buf()),
        limits: VideoLimits {
            max_wall: Duration::from_secs(60),
            ..VideoLimits::default()
        },
        ..VideoOptions::default()
    };
    let mut kept: Vec<FrameThumb> = Vec::new();
    let (mut sample, mut stride) = (0u64, 1u64);
    decode_video_frames(bytes, kind, &options, |frame| {
        let index = sample;
        sample += 1;
        if !index.is_multiple_of(stride) {
            return Ok(());
        }
        let png = thumbnail::blurred_rgb(frame.rgb, frame.width, frame.height).map_err(|e| {
            HashError::Decode {
                kind,
                message: e.to_string(),
            }
        })?;
        kept.push(FrameThumb {
            number: frame.number,
            timestamp: frame.timestamp,
            png,
        });
        if kept.len() > MAX_FRAME_THUMBS {
            // Keep every other one and sample half as often from here on.
            let mut position = 0;
            kept.retain(|_| {
                position += 1;
                position % 2 == 1
            });
            stride *= 2;
        }
        Ok(())
    })
    .map_err(|e| ReviewError::Thumbnail(format!("video: {e}")))?;
    Ok(kept)
}

impl Review {
    /// The blurred frame thumbnails of a video of the item; audited as a view each time
    /// (the page and every thumbnail request).
    pub async fn video_frames(
        &self,
        actor: &Actor,
        id: ReviewItemId,
        sha256: &[u8; 32],
        what: &str,
        now: UnixMillis,
    ) -> Result<Arc<Vec<FrameThumb>>, ReviewError> {
        self.visible_item(actor, id).await?;
        self.require_item_media(id, sha256).await?;
        let cached = self
            .inner
            .frames
            .lock()
            .ok()
            .and_then(|cache| cache.get(sha256));
        let frames = match cached {
            Some(frames) => frames,
            None => {
                let (bytes, kind) = self.open_video(sha256).await?;
                let scratch = self.config().video_scratch_dir.clone();
                let frames =
                    tokio::task::spawn_blocking(move || frame_thumbnails(&bytes, kind, &scratch))
                        .await
                        .map_err(|e| ReviewError::Task(e.to_string()))??;
                let frames = Arc::new(frames);
                if let Ok(mut cache) = self.inner.frames.lock() {
                    cache.put(*sha256, Arc::clone(&frames));
                }
                frames
            }
        };
        self.audit_video_view(actor, id, sha256, what, now).await?;
        Ok(frames)
    }

    /// A video of the item for muted, blurred playback (the page blurs it; revealing is a
    /// separate, logged step). Returns (bytes, content type); audited as a view.
    pub async fn video_playback(
        &self,
        actor: &Actor,
        id: ReviewItemId,
        sha256: &[u8; 32],
        now: UnixMillis,
    ) -> Result<(Vec<u8>, &'static str), ReviewError> {
        self.visible_item(actor, id).await?;
        self.require_item_media(id, sha256).await?;
        let (bytes, kind) = self.open_video(sha256).await?;
        self.audit_video_view(actor, id, sha256, "video blurred playback", now)
            .await?;
        Ok((bytes.to_vec(), kind.mime()))
    }

    async fn open_video(
        &self,
        sha256: &[u8; 32],
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, MediaKind), ReviewError> {
        let vault = self
            .inner
            .vault
            .as_ref()
            .ok_or(ReviewError::NoVaultKey("secret"))?;
        let bytes = vault
            .open_media(sha256)
            .await?
            .ok_or(ReviewError::NotFound("media (purged)"))?;
        match aranea_hash::sniff(&bytes) {
            Some(kind) if kind.is_video() => Ok((bytes, kind)),
            _ => Err(ReviewError::NotFound("video")),
        }
    }

    async fn audit_video_view(
        &self,
        actor: &Actor,
        id: ReviewItemId,
        sha256: &[u8; 32],
        what: &str,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let detail = format!("{what} media:{}", crate::vault::to_hex(sha256));
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::View,
            &format!("item:{id}"),
            &detail,
            now,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shm() -> &'static Path {
        Path::new("/dev/shm")
    }

    /// A synthetic test pattern (no photo at all): `seconds` long at 10 frames a second.
    fn test_pattern(seconds: u32) -> Vec<u8> {
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("aranea-review-vp-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join(format!("pattern-{seconds}.webm"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg(format!("testsrc=size=64x48:rate=10:duration={seconds}"))
            .args(["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"])
            .arg(&out)
            .status()
            .expect("ffmpeg is installed (scripts/test installs it)");
        assert!(status.success());
        let bytes = std::fs::read(&out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        bytes
    }

    #[test]
    fn only_memory_backed_directories_count() {
        assert!(memory_backed(shm()), "/dev/shm is tmpfs on Linux");
        assert!(!memory_backed(Path::new("/proc")));
        assert!(!memory_backed(Path::new("/no/such/dir")));
        assert!(!memory_backed(Path::new(env!("CARGO_MANIFEST_DIR"))));
    }

    #[test]
    fn refuses_to_decode_from_a_disk_directory() {
        let video = test_pattern(2);
        let disk = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(matches!(
            frame_thumbnails(&video, MediaKind::Webm, disk),
            Err(ReviewError::Thumbnail(m)) if m.contains("not memory-backed")
        ));
    }

    #[test]
    fn long_videos_are_thinned_evenly_among_the_vpdq_samples() {
        let video = test_pattern(40);
        let frames = frame_thumbnails(&video, MediaKind::Webm, shm()).unwrap();
        assert!(
            (MAX_FRAME_THUMBS / 2..=MAX_FRAME_THUMBS).contains(&frames.len()),
            "{}",
            frames.len()
        );
        let numbers: Vec<u64> = frames.iter().map(|f| f.number).collect();
        // vPDQ samples frames 0, 10, 20, ... (one a second at 10 fps); thinning keeps an
        // evenly spaced subset starting at the first.
        let step = numbers[1] - numbers[0];
        assert!(step.is_multiple_of(10), "{numbers:?}");
        for (i, n) in numbers.iter().enumerate() {
            assert_eq!(*n, i as u64 * step, "{numbers:?}");
        }
        for f in &frames {
            assert!(f.png.starts_with(b"\x89PNG"));
            assert_eq!(f.timestamp, f.number as f64 / 10.0);
        }
    }

    #[test]
    fn hostile_video_bytes_fail_cleanly() {
        let video = test_pattern(2);
        let started = std::time::Instant::now();
        for bad in [
            &b""[..],
            &video[..64],
            b"\x1aE\xdf\xa3 not a matroska header",
        ] {
            assert!(frame_thumbnails(bad, MediaKind::Webm, shm()).is_err());
        }
        // A truncated file gives at most the frames it still holds, or an error.
        if let Ok(frames) = frame_thumbnails(&video[..video.len() / 3], MediaKind::Webm, shm()) {
            assert!(frames.len() <= 2, "{}", frames.len());
        }
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
