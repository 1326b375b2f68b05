//! Video and animations in the crawl: vPDQ from a sandboxed FFmpeg child within the crawl's
//! byte and time limits, matched as a whole against video banks (vPDQ, video MD5) and frame by
//! frame against image banks, so a known photo spliced into a video is found, with the time
//! at which it shows.
//!
//! This module must not decide what is illegal (the banks say what matched) and must not keep
//! video bytes: the decoder works on a private temporary copy that the hash crate removes.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use aranea_hash::{HashError, MediaHashes, VideoLimits, VideoOptions, vpdq_hash};
use aranea_index::Signal;
use aranea_index::video::{VideoHit, VideoIndex, match_frames};
use aranea_store::{BankMatch, TimedMatch};

use super::{MatchedMedia, Matcher, bank_match, media_record};

/// How videos are decoded, and the video banks they are matched against.
#[derive(Clone)]
pub struct VideoMatching {
    options: VideoOptions,
    /// Set (and replaced after bank changes) by the embedder: see
    /// [`crate::Crawler::set_video_index`]. Without one, videos still match by digest and by
    /// their frames against image banks.
    index: Arc<RwLock<Option<Arc<VideoIndex>>>>,
}

impl VideoMatching {
    /// Videos of at most `max_bytes`, probed, decoded and hashed within `max_wall`.
    pub fn new(max_bytes: u64, max_wall: Duration) -> VideoMatching {
        VideoMatching {
            options: VideoOptions {
                limits: VideoLimits {
                    max_bytes,
                    max_wall,
                    ..VideoLimits::default()
                },
                ..VideoOptions::default()
            },
            index: Arc::new(RwLock::new(None)),
        }
    }

    /// Matches videos against `index` from now on.
    pub fn set_index(&self, index: Arc<VideoIndex>) {
        if let Ok(mut slot) = self.index.write() {
            *slot = Some(index);
        }
    }

    fn index(&self) -> Option<Arc<VideoIndex>> {
        self.index.read().ok().and_then(|slot| slot.clone())
    }
}

impl Matcher {
    /// Hashes a moving picture's frames and matches the file, its frames and the video.
    pub(super) fn match_moving(
        &self,
        bytes: &[u8],
        hashes: &MediaHashes,
    ) -> Result<MatchedMedia, HashError> {
        let video = match vpdq_hash(bytes, &self.video.options) {
            Ok(video) => video,
            Err(error) => return Ok(self.match_undecodable(hashes, &error)),
        };
        let mut record = media_record(hashes);
        let dimension = |v: u32| (v > 0).then_some(v);
        record.width = record.width.or(dimension(video.info.width));
        record.height = record.height.or(dimension(video.info.height));
        let generation = self.banks.load();
        let digests = [
            Signal::Md5(record.md5),
            Signal::VideoMd5(record.md5),
            Signal::Sha1(record.sha1),
            Signal::Sha256(record.sha256),
        ];
        // An animated GIF or WebP is a picture too: its first frame matches as an image.
        let first_frame: Vec<_> = hashes
            .pdq
            .iter()
            .filter(|p| p.quality >= self.min_pdq_quality)
            .map(|p| p.hash)
            .collect();
        let whole = generation.match_media(&digests, &first_frame, &self.filter);
        let videos = self
            .video
            .index()
            .map(|index| index.match_video(&video.features, generation.banks(), &self.filter))
            .unwrap_or_default();
        if !whole.allowed_by.is_empty() || !videos.allowed_by.is_empty() {
            // Allow-listed as a whole: nothing in it is reported.
            return Ok(MatchedMedia {
                record,
                matches: Vec::new(),
                undecodable: None,
            });
        }
        let quality = self.min_pdq_quality;
        let frames = match_frames(&generation, &video.features, quality, &self.filter);
        let mut matches: Vec<TimedMatch> = Vec::new();
        let found = whole
            .hits
            .iter()
            .map(|hit| (bank_match(hit), None))
            .chain(
                videos
                    .hits
                    .iter()
                    .map(|hit| (video_match(hit), Some(ms(hit.timestamp)))),
            )
            .chain(frames.hits.iter().map(|frame| {
                let at = i64::try_from(frame.timestamp_ms).unwrap_or(i64::MAX);
                (bank_match(&frame.hit), Some(at))
            }));
        for (hit, frame_ms) in found {
            let Some(hit) = hit else { continue };
            // One match per bank entry: the first way it was found (whole file, then video,
            // then frames, earliest first).
            let seen = matches
                .iter()
                .any(|m| m.hit.bank_id == hit.bank_id && m.hit.entry_id == hit.entry_id);
            if !seen {
                matches.push(TimedMatch { hit, frame_ms });
            }
        }
        Ok(MatchedMedia {
            record,
            matches,
            undecodable: None,
        })
    }

    /// A video whose frames cannot be decoded (truncated, a pixel bomb, over the time limit)
    /// is still the bytes it is: its digests are matched, and why it failed is kept.
    fn match_undecodable(&self, hashes: &MediaHashes, error: &HashError) -> MatchedMedia {
        let record = media_record(hashes);
        let digests = [
            Signal::Md5(record.md5),
            Signal::VideoMd5(record.md5),
            Signal::Sha1(record.sha1),
            Signal::Sha256(record.sha256),
        ];
        let found = self.banks.load().match_media(&digests, &[], &self.filter);
        let matches = if found.allowed_by.is_empty() {
            found
                .hits
                .iter()
                .filter_map(bank_match)
                .map(|hit| TimedMatch {
                    hit,
                    frame_ms: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        MatchedMedia {
            record,
            matches,
            undecodable: Some(error.to_string()),
        }
    }
}

fn video_match(hit: &VideoHit) -> Option<BankMatch> {
    Some(BankMatch {
        bank_id: i64::from(hit.bank),
        bank_name: hit.bank_name.clone(),
        entry_id: i64::try_from(hit.entry).ok()?,
        signal_type: "vpdq".to_owned(),
        // Frames are compared within 31 bits; the share matched says how close the videos are.
        distance: 0,
        classification: hit.classification.clone(),
    })
}

fn ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}
