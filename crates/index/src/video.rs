//! Video matching: vPDQ entries of banks searched by a query video's frames, and a query
//! video's frames searched against image (PDQ) banks.
//!
//! A `vpdq` bank entry's value is the SHA-256 of the video's vPDQ in the reference text format
//! ([`vpdq_entry`]); the frames are that text, kept in the entry's metadata under `"vpdq"`, so
//! they are journalled, snapshotted, exported and imported with no new record type. A
//! [`VideoIndex`] is built from the bank state: every indexed video's frames (quality ≥ the
//! match quality, consecutive near-identical frames pruned) go into one [`PdqIndex`] with the
//! video they belong to, so a query finds candidate videos by a range search per query frame
//! and compares only those candidates frame bag to frame bag, as the reference's
//! "pruning candidates" describes — never a scan of every video.
//!
//! Frames match within the PDQ threshold of the bank holding the video (`pdq_threshold`, 31 by
//! default, as the reference's distance), read from the bank settings given with each query,
//! so a threshold change applies at once; the match share (80% by default) comes from
//! [`VideoIndexParams::matching`].
//!
//! A [`VideoIndex`] is a snapshot of the entries it was built from: embedders rebuild it after
//! bank changes (the server does so with every change it publishes or notices, see
//! `aranea_server::banks`). This module must not do I/O.

use std::collections::HashMap;

use aranea_hash::{
    HashError, VpdqFeature, VpdqMatchParams, compare_vpdq, crypto_hashes, parse_vpdq_text,
    prune_vpdq, write_vpdq_text,
};
use serde_json::{Map, Value};

use crate::bank::{Bank, BankId, BankKind, EntryId};
use crate::error::StoreError;
use crate::live::{BankFilter, Generation, Hit};
use crate::pdq_index::{CodeHit, IndexParams, PdqIndex, SearchScratch};
use crate::signal::Signal;
use crate::state::BankState;

/// Metadata key holding a `vpdq` entry's frames (reference text format).
pub const VPDQ_METADATA_KEY: &str = "vpdq";

/// Default distance under which consecutive indexed frames count as the same scene: well
/// below the match distance, so pruning loses no match a frame 31 away would have made by
/// more than this margin.
pub const DEFAULT_PRUNE_DISTANCE: u32 = 8;

/// The signal and metadata text of a `vpdq` entry for `features`.
pub fn vpdq_entry(features: &[VpdqFeature]) -> (Signal, String) {
    let text = write_vpdq_text(features);
    let signal = Signal::Vpdq(crypto_hashes(text.as_bytes()).sha256);
    let mut object = Map::new();
    object.insert(VPDQ_METADATA_KEY.into(), Value::from(text));
    (signal, Value::Object(object).to_string())
}

/// Why a `vpdq` entry's frames cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoEntryError {
    #[error("the entry has no \"vpdq\" metadata holding its frames")]
    NoFrames,
    #[error("the entry's frames are malformed: {0}")]
    BadFrames(HashError),
    #[error("the entry's value is not the SHA-256 of its frames")]
    DigestMismatch,
}

/// The frames of a `vpdq` entry, checked against its value.
pub fn vpdq_features(
    signal: &Signal,
    metadata: Option<&str>,
) -> Result<Vec<VpdqFeature>, VideoEntryError> {
    let text = metadata
        .and_then(|m| serde_json::from_str::<Map<String, Value>>(m).ok())
        .and_then(|mut object| match object.remove(VPDQ_METADATA_KEY) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        })
        .ok_or(VideoEntryError::NoFrames)?;
    let features = parse_vpdq_text(&text).map_err(VideoEntryError::BadFrames)?;
    // The stored text may be an older writer's spelling: the identity is the canonical text.
    let (canonical, _) = vpdq_entry(&features);
    if canonical != *signal && Signal::Vpdq(crypto_hashes(text.as_bytes()).sha256) != *signal {
        return Err(VideoEntryError::DigestMismatch);
    }
    Ok(features)
}

/// How a [`VideoIndex`] is built and searched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoIndexParams {
    pub matching: VpdqMatchParams,
    /// See [`DEFAULT_PRUNE_DISTANCE`].
    pub prune_distance: u32,
    pub pdq: IndexParams,
}

impl Default for VideoIndexParams {
    fn default() -> Self {
        Self {
            matching: VpdqMatchParams::default(),
            prune_distance: DEFAULT_PRUNE_DISTANCE,
            pdq: IndexParams::default(),
        }
    }
}

/// One indexed video.
#[derive(Debug, Clone)]
struct IndexedVideo {
    entry: EntryId,
    bank: BankId,
    classification: String,
    /// Frames of usable quality, for the bag-of-frames comparison.
    features: Vec<VpdqFeature>,
}

/// A bank video that matched a query video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoHit {
    pub bank: BankId,
    pub bank_name: String,
    pub bank_kind: BankKind,
    pub entry: EntryId,
    pub classification: String,
    pub query_matched_percent: f64,
    pub candidate_matched_percent: f64,
    /// Timestamp (seconds) of the first query frame that matched a frame of this video.
    pub timestamp: f64,
}

/// The answer to a video query, with allow-lists applied as for images.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoMatchResult {
    /// Best first (highest of the two percentages).
    pub hits: Vec<VideoHit>,
    pub allowed_by: Vec<VideoHit>,
    pub suppressed: Vec<VideoHit>,
}

/// The frames of every enabled `vpdq` entry, searchable by frame.
#[derive(Debug)]
pub struct VideoIndex {
    params: VideoIndexParams,
    frames: PdqIndex,
    /// Video (position in `videos`) of each indexed frame, by frame id.
    frame_video: Vec<u32>,
    videos: Vec<IndexedVideo>,
    /// Entries that could not be indexed, and why (reported, not fatal).
    skipped: Vec<(EntryId, VideoEntryError)>,
}

impl VideoIndex {
    /// Index every enabled `vpdq` entry of `state`, reading the entries one at a time (never all
    /// of them into memory). Fails only if the bank data cannot be read back.
    pub fn build(state: &BankState, params: VideoIndexParams) -> Result<Self, StoreError> {
        Self::build_with(state, params, &mut |_, _| {})
    }

    /// As [`Self::build`], handing each indexed video's frames (all of them, before the
    /// quality filter) to `each_video` on the way, for embedders that keep them beside the
    /// index without reading and parsing the entries a second time.
    pub fn build_with(
        state: &BankState,
        params: VideoIndexParams,
        each_video: &mut dyn FnMut(EntryId, &[VpdqFeature]),
    ) -> Result<Self, StoreError> {
        let empty = Self {
            params,
            frames: PdqIndex::build(Vec::new(), params.pdq)?,
            frame_video: Vec::new(),
            videos: Vec::new(),
            skipped: Vec::new(),
        };
        empty.extended(state, 0, each_video)
    }

    /// This index plus the enabled `vpdq` entries of `state` with ids above `after`, reading
    /// only those (see [`BankState::for_each_entry_after`]). For a state that differs from the
    /// one this index was built from only by entries added ([`crate::EditMark`]): the banks'
    /// classifications and the entries disabled are taken as they were.
    pub fn extended(
        &self,
        state: &BankState,
        after: EntryId,
        each_video: &mut dyn FnMut(EntryId, &[VpdqFeature]),
    ) -> Result<Self, StoreError> {
        let params = self.params;
        let quality = params.matching.quality;
        let mut codes: Vec<_> = (0..self.frames.len() as u32)
            .filter_map(|id| self.frames.code(id).copied())
            .collect();
        let mut frame_video = self.frame_video.clone();
        let mut videos = self.videos.clone();
        let mut skipped = self.skipped.clone();
        // Streamed, not `state.entries()`: that would keep every entry of every bank in memory
        // (~100 bytes each, ~1 GB beside a 10M-entry image bank) for the state's life.
        state.for_each_entry_after(after, &mut |entry| {
            if entry.disabled || !matches!(entry.signal, Signal::Vpdq(_)) {
                return Ok(());
            }
            let features = match vpdq_features(&entry.signal, entry.metadata.as_deref()) {
                Ok(features) => features,
                Err(error) => {
                    skipped.push((entry.id, error));
                    return Ok(());
                }
            };
            each_video(entry.id, &features);
            let position = videos.len() as u32;
            for frame in prune_vpdq(&features, quality, params.prune_distance) {
                codes.push(frame.hash.to_words());
                frame_video.push(position);
            }
            videos.push(IndexedVideo {
                entry: entry.id,
                bank: entry.bank,
                classification: state.classification_of(entry).to_string(),
                features: features
                    .into_iter()
                    .filter(|f| f.quality >= quality)
                    .collect(),
            });
            Ok(())
        })?;
        Ok(Self {
            params,
            frames: PdqIndex::build(codes, params.pdq)?,
            frame_video,
            videos,
            skipped,
        })
    }

    /// Number of indexed videos.
    pub fn len(&self) -> usize {
        self.videos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    /// Number of indexed (pruned) frames.
    pub fn frame_count(&self) -> usize {
        self.frame_video.len()
    }

    /// Entries left out because their frames were missing or malformed.
    pub fn skipped(&self) -> &[(EntryId, VideoEntryError)] {
        &self.skipped
    }

    /// Bank videos matching `query` under the index's parameters. `banks` gives current bank
    /// settings (e.g. [`Generation::banks`]); disabled banks and those `filter` leaves out
    /// report nothing, while enabled allow-list banks always apply. Frames match within the
    /// PDQ threshold of the bank holding the video (as image entries do), not a fixed distance.
    pub fn match_video(
        &self,
        query: &[VpdqFeature],
        banks: &[Bank],
        filter: &BankFilter,
    ) -> VideoMatchResult {
        let matching = &self.params.matching;
        let threshold = |video: &IndexedVideo| {
            banks
                .iter()
                .find(|b| b.id == video.bank && filter.admits(b))
                .map(|b| b.spec.pdq_threshold)
        };
        let Some(radius) = self.videos.iter().filter_map(threshold).max() else {
            return VideoMatchResult::default();
        };
        let probes = prune_vpdq(query, matching.quality, self.params.prune_distance);
        // The first query timestamp at which each candidate video showed up.
        let mut first_seen: HashMap<u32, f64> = HashMap::new();
        let mut scratch = SearchScratch::default();
        let mut found: Vec<CodeHit> = Vec::new();
        for probe in &probes {
            found.clear();
            self.frames
                .search(&probe.hash.to_words(), radius, &mut scratch, &mut found);
            for hit in &found {
                let Some(&video) = self.frame_video.get(hit.id as usize) else {
                    continue;
                };
                let within = self
                    .videos
                    .get(video as usize)
                    .and_then(threshold)
                    .is_some_and(|limit| hit.distance <= limit);
                if within {
                    first_seen.entry(video).or_insert(probe.timestamp);
                }
            }
        }
        let mut ordinary = Vec::new();
        let mut allowed = Vec::new();
        let mut candidates: Vec<(u32, f64)> = first_seen.into_iter().collect();
        candidates.sort_by_key(|&(video, _)| video);
        for (video, timestamp) in candidates {
            let Some(video) = self.videos.get(video as usize) else {
                continue;
            };
            let Some(bank) = banks.iter().find(|b| b.id == video.bank) else {
                continue;
            };
            if !filter.admits(bank) {
                continue;
            }
            let params = VpdqMatchParams {
                distance: bank.spec.pdq_threshold,
                ..*matching
            };
            let comparison = compare_vpdq(query, &video.features, &params);
            if !comparison.is_match {
                continue;
            }
            let hit = VideoHit {
                bank: bank.id,
                bank_name: bank.spec.name.clone(),
                bank_kind: bank.spec.kind,
                entry: video.entry,
                classification: video.classification.clone(),
                query_matched_percent: comparison.query_matched_percent,
                candidate_matched_percent: comparison.candidate_matched_percent,
                timestamp,
            };
            match bank.spec.kind {
                BankKind::AllowList => allowed.push(hit),
                BankKind::Ordinary => ordinary.push(hit),
            }
        }
        let best = |hit: &VideoHit| hit.query_matched_percent.max(hit.candidate_matched_percent);
        ordinary.sort_by(|a, b| best(b).total_cmp(&best(a)).then(a.entry.cmp(&b.entry)));
        if allowed.is_empty() {
            VideoMatchResult {
                hits: ordinary,
                ..VideoMatchResult::default()
            }
        } else {
            VideoMatchResult {
                hits: Vec::new(),
                allowed_by: allowed,
                suppressed: ordinary,
            }
        }
    }
}

/// A known image found in a video frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHit {
    /// The first frame in which the entry matched.
    pub frame: u64,
    /// That frame's timestamp in milliseconds (integral, so hits compare exactly).
    pub timestamp_ms: u64,
    /// How many sampled frames matched the entry.
    pub frames_matched: u64,
    pub hit: Hit,
}

/// The answer to "which known images does this video show, and when?". Allow-lists apply per
/// frame, as each frame is a picture of its own: an allow-listed frame suppresses the hits of
/// that frame only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameMatchResult {
    /// One per matched entry, earliest first.
    pub hits: Vec<FrameHit>,
    /// Allow-list entries that matched some frame.
    pub allowed_by: Vec<FrameHit>,
    /// Entries matched only in allow-listed frames.
    pub suppressed: Vec<FrameHit>,
}

/// Search each usable frame of a video (quality ≥ `quality`; runs of identical frames
/// searched once) against the image banks of `generation`.
pub fn match_frames(
    generation: &Generation,
    features: &[VpdqFeature],
    quality: u8,
    filter: &BankFilter,
) -> FrameMatchResult {
    let probes = prune_vpdq(features, quality, 0);
    let signals: Vec<Signal> = probes.iter().map(|f| Signal::Pdq(f.hash)).collect();
    let results = generation.match_batch(&signals, filter);
    let mut lists: [HashMap<EntryId, FrameHit>; 3] = Default::default();
    for (probe, result) in probes.iter().zip(results) {
        let timestamp_ms = (probe.timestamp * 1000.0).round() as u64;
        let groups = [result.hits, result.allowed_by, result.suppressed];
        for (list, hits) in lists.iter_mut().zip(groups) {
            for hit in hits {
                list.entry(hit.entry)
                    .and_modify(|seen| seen.frames_matched += 1)
                    .or_insert(FrameHit {
                        frame: probe.frame,
                        timestamp_ms,
                        frames_matched: 1,
                        hit,
                    });
            }
        }
    }
    let [hits, allowed_by, suppressed] = lists;
    let sorted = |map: HashMap<EntryId, FrameHit>| {
        let mut list: Vec<FrameHit> = map.into_values().collect();
        list.sort_by_key(|h| (h.timestamp_ms, h.hit.distance, h.hit.entry));
        list
    };
    let suppressed = suppressed
        .into_iter()
        .filter(|(entry, _)| !hits.contains_key(entry))
        .collect();
    FrameMatchResult {
        hits: sorted(hits),
        allowed_by: sorted(allowed_by),
        suppressed: sorted(suppressed),
    }
}
