//! Video in `POST /v1/media/` (and `/v1/url/`): a video or animation is decoded by the hash
//! room's sandboxed FFmpeg child within the server's byte and time limits, and its vPDQ
//! frames are matched two ways, as Shield reports them:
//!
//! - against the video banks (`vpdq` entries, through the [`aranea_index::VideoIndex`]): a
//!   known video is a `near` match, with one `near_match_details` row per query frame close
//!   to the known video's frames, each with its `timestamp` (seconds) and distance;
//! - frame by frame against the image banks: a known image shown in the video is a `near`
//!   match reported at the first frame where it appears.
//!
//! This module only matches; it stores nothing and never keeps frames past the request.

use std::time::Duration;

use aranea_hash::{VideoLimits, VideoOptions, VpdqFeature};
use aranea_index::{BankFilter, Generation, match_frames};

use crate::banks::VideoBanks;
use crate::shield::{NearMatchDetail, shield_label};
use crate::{AppState, ServerConfig};

/// Most `near_match_details` rows one answer carries (a long known video would otherwise
/// list every second of it).
pub const MAX_DETAILS: usize = 500;

/// The decoder's options under the server's configuration.
pub fn video_options(config: &ServerConfig) -> VideoOptions {
    let seconds_per_hash = if config.video_seconds_per_hash.is_finite() {
        config.video_seconds_per_hash.max(0.0)
    } else {
        1.0
    };
    let defaults = VideoLimits::default();
    VideoOptions {
        seconds_per_hash,
        limits: VideoLimits {
            max_bytes: config.max_media_bytes as u64,
            max_wall: Duration::from_secs(config.video_timeout_secs.max(1)),
            max_duration_seconds: config.max_video_seconds as f64,
            max_frame_pixels: config.max_pixels.min(defaults.max_frame_pixels),
            ..defaults
        },
        ..VideoOptions::default()
    }
}

/// The rows a video's frames earn, each with Shield's classification label.
pub fn near_matches(
    state: &AppState,
    generation: &Generation,
    features: &[VpdqFeature],
) -> Vec<NearMatchDetail> {
    let quality = state.config().min_pdq_quality;
    let mut details = Vec::new();
    for found in match_frames(generation, features, quality, &BankFilter::All).hits {
        let media = state.banks().media_ref(found.hit.entry).unwrap_or_default();
        details.push(NearMatchDetail {
            timestamp: found.timestamp_ms as f64 / 1000.0,
            sha1_base32: media.sha1_base32,
            sha256_hex: media.sha256_hex,
            classification: shield_label(&found.hit.classification).to_owned(),
            distance: found.hit.distance,
        });
    }
    if let Some(videos) = state.banks().videos() {
        video_matches(&videos, generation, features, quality, &mut details);
    }
    details.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    details.truncate(MAX_DETAILS);
    details
}

/// Known videos: one row per usable query frame within the match distance of one of the
/// known video's frames.
fn video_matches(
    videos: &VideoBanks,
    generation: &Generation,
    features: &[VpdqFeature],
    quality: u8,
    details: &mut Vec<NearMatchDetail>,
) {
    let found = videos
        .index
        .match_video(features, generation.banks(), &BankFilter::All);
    let limit = aranea_hash::VpdqMatchParams::default().distance;
    for hit in found.hits {
        let Some(known) = videos.frames(hit.entry) else {
            continue;
        };
        let known: Vec<&VpdqFeature> = known.iter().filter(|f| f.quality >= quality).collect();
        for frame in features.iter().filter(|f| f.quality >= quality) {
            let nearest = known
                .iter()
                .map(|k| k.hash.hamming_distance(&frame.hash))
                .min();
            if let Some(distance) = nearest.filter(|d| *d <= limit) {
                details.push(NearMatchDetail {
                    timestamp: frame.timestamp,
                    sha1_base32: String::new(),
                    sha256_hex: String::new(),
                    classification: shield_label(&hit.classification).to_owned(),
                    distance,
                });
            }
            if details.len() >= MAX_DETAILS {
                return;
            }
        }
    }
}
