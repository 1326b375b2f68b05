//! Video in the `aranea hash` and `aranea bank` commands: vPDQ records for `hash`, frame and
//! video matches for `bank match`, and `bank add-video` / `bank export-vpdq` for vPDQ entries
//! (videos, or vPDQ files in Meta's reference text format).
//!
//! Decoding, hashing and matching live in `aranea-hash` and `aranea-index`; this module only
//! wires them to files and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use aranea_hash::{
    MediaHashes, VideoOptions, VpdqFeature, is_moving_picture, parse_vpdq_text, vpdq_hash,
    write_vpdq_text,
};
use aranea_index::{
    BankFilter, BankStore, FrameHit, Generation, NewEntry, Origin, Provenance, Signal, VideoHit,
    VideoIndex, VideoIndexParams, match_frames, vpdq_entry, vpdq_features,
};
use serde::Serialize;
use serde_json::{Value, json};

/// Largest vPDQ text file `add-video` reads (some 400,000 frames).
const MAX_VPDQ_FILE: u64 = 32 * 1024 * 1024;

/// One vPDQ feature as `aranea hash` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureRecord {
    pub frame: u64,
    /// Seconds from the start.
    pub timestamp: f64,
    pub quality: u8,
    pub hash: String,
}

/// Decoder options for the commands: the defaults with the chosen sampling interval.
pub fn video_options(seconds_per_hash: f64) -> VideoOptions {
    VideoOptions {
        seconds_per_hash,
        ..VideoOptions::default()
    }
}

/// Rounded to the millisecond: the reference writes three decimals.
fn seconds(timestamp: f64) -> f64 {
    (timestamp * 1000.0).round() / 1000.0
}

/// The vPDQ features of `bytes` if it is a video or an animation; `Ok(None)` for stills.
pub fn features_of(
    bytes: &[u8],
    options: &VideoOptions,
) -> Result<Option<(Vec<VpdqFeature>, u32, u32)>, aranea_hash::HashError> {
    if !is_moving_picture(bytes) {
        return Ok(None);
    }
    let hashes = vpdq_hash(bytes, options)?;
    Ok(Some((
        hashes.features,
        hashes.info.width,
        hashes.info.height,
    )))
}

pub fn feature_records(features: &[VpdqFeature]) -> Vec<FeatureRecord> {
    features
        .iter()
        .map(|f| FeatureRecord {
            frame: f.frame,
            timestamp: seconds(f.timestamp),
            quality: f.quality,
            hash: f.hash.to_hex(),
        })
        .collect()
}

/// Everything `bank match` reports for one video file: digest hits (the file's MD5 also as
/// `video_md5`), known images in its frames, and bank videos it matches.
pub fn match_video(
    store: &BankStore,
    generation: &Generation,
    filter: &BankFilter,
    file: &Path,
    hashes: &MediaHashes,
    features: &[VpdqFeature],
) -> anyhow::Result<Value> {
    let digests = [
        Signal::Md5(hashes.md5),
        Signal::VideoMd5(hashes.md5),
        Signal::Sha1(hashes.sha1),
        Signal::Sha256(hashes.sha256),
    ];
    let exact = generation.match_media(&digests, &[], filter);
    let quality = VideoIndexParams::default().matching.quality;
    let frames = match_frames(generation, features, quality, filter);
    let index = VideoIndex::build(store.state(), VideoIndexParams::default())
        .context("indexing the banks' videos")?;
    for (entry, error) in index.skipped() {
        eprintln!("aranea: warning: vpdq entry {entry} skipped: {error}");
    }
    let videos = index.match_video(features, generation.banks(), filter);
    let mut hits: Vec<Value> = exact.hits.iter().map(crate::cmd_bank::hit_json).collect();
    hits.extend(frames.hits.iter().map(frame_hit_json));
    hits.extend(videos.hits.iter().map(video_hit_json));
    let mut value = json!({
        "query": {
            "file": file,
            "kind": hashes.kind.name(),
            "md5": hashes.md5_hex(),
            "sha1": hashes.sha1_hex(),
            "sha256": hashes.sha256_hex(),
            "frames": features.len(),
        },
        "hits": hits,
    });
    let mut allowed: Vec<Value> = exact
        .allowed_by
        .iter()
        .map(crate::cmd_bank::hit_json)
        .collect();
    allowed.extend(frames.allowed_by.iter().map(frame_hit_json));
    allowed.extend(videos.allowed_by.iter().map(video_hit_json));
    if !allowed.is_empty() {
        let mut suppressed: Vec<Value> = exact
            .suppressed
            .iter()
            .map(crate::cmd_bank::hit_json)
            .collect();
        suppressed.extend(frames.suppressed.iter().map(frame_hit_json));
        suppressed.extend(videos.suppressed.iter().map(video_hit_json));
        value["allowed_by"] = allowed.into();
        value["suppressed"] = suppressed.into();
    }
    Ok(value)
}

fn frame_hit_json(hit: &FrameHit) -> Value {
    let mut value = crate::cmd_bank::hit_json(&hit.hit);
    value["match"] = "frame".into();
    value["frame"] = hit.frame.into();
    value["timestamp"] = json!(hit.timestamp_ms as f64 / 1000.0);
    value["frames_matched"] = hit.frames_matched.into();
    value
}

fn video_hit_json(hit: &VideoHit) -> Value {
    json!({
        "bank": hit.bank_name,
        "entry": hit.entry,
        "signal_type": "vpdq",
        "classification": hit.classification,
        "match": "video",
        "timestamp": seconds(hit.timestamp),
        "query_matched_percent": hit.query_matched_percent,
        "candidate_matched_percent": hit.candidate_matched_percent,
    })
}

/// `bank add-video`: each file is a video (hashed here; its MD5 is added as `video_md5` too)
/// or a vPDQ text file in the reference format.
pub fn add_videos(
    store: &mut BankStore,
    bank: &str,
    files: &[PathBuf],
    classification: Option<&str>,
    by: &str,
    seconds_per_hash: f64,
) -> anyhow::Result<ExitCode> {
    let bank_id = store.bank_id(bank)?;
    let mut entries = Vec::new();
    for file in files {
        let bytes = read_bounded(file)?;
        let (features, video_md5) = if is_moving_picture(&bytes) {
            let hashes = vpdq_hash(&bytes, &video_options(seconds_per_hash))
                .with_context(|| format!("hashing {}", file.display()))?;
            let md5 = aranea_hash::crypto_hashes(&bytes).md5;
            (hashes.features, Some(Signal::VideoMd5(md5)))
        } else {
            let text = std::str::from_utf8(&bytes).with_context(|| {
                format!("{} is neither a video nor a vPDQ text file", file.display())
            })?;
            let features =
                parse_vpdq_text(text).with_context(|| format!("reading {}", file.display()))?;
            (features, None)
        };
        if features.is_empty() {
            bail!("{}: no frames", file.display());
        }
        let (signal, metadata) = vpdq_entry(&features);
        entries.push((file, signal, Some(metadata), features.len()));
        if let Some(md5) = video_md5 {
            entries.push((file, md5, None, 0));
        }
    }
    let provenance = store.add_provenance(Provenance {
        added_by: by.to_string(),
        added_at: aranea_index::bank::unix_now(),
        origin: Origin::Manual,
    })?;
    let new: Vec<NewEntry> = entries
        .iter()
        .map(|(_, signal, metadata, _)| NewEntry {
            bank: bank_id,
            signal: *signal,
            classification: classification.map(str::to_string),
            provenance,
            line: 0,
            metadata: metadata.clone(),
        })
        .collect();
    let outcome = store.add_entries(&new)?;
    let duplicate: std::collections::HashMap<usize, u64> =
        outcome.duplicates.iter().copied().collect();
    let mut added = outcome.added.iter();
    for (position, (file, signal, _, frames)) in entries.iter().enumerate() {
        let entry = match duplicate.get(&position) {
            Some(existing) => json!({"duplicate_of": existing}),
            None => json!(added.next()),
        };
        println!(
            "{}",
            json!({"file": file, "signal_type": signal.signal_type().name(),
                   "value": signal.to_hex(), "frames": frames, "entry": entry})
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `bank export-vpdq`: one reference-format text file per enabled `vpdq` entry, named by
/// entry id, in `dir`.
pub fn export_vpdq(store: &BankStore, bank: &str, dir: &Path) -> anyhow::Result<ExitCode> {
    let bank_id = store.bank_id(bank)?;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let mut written = 0;
    let vpdq_entries = store
        .state()
        .entries()
        .iter()
        .filter(|e| e.bank == bank_id && !e.disabled && matches!(e.signal, Signal::Vpdq(_)));
    for entry in vpdq_entries {
        let features = vpdq_features(&entry.signal, entry.metadata.as_deref())
            .with_context(|| format!("entry {}", entry.id))?;
        let path = dir.join(format!("{}.txt", entry.id));
        std::fs::write(&path, write_vpdq_text(&features))
            .with_context(|| path.display().to_string())?;
        written += 1;
    }
    eprintln!("aranea: exported {written} vPDQ files to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| path.display().to_string())?
        .len();
    let limit = VideoOptions::default().limits.max_bytes.max(MAX_VPDQ_FILE);
    if size > limit {
        bail!(
            "{}: {size} bytes, over the limit of {limit}",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| path.display().to_string())
}
