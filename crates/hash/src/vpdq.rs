//! vPDQ, Meta's video similarity hash: PDQ of sampled frames, compared as bags of frames.
//!
//! Follows the reference in `facebook/ThreatExchange/vpdq`: each feature is (frame number,
//! quality, PDQ hash, timestamp); frames are kept when `n % floor(seconds_per_hash × fps) == 0`
//! with timestamp `n / fps`; two videos are compared by the share of each one's frames (of
//! quality ≥ 50) that have a frame within the PDQ distance in the other. The text format is the
//! reference's `frame,quality,hash,timestamp` lines.
//!
//! This module only computes and compares; it must not decide what a match *means* (banks and
//! classifications live in the index).

use std::fmt::Write as _;

use crate::animation;
use crate::video::{self, VideoInfo, VideoOptions};
use crate::{HashError, MediaKind, PdqHash, pdq_from_rgb8, sniff};

/// One hashed frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpdqFeature {
    /// Index of the frame among all decoded frames, from 0.
    pub frame: u64,
    /// Seconds from the start: `frame / fps`.
    pub timestamp: f64,
    /// PDQ quality, 0–100.
    pub quality: u8,
    pub hash: PdqHash,
}

/// The vPDQ of one video, with what its container declared.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoHashes {
    pub kind: MediaKind,
    pub info: VideoInfo,
    /// Every sampled frame, in order, low quality included (as the reference writes them).
    pub features: Vec<VpdqFeature>,
}

/// True for media that has moving pictures: video containers, and GIF or WebP files with more
/// than one frame.
pub fn is_moving_picture(bytes: &[u8]) -> bool {
    match sniff(bytes) {
        Some(kind) if kind.is_video() => true,
        Some(MediaKind::Gif) => animation::gif_is_animated(bytes),
        Some(MediaKind::Webp) => animation::webp_is_animated(bytes),
        _ => false,
    }
}

/// Sniff, decode (within `options.limits`) and vPDQ-hash a video or animated image.
pub fn vpdq_hash(bytes: &[u8], options: &VideoOptions) -> Result<VideoHashes, HashError> {
    if bytes.is_empty() {
        return Err(HashError::Empty);
    }
    let kind = sniff(bytes).ok_or(HashError::UnknownFormat)?;
    let mut features = Vec::new();
    let mut hash_frame = |frame: video::Frame<'_>| -> Result<(), HashError> {
        let pdq = pdq_from_rgb8(frame.rgb, frame.width, frame.height)?;
        features.push(VpdqFeature {
            frame: frame.number,
            timestamp: frame.timestamp,
            quality: pdq.quality,
            hash: pdq.hash,
        });
        Ok(())
    };
    let info = match kind {
        MediaKind::Webp => animation::decode_webp_frames(bytes, options, &mut hash_frame)?,
        MediaKind::Jpeg | MediaKind::Png | MediaKind::Bmp => {
            return Err(HashError::NotMoving { kind });
        }
        _ => video::decode_video_frames(bytes, kind, options, &mut hash_frame)?,
    };
    Ok(VideoHashes {
        kind,
        info,
        features,
    })
}

/// How two vPDQ hashes are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpdqMatchParams {
    /// Frames match when their PDQ distance is at most this (default 31).
    pub distance: u32,
    /// Frames under this quality take no part (default 50).
    pub quality: u8,
    /// The pair is a match when at least this percentage of the query's frames is matched…
    pub query_percent: f64,
    /// …or at least this percentage of the candidate's frames (both default 80).
    pub candidate_percent: f64,
}

impl Default for VpdqMatchParams {
    fn default() -> Self {
        Self {
            distance: 31,
            quality: 50,
            query_percent: 80.0,
            candidate_percent: 80.0,
        }
    }
}

/// The outcome of comparing a query video with a candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpdqComparison {
    /// Percentage of the query's usable frames within the distance of some candidate frame.
    pub query_matched_percent: f64,
    /// Percentage of the candidate's usable frames within the distance of some query frame.
    pub candidate_matched_percent: f64,
    pub is_match: bool,
}

/// Compare two vPDQ hashes as bags of frames (frame numbers and timestamps play no part).
/// Either side with no usable frame gives 0 % and no match, as in the reference.
pub fn compare_vpdq(
    query: &[VpdqFeature],
    candidate: &[VpdqFeature],
    params: &VpdqMatchParams,
) -> VpdqComparison {
    let usable = |features: &[VpdqFeature]| -> Vec<PdqHash> {
        features
            .iter()
            .filter(|feature| feature.quality >= params.quality)
            .map(|feature| feature.hash)
            .collect()
    };
    let (query, candidate) = (usable(query), usable(candidate));
    if query.is_empty() || candidate.is_empty() {
        return VpdqComparison {
            query_matched_percent: 0.0,
            candidate_matched_percent: 0.0,
            is_match: false,
        };
    }
    let share = |from: &[PdqHash], to: &[PdqHash]| -> f64 {
        let matched = from
            .iter()
            .filter(|a| to.iter().any(|b| a.hamming_distance(b) <= params.distance))
            .count();
        matched as f64 * 100.0 / from.len() as f64
    };
    let query_matched_percent = share(&query, &candidate);
    let candidate_matched_percent = share(&candidate, &query);
    VpdqComparison {
        query_matched_percent,
        candidate_matched_percent,
        is_match: query_matched_percent >= params.query_percent
            || candidate_matched_percent >= params.candidate_percent,
    }
}

/// The frames worth indexing: quality at least `quality`, and each frame kept only if it is
/// more than `distance` from the last kept frame (the reference README's "pruning frames"),
/// so a still scene costs one entry, not one per second.
pub fn prune_vpdq(features: &[VpdqFeature], quality: u8, distance: u32) -> Vec<VpdqFeature> {
    let mut kept: Vec<VpdqFeature> = Vec::new();
    for feature in features.iter().filter(|feature| feature.quality >= quality) {
        let near_last = kept
            .last()
            .is_some_and(|last| last.hash.hamming_distance(&feature.hash) <= distance);
        if !near_last {
            kept.push(*feature);
        }
    }
    kept
}

/// The reference text format: one `frame,quality,hash,timestamp` line per feature, the
/// timestamp with three decimals.
pub fn write_vpdq_text(features: &[VpdqFeature]) -> String {
    let mut out = String::with_capacity(features.len() * 84);
    for feature in features {
        let _ = writeln!(
            out,
            "{},{},{},{:.3}",
            feature.frame,
            feature.quality,
            feature.hash.to_hex(),
            feature.timestamp
        );
    }
    out
}

/// Read the reference text format (also the older files whose timestamps are written with
/// fewer or more decimals). Blank lines are skipped; anything else malformed is an error
/// naming the line.
pub fn parse_vpdq_text(text: &str) -> Result<Vec<VpdqFeature>, HashError> {
    let mut features = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        features.push(parse_line(line).map_err(|message| HashError::VpdqFormat {
            line: index as u64 + 1,
            message,
        })?);
    }
    Ok(features)
}

/// One `frame,quality,hash,timestamp` line.
pub fn parse_vpdq_line(line: &str) -> Result<VpdqFeature, HashError> {
    parse_line(line.trim()).map_err(|message| HashError::VpdqFormat { line: 1, message })
}

fn parse_line(line: &str) -> Result<VpdqFeature, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [frame, quality, hash, timestamp] = fields.as_slice() else {
        return Err(format!(
            "expected 4 comma-separated fields (frame,quality,hash,timestamp), got {}",
            fields.len()
        ));
    };
    let frame = frame
        .parse::<u64>()
        .map_err(|_| format!("frame number {frame:?} is not a non-negative integer"))?;
    let quality = quality
        .parse::<u8>()
        .ok()
        .filter(|quality| *quality <= 100)
        .ok_or_else(|| format!("quality {quality:?} is not an integer from 0 to 100"))?;
    let hash = PdqHash::from_hex(hash).map_err(|error| error.to_string())?;
    let timestamp = timestamp
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .ok_or_else(|| format!("timestamp {timestamp:?} is not a non-negative number"))?;
    Ok(VpdqFeature {
        frame,
        timestamp,
        quality,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(frame: u64, quality: u8, bits: &[usize]) -> VpdqFeature {
        let mut hash = PdqHash::from_bytes([0; 32]);
        for &bit in bits {
            hash.set_bit(bit);
        }
        VpdqFeature {
            frame,
            timestamp: frame as f64,
            quality,
            hash,
        }
    }

    fn bits(range: std::ops::Range<usize>) -> Vec<usize> {
        range.collect()
    }

    #[test]
    fn text_round_trips_and_bad_lines_name_their_line() {
        let features = vec![feature(0, 100, &[1, 2]), feature(30, 49, &bits(0..200))];
        let text = write_vpdq_text(&features);
        assert!(text.starts_with("0,100,"));
        assert!(text.lines().nth(1).unwrap().ends_with(",30.000"));
        assert_eq!(parse_vpdq_text(&text).unwrap(), features);
        let bad = format!("{text}7,101,{},1.0\n", features[0].hash.to_hex());
        assert!(matches!(
            parse_vpdq_text(&bad),
            Err(HashError::VpdqFormat { line: 3, .. })
        ));
        for hostile in [
            "",
            "1,2,3",
            "a,50,00,0",
            "1,50,zz,0",
            "1,50,,-1",
            "1,50,x,NaN",
        ] {
            assert!(parse_vpdq_line(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn comparison_counts_usable_frames_within_the_distance() {
        let query = vec![
            feature(0, 100, &bits(0..10)),
            feature(1, 100, &bits(100..140)),
            feature(2, 10, &bits(200..256)),
        ];
        // Matches the first query frame at distance 31 exactly; nothing near the second.
        let candidate = vec![feature(0, 90, &bits(0..41)), feature(1, 90, &bits(41..90))];
        let params = VpdqMatchParams::default();
        let result = compare_vpdq(&query, &candidate, &params);
        assert_eq!(result.query_matched_percent, 50.0);
        assert_eq!(result.candidate_matched_percent, 50.0);
        assert!(!result.is_match);
        let loose = VpdqMatchParams {
            query_percent: 50.0,
            ..params
        };
        assert!(compare_vpdq(&query, &candidate, &loose).is_match);
        let strict = VpdqMatchParams {
            distance: 30,
            ..params
        };
        assert_eq!(
            compare_vpdq(&query, &candidate, &strict).query_matched_percent,
            0.0
        );
        let all_low = vec![feature(0, 49, &[])];
        assert!(!compare_vpdq(&all_low, &all_low, &params).is_match);
    }

    #[test]
    fn pruning_drops_low_quality_and_runs_of_near_identical_frames() {
        let features = vec![
            feature(0, 100, &[]),
            feature(1, 100, &[1]),
            feature(2, 100, &[1, 2, 3]),
            feature(3, 20, &bits(0..128)),
            feature(4, 100, &bits(0..60)),
            feature(5, 100, &bits(0..61)),
        ];
        let kept: Vec<u64> = prune_vpdq(&features, 50, 2)
            .iter()
            .map(|f| f.frame)
            .collect();
        assert_eq!(kept, vec![0, 2, 4]);
    }
}
