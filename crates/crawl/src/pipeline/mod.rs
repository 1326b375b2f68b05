//! Media from fetched bytes to recorded facts: hash (on the hashing threads, [`CpuPool`], never on
//! the reactor), match against the enabled banks (allow-lists suppress, per-bank PDQ
//! thresholds; videos in [`video`]), record media, sighting and matches idempotently in one
//! transaction, and queue for review.
//!
//! This module must not decide what is illegal (the banks say what matched) and must not
//! write media bytes anywhere: only the [`ReviewMediaSink`] receives them.

use std::sync::Arc;

use aranea_hash::{HashError, Limits, MediaHashes, PdqHash, hash_media, is_moving_picture};
use aranea_index::{BankFilter, Generation, Hit, LiveIndex, Signal};
use aranea_store::{
    BankMatch, MediaRecord, NewSighting, Recorded, ReviewReason, ReviewState, SightingId, Store,
    StoreError, TimedMatch, UnixMillis, UrlId,
};
use bytes::Bytes;

use crate::worker::ReviewMediaSink;

mod cpu;
mod video;

pub use cpu::{CpuError, CpuPool};

pub use video::VideoMatching;

/// How media is matched.
#[derive(Clone)]
pub struct Matcher {
    banks: Arc<LiveIndex>,
    filter: BankFilter,
    min_pdq_quality: u8,
    dihedral: bool,
    video: VideoMatching,
}

/// One piece of media hashed and matched.
#[derive(Debug, Clone)]
pub struct MatchedMedia {
    pub record: MediaRecord,
    /// With the video time of each match, for videos.
    pub matches: Vec<TimedMatch>,
    /// Why a video's frames could not be decoded: then only its digests (MD5, SHA-1, SHA-256,
    /// which come from the bytes alone) were matched.
    pub undecodable: Option<String>,
}

impl Matcher {
    pub fn new(
        banks: Arc<LiveIndex>,
        filter: BankFilter,
        min_pdq_quality: u8,
        dihedral: bool,
        video: VideoMatching,
    ) -> Matcher {
        Matcher {
            banks,
            filter,
            min_pdq_quality,
            dihedral,
            video,
        }
    }

    /// The video hashing and video banks this matcher uses.
    pub fn video(&self) -> &VideoMatching {
        &self.video
    }

    /// Hashes and matches `bytes` (CPU work, and for video a decoder child to wait for: call
    /// from a blocking thread).
    pub fn hash_and_match(&self, bytes: &[u8]) -> Result<MatchedMedia, HashError> {
        let hashes = hash_media(bytes, &Limits::default())?;
        if is_moving_picture(bytes) {
            return self.match_moving(bytes, &hashes);
        }
        let record = media_record(&hashes);
        let variants: Vec<PdqHash> = match &hashes.pdq {
            Some(pdq) if pdq.quality < self.min_pdq_quality => Vec::new(),
            Some(pdq) if self.dihedral => pdq.dihedral().to_vec(),
            Some(pdq) => vec![pdq.hash],
            None => Vec::new(),
        };
        let matches = untimed(self.match_signals(&record, &variants));
        Ok(MatchedMedia {
            record,
            matches,
            undecodable: None,
        })
    }

    /// Matches media already recorded (seen again at another page), without rotations.
    pub fn match_record(&self, record: &MediaRecord) -> Vec<BankMatch> {
        let variants: Vec<PdqHash> = match (record.pdq, record.pdq_quality) {
            (Some(pdq), Some(q)) if q >= self.min_pdq_quality => vec![PdqHash::from_bytes(pdq)],
            _ => Vec::new(),
        };
        self.match_signals(record, &variants)
    }

    fn match_signals(&self, record: &MediaRecord, variants: &[PdqHash]) -> Vec<BankMatch> {
        let digests = [
            Signal::Md5(record.md5),
            Signal::Sha1(record.sha1),
            Signal::Sha256(record.sha256),
        ];
        let generation: Arc<Generation> = self.banks.load();
        let result = generation.match_media(&digests, variants, &self.filter);
        result.hits.iter().filter_map(bank_match).collect()
    }
}

/// Matches of a still image or a whole file: no video time.
pub fn untimed(matches: Vec<BankMatch>) -> Vec<TimedMatch> {
    matches
        .into_iter()
        .map(|hit| TimedMatch {
            hit,
            frame_ms: None,
        })
        .collect()
}

fn bank_match(hit: &Hit) -> Option<BankMatch> {
    Some(BankMatch {
        bank_id: i64::from(hit.bank),
        bank_name: hit.bank_name.clone(),
        entry_id: i64::try_from(hit.entry).ok()?,
        signal_type: hit.value.signal_type().name().to_owned(),
        distance: hit.distance,
        classification: hit.classification.clone(),
    })
}

/// What the store records of hashed media: the hashes, type and dimensions (0 as unknown).
/// Shared with tests that stand in for the crawler, so they record media exactly as it does.
pub fn media_record(hashes: &MediaHashes) -> MediaRecord {
    let dimension = |v: u32| (v > 0).then_some(v);
    MediaRecord {
        sha256: hashes.sha256,
        md5: hashes.md5,
        sha1: hashes.sha1,
        pdq: hashes.pdq.as_ref().map(|p| *p.hash.as_bytes()),
        pdq_quality: hashes.pdq.as_ref().map(|p| p.quality),
        size: hashes.size_bytes,
        kind: hashes.kind.name().to_owned(),
        width: dimension(hashes.width),
        height: dimension(hashes.height),
    }
}

/// Records media seen at `url` on `page` (or inside an archive at `member`), with its
/// matches, in one write transaction, and on every other page that embeds `url`.
/// Idempotent: a repeat returns the same sighting.
pub async fn record_sighting(
    store: &Store,
    media: &MatchedMedia,
    url: UrlId,
    page: Option<UrlId>,
    member: Option<String>,
    server_ip: Option<String>,
    now: UnixMillis,
) -> Result<Recorded, StoreError> {
    let sighting = NewSighting {
        media_sha256: media.record.sha256,
        url,
        page,
        member_path: member,
        seen_at: now,
        server_ip,
    };
    store
        .media()
        .record_seen(&media.record, &sighting, &media.matches, now)
        .await
}

/// Whether review got new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviewed {
    /// A new entry; bytes handed to the sink if given.
    Queued,
    /// Already queued; bytes handed to the sink again if given and still pending.
    AlreadyQueued,
}

/// Media to queue for review: which, where it was seen, why.
#[derive(Debug, Clone, Copy)]
pub struct ForReview {
    pub sha256: [u8; 32],
    pub sighting: SightingId,
    pub reason: ReviewReason,
}

/// Queues media for review and hands its bytes (if any) to `sink` while the entry is
/// pending.
pub async fn queue_for_review(
    store: &Store,
    sink: &Arc<dyn ReviewMediaSink>,
    cpu: &CpuPool,
    item: ForReview,
    bytes: Option<Bytes>,
    now: UnixMillis,
) -> Result<Reviewed, StoreError> {
    let ForReview {
        sha256,
        sighting,
        reason,
    } = item;
    let priority = match reason {
        ReviewReason::Reported => 0,
        ReviewReason::OnMatchingPage => 1,
    };
    let new = store
        .review()
        .enqueue(&sha256, Some(sighting), reason, priority, now)
        .await?;
    let pending = new
        || store
            .review()
            .get(&sha256)
            .await?
            .is_some_and(|e| e.state == ReviewState::Pending);
    if let (true, Some(bytes)) = (pending, bytes) {
        let sink = Arc::clone(sink);
        // A sink failure leaves the entry without bytes; a later sighting hands them again.
        let _ = cpu.run(move || sink.keep(&sha256, &bytes)).await;
    }
    Ok(if new {
        Reviewed::Queued
    } else {
        Reviewed::AlreadyQueued
    })
}
