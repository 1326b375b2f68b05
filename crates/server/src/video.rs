//! Video in `POST /v1/media/` (and `/v1/url/`): a video or animation is decoded by the hash
//! room's sandboxed FFmpeg child within the server's byte and time limits, and its vPDQ
//! frames are matched two ways, as Shield reports them:
//!
//! - against the video banks (`vpdq` entries, through the [`aranea_index::VideoIndex`]): a
//!   known video is a `near` match, with one `near_match_details` row per query frame within
//!   the bank's threshold of the known video's frames, each with its `timestamp` (seconds),
//!   distance and the submitted media's own SHA-1/SHA-256;
//! - frame by frame against the image banks: a known image shown in the video is a `near`
//!   match reported once per bank entry, at the first frame where it appears (an animation's
//!   first frame, also matched as a still picture, is not listed twice).
//!
//! This module only matches; it stores nothing and never keeps frames past the request.

use std::time::Duration;

use aranea_hash::{VideoLimits, VideoOptions, VpdqFeature, VpdqMatchParams};
use aranea_index::{BankFilter, EntryId, Generation, VideoIndexParams, match_frames};

use crate::banks::{MediaRef, VideoBanks};
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

/// How the server's video banks are matched: the match share and the least frame quality
/// from the configuration (the per-frame distance is each bank's threshold).
pub fn index_params(config: &ServerConfig) -> VideoIndexParams {
    let percent = if config.video_match_percent.is_finite() {
        config.video_match_percent.clamp(0.0, 100.0)
    } else {
        VpdqMatchParams::default().query_percent
    };
    let defaults = VideoIndexParams::default();
    VideoIndexParams {
        matching: VpdqMatchParams {
            quality: config.min_pdq_quality,
            query_percent: percent,
            candidate_percent: percent,
            ..defaults.matching
        },
        ..defaults
    }
}

/// One row of a video's answer. A known image's row names its bank entry, so the answer can
/// list each entry once; a known video's rows are one per matching query frame and name none.
#[derive(Debug)]
pub struct FrameRow {
    pub entry: Option<EntryId>,
    pub detail: NearMatchDetail,
}

/// The rows a video's frames earn, each with Shield's classification label, by timestamp.
/// `query` is the submitted media's own hashes, which a known video's rows carry (as Shield
/// does): the bank holds the known video's frames, not its file hashes.
pub fn near_matches(
    state: &AppState,
    generation: &Generation,
    features: &[VpdqFeature],
    query: &MediaRef,
) -> Vec<FrameRow> {
    let quality = state.config().min_pdq_quality;
    let mut rows = Vec::new();
    for found in match_frames(generation, features, quality, &BankFilter::All).hits {
        let media = state.banks().media_ref(found.hit.entry).unwrap_or_default();
        rows.push(FrameRow {
            entry: Some(found.hit.entry),
            detail: NearMatchDetail {
                timestamp: found.timestamp_ms as f64 / 1000.0,
                sha1_base32: media.sha1_base32,
                sha256_hex: media.sha256_hex,
                classification: shield_label(&found.hit.classification).to_owned(),
                distance: found.hit.distance,
            },
        });
    }
    if let Some(videos) = state.banks().videos() {
        video_matches(&videos, generation, features, quality, query, &mut rows);
    }
    rows.sort_by(|a, b| a.detail.timestamp.total_cmp(&b.detail.timestamp));
    rows.truncate(MAX_DETAILS);
    rows
}

/// Known videos: one row per usable query frame within the bank's threshold of one of the
/// known video's frames.
fn video_matches(
    videos: &VideoBanks,
    generation: &Generation,
    features: &[VpdqFeature],
    quality: u8,
    query: &MediaRef,
    rows: &mut Vec<FrameRow>,
) {
    let found = videos
        .index
        .match_video(features, generation.banks(), &BankFilter::All);
    for hit in found.hits {
        let Some(known) = videos.frames(hit.entry) else {
            continue;
        };
        let Some(limit) = generation
            .banks()
            .iter()
            .find(|b| b.id == hit.bank)
            .map(|b| b.spec.pdq_threshold)
        else {
            continue;
        };
        let known: Vec<&VpdqFeature> = known.iter().filter(|f| f.quality >= quality).collect();
        for frame in features.iter().filter(|f| f.quality >= quality) {
            let nearest = known
                .iter()
                .map(|k| k.hash.hamming_distance(&frame.hash))
                .min();
            if let Some(distance) = nearest.filter(|d| *d <= limit) {
                rows.push(FrameRow {
                    entry: None,
                    detail: NearMatchDetail {
                        timestamp: frame.timestamp,
                        sha1_base32: query.sha1_base32.clone(),
                        sha256_hex: query.sha256_hex.clone(),
                        classification: shield_label(&hit.classification).to_owned(),
                        distance,
                    },
                });
            }
            if rows.len() >= MAX_DETAILS {
                return;
            }
        }
    }
}
