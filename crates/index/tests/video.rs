//! Video entries end to end on a real bank directory: `vpdq` and `video_md5` entries are
//! journalled, snapshotted and reopened; a query video finds bank videos through the frame
//! index (clips, re-encodes) and not unrelated ones; known images are found inside a video
//! with their timestamps; vPDQ rows round-trip through export and import, and tampered rows
//! are refused. Videos are synthetic frame lists here: the decoder is tested in aranea-hash.

mod common;

use aranea_hash::{PdqHash, VpdqFeature};
use aranea_index::export::{ExportOptions, write_list};
use aranea_index::import::{ListFormat, ReadOptions, read_list};
use aranea_index::store::SNAPSHOT_FILE;
use aranea_index::{
    BankFilter, BankKind, BankSpec, BankStore, NewEntry, Signal, SignalType, VideoIndex,
    VideoIndexParams, match_frames, vpdq_entry, vpdq_features,
};
use common::{entry, pdq, provenance};

fn flip(hash: PdqHash, bits: u32, offset: u32) -> PdqHash {
    let mut words = hash.to_words();
    for bit in offset..offset + bits {
        words[(bit / 64 % 4) as usize] ^= 1 << (bit % 64);
    }
    PdqHash::from_words(words)
}

/// A video of `scenes` distinct scenes, `per_scene` one-second frames each, slightly noisy.
fn video(first_scene: u64, scenes: u64, per_scene: u64) -> Vec<VpdqFeature> {
    (0..scenes * per_scene)
        .map(|i| VpdqFeature {
            frame: i * 30,
            timestamp: i as f64,
            quality: 100,
            hash: flip(pdq(first_scene + i / per_scene), (i % per_scene) as u32, 7),
        })
        .collect()
}

fn new_entry(bank: u32, signal: Signal, metadata: Option<String>, provenance: u32) -> NewEntry {
    NewEntry {
        metadata,
        ..entry(bank, signal, provenance)
    }
}

fn add_video(store: &mut BankStore, bank: u32, features: &[VpdqFeature]) -> u64 {
    let p = provenance(store);
    let (signal, metadata) = vpdq_entry(features);
    store
        .add_entries(&[new_entry(bank, signal, Some(metadata), p)])
        .unwrap()
        .added[0]
}

#[test]
fn bank_videos_survive_reopening_and_are_found_by_clips_and_noisy_copies() {
    let dir = tempfile::tempdir().unwrap();
    let known = video(100, 6, 5);
    let (known_entry, md5_entry);
    let video_md5 = Signal::from_hex(SignalType::VideoMd5, &"ab".repeat(16)).unwrap();
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("videos", "local", "csam"))
            .unwrap();
        known_entry = add_video(&mut store, bank, &known);
        store.write_snapshot().unwrap();
        // After the snapshot: only in the journal.
        for scene in 0..50 {
            add_video(&mut store, bank, &video(1_000 + scene * 10, 4, 3));
        }
        let p = provenance(&mut store);
        md5_entry = store
            .add_entries(&[new_entry(bank, video_md5, None, p)])
            .unwrap()
            .added[0];
    }
    let store = BankStore::open(dir.path()).unwrap();
    assert!(store.warnings().is_empty(), "{:?}", store.warnings());
    let generation = store.live().load();
    assert_eq!(
        generation.match_signal(&video_md5, &BankFilter::All).hits[0].entry,
        md5_entry
    );
    let index = VideoIndex::build(store.state(), VideoIndexParams::default()).unwrap();
    assert_eq!(index.len(), 51);
    assert!(index.skipped().is_empty());
    // Pruning keeps one frame per noisy scene.
    assert_eq!(index.frame_count(), 6 + 50 * 4);

    // A clip of scenes 2-3, re-encoded (more noise), starting at its own time zero.
    let clip: Vec<VpdqFeature> = known[10..20]
        .iter()
        .enumerate()
        .map(|(i, f)| VpdqFeature {
            frame: i as u64 * 25,
            timestamp: i as f64,
            hash: flip(f.hash, 12, 100),
            ..*f
        })
        .collect();
    let result = index.match_video(&clip, generation.banks(), &BankFilter::All);
    assert_eq!(result.hits.len(), 1, "{result:?}");
    let hit = &result.hits[0];
    assert_eq!(hit.entry, known_entry);
    assert_eq!(hit.query_matched_percent, 100.0);
    assert!((hit.candidate_matched_percent - 100.0 / 3.0).abs() < 1e-9);
    assert_eq!(hit.timestamp, 0.0);
    assert_eq!(hit.classification, "csam");

    // An unrelated video, and the clip with its bits scrambled past the distance, find nothing.
    let unrelated = video(5_000, 5, 5);
    assert!(
        index
            .match_video(&unrelated, generation.banks(), &BankFilter::All)
            .hits
            .is_empty()
    );
    let far: Vec<VpdqFeature> = clip
        .iter()
        .map(|f| VpdqFeature {
            hash: flip(f.hash, 40, 150),
            ..*f
        })
        .collect();
    assert!(
        index
            .match_video(&far, generation.banks(), &BankFilter::All)
            .hits
            .is_empty()
    );
    // Low-quality query frames take no part.
    let dull: Vec<VpdqFeature> = clip
        .iter()
        .map(|f| VpdqFeature { quality: 20, ..*f })
        .collect();
    assert!(
        index
            .match_video(&dull, generation.banks(), &BankFilter::All)
            .hits
            .is_empty()
    );
}

#[test]
fn disabled_entries_and_banks_report_nothing_and_allow_lists_suppress() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("videos", "local", "csam"))
        .unwrap();
    let allow = store
        .create_bank(BankSpec {
            kind: BankKind::AllowList,
            ..BankSpec::new("stock", "local", "stock")
        })
        .unwrap();
    let first = video(10, 3, 2);
    let second = video(50, 3, 2);
    let first_entry = add_video(&mut store, bank, &first);
    add_video(&mut store, bank, &second);
    add_video(&mut store, allow, &second);
    let p = provenance(&mut store);
    store.disable_entry(first_entry, p).unwrap();
    let index = VideoIndex::build(store.state(), VideoIndexParams::default()).unwrap();
    let banks = store.live().load().banks().to_vec();
    assert!(
        index
            .match_video(&first, &banks, &BankFilter::All)
            .hits
            .is_empty()
    );
    let allowed = index.match_video(&second, &banks, &BankFilter::All);
    assert!(allowed.hits.is_empty());
    assert_eq!(allowed.allowed_by.len(), 1);
    assert_eq!(allowed.suppressed.len(), 1);
    store
        .update_bank("stock", |spec| spec.enabled = false)
        .unwrap();
    let banks = store.live().load().banks().to_vec();
    assert_eq!(
        index
            .match_video(&second, &banks, &BankFilter::All)
            .hits
            .len(),
        1
    );
    assert!(
        index
            .match_video(&second, &banks, &BankFilter::Only(vec![allow]))
            .hits
            .is_empty()
    );
}

/// `video` with every frame's hash `bits` bits further away.
fn shifted(features: &[VpdqFeature], bits: u32) -> Vec<VpdqFeature> {
    features
        .iter()
        .map(|f| VpdqFeature {
            hash: flip(f.hash, bits, 120),
            ..*f
        })
        .collect()
}

#[test]
fn a_banks_threshold_sets_the_frame_distance_and_the_match_share_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("videos", "local", "csam"))
        .unwrap();
    let known = video(300, 4, 3);
    let entry = add_video(&mut store, bank, &known);
    let index = VideoIndex::build(store.state(), VideoIndexParams::default()).unwrap();
    let matches = |store: &BankStore, query: &[VpdqFeature], index: &VideoIndex| {
        let banks = store.live().load().banks().to_vec();
        let hits = index.match_video(query, &banks, &BankFilter::All).hits;
        hits.iter().map(|h| h.entry).collect::<Vec<_>>()
    };
    // 20 bits from every frame (the known frames carry up to 2 bits of noise of their own):
    // within the default 31, not within a threshold of 10.
    let near = shifted(&known, 20);
    assert_eq!(matches(&store, &near, &index), [entry]);
    store
        .update_bank("videos", |s| s.pdq_threshold = 10)
        .unwrap();
    assert!(matches(&store, &near, &index).is_empty());
    // A threshold above the default finds what 31 cannot (the index is not rebuilt: the bank
    // settings given with the query decide).
    let far = shifted(&known, 40);
    assert!(matches(&store, &far, &index).is_empty());
    store
        .update_bank("videos", |s| s.pdq_threshold = 50)
        .unwrap();
    assert_eq!(matches(&store, &far, &index), [entry]);
    store
        .update_bank("videos", |s| s.pdq_threshold = 31)
        .unwrap();

    // Half the query is the known video, half unrelated: under the default 80% neither share
    // is reached (the known video's frames are all matched only if the query holds them all).
    let mut half: Vec<VpdqFeature> = known[..6].to_vec();
    half.extend(video(900, 2, 3));
    assert!(matches(&store, &half, &index).is_empty());
    let lenient = VideoIndexParams {
        matching: aranea_hash::VpdqMatchParams {
            query_percent: 50.0,
            ..Default::default()
        },
        ..VideoIndexParams::default()
    };
    let index = VideoIndex::build(store.state(), lenient).unwrap();
    let banks = store.live().load().banks().to_vec();
    let hit = &index.match_video(&half, &banks, &BankFilter::All).hits[0];
    assert_eq!(hit.entry, entry);
    assert_eq!(hit.query_matched_percent, 50.0);
}

#[test]
fn a_known_image_inside_a_video_is_reported_with_its_first_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("images", "local", "csam"))
        .unwrap();
    let p = provenance(&mut store);
    let image = pdq(777);
    let entry = store
        .add_entries(&[new_entry(bank, Signal::Pdq(image), None, p)])
        .unwrap()
        .added[0];
    let mut features = video(1, 6, 2);
    // Seconds 4 and 5 show the known image (re-encoded: a few bits off).
    for feature in &mut features[4..6] {
        feature.hash = flip(image, 9, 30);
    }
    // A low-quality frame of it is not evidence.
    features[8].hash = image;
    features[8].quality = 10;
    let result = match_frames(&store.live().load(), &features, 50, &BankFilter::All);
    assert_eq!(result.hits.len(), 1, "{result:?}");
    let hit = &result.hits[0];
    assert_eq!(hit.hit.entry, entry);
    assert_eq!((hit.frame, hit.timestamp_ms), (120, 4000));
    // Identical consecutive frames are searched once.
    assert_eq!(hit.frames_matched, 1);
    assert_eq!(hit.hit.distance, 9);
    assert!(
        match_frames(&store.live().load(), &video(1, 6, 2), 50, &BankFilter::All)
            .hits
            .is_empty()
    );
}

#[test]
fn vpdq_rows_round_trip_through_jsonl_and_tampered_rows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("videos", "local", "csam"))
        .unwrap();
    let features = video(40, 3, 3);
    add_video(&mut store, bank, &features);
    let mut out = Vec::new();
    let options = ExportOptions::default();
    assert_eq!(
        write_list(store.state(), bank, ListFormat::Jsonl, &options, &mut out).unwrap(),
        1
    );
    let text = String::from_utf8(out).unwrap();
    let mut rows = Vec::new();
    read_list(
        text.as_bytes(),
        ListFormat::Jsonl,
        &ReadOptions::default(),
        &mut |row| rows.push(row),
    )
    .unwrap();
    let row = rows.remove(0).unwrap();
    assert_eq!(row.signal.signal_type(), SignalType::Vpdq);
    assert_eq!(
        vpdq_features(&row.signal, row.metadata.as_deref()).unwrap(),
        features
    );

    // One hash digit changed in the frames: the value no longer names them.
    let first_hash = features[0].hash.to_hex();
    let tampered = text.replacen(&first_hash[..8], "00000000", 1);
    assert_ne!(tampered, text);
    let mut errors = Vec::new();
    read_list(
        tampered.as_bytes(),
        ListFormat::Jsonl,
        &ReadOptions::default(),
        &mut |row| {
            if let Err(error) = row {
                errors.push(error)
            }
        },
    )
    .unwrap();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("SHA-256"),
        "{}",
        errors[0].message
    );
    // A vpdq value with no frames at all.
    let bare = format!(
        "{{\"signal_type\":\"vpdq\",\"signal_value\":\"{}\"}}\n",
        "cd".repeat(32)
    );
    let mut errors = Vec::new();
    read_list(
        bare.as_bytes(),
        ListFormat::Jsonl,
        &ReadOptions::default(),
        &mut |row| {
            if let Err(error) = row {
                errors.push(error)
            }
        },
    )
    .unwrap();
    assert!(
        errors[0].message.contains("no \"vpdq\" metadata"),
        "{}",
        errors[0].message
    );
}

/// Building the video index streams the entries: a server holding a 10M-entry image bank
/// beside its video banks must not keep every entry in memory for that. Seen from outside,
/// with the snapshot cut under the open store after a first build: a second build fails
/// instead of indexing only the videos read so far, and the entries are read from the file,
/// not from a copy in memory that the first build left behind.
#[test]
fn the_video_index_streams_the_entries_and_an_unreadable_snapshot_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        let images = store
            .create_bank(BankSpec::new("images", "local", "csam"))
            .unwrap();
        let videos = store
            .create_bank(BankSpec::new("videos", "local", "csam"))
            .unwrap();
        let p = provenance(&mut store);
        let pictures: Vec<NewEntry> = (0..3_000)
            .map(|seed| new_entry(images, Signal::Pdq(pdq(seed)), None, p))
            .collect();
        store.add_entries(&pictures).unwrap();
        for scene in 0..5 {
            add_video(&mut store, videos, &video(10_000 + scene * 10, 3, 3));
        }
        store.write_snapshot().unwrap();
    }
    let store = BankStore::open(dir.path()).unwrap();
    let index = VideoIndex::build(store.state(), VideoIndexParams::default()).unwrap();
    let query = video(10_020, 3, 3);
    let generation = store.live().load();
    let found = index.match_video(&query, generation.banks(), &BankFilter::All);
    assert_eq!(found.hits.len(), 1, "the third video is found");

    let snapshot = dir.path().join(SNAPSHOT_FILE);
    let intact = std::fs::metadata(&snapshot).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snapshot)
        .unwrap()
        .set_len(intact / 2)
        .unwrap();
    assert!(
        VideoIndex::build(store.state(), VideoIndexParams::default()).is_err(),
        "a snapshot that cannot be read back is an error, not a partial video index"
    );
    // Had the first build read every entry into memory, they would all still be there.
    assert!(store.state().entries().len() < 3_005);
    assert!(store.state().read_error().is_some());
}

#[test]
fn an_index_extended_with_added_entries_finds_what_one_built_afresh_finds() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("videos", "local", "csam"))
        .unwrap();
    let first = video(100, 4, 3);
    let first_entry = add_video(&mut store, bank, &first);
    store.write_snapshot().unwrap();
    let before = VideoIndex::build(store.state(), VideoIndexParams::default()).unwrap();
    let last_indexed = first_entry;

    // Added since: two videos, an image entry, and a video entry whose frames are missing.
    let second = video(2_000, 3, 2);
    let second_entry = add_video(&mut store, bank, &second);
    let third = video(3_000, 2, 2);
    let third_entry = add_video(&mut store, bank, &third);
    let p = provenance(&mut store);
    let image = Signal::Pdq(pdq(7));
    let (broken, _) = vpdq_entry(&video(4_000, 1, 1));
    store
        .add_entries(&[entry(bank, image, p), new_entry(bank, broken, None, p)])
        .unwrap();

    let mut handed = Vec::new();
    let extended = before
        .extended(store.state(), last_indexed, &mut |id, frames| {
            handed.push((id, frames.len()))
        })
        .unwrap();
    let afresh = VideoIndex::build(store.state(), VideoIndexParams::default()).unwrap();
    assert_eq!(handed, vec![(second_entry, 6), (third_entry, 4)]);
    assert_eq!((extended.len(), afresh.len()), (3, 3));
    assert_eq!(extended.frame_count(), afresh.frame_count());
    assert_eq!(extended.skipped(), afresh.skipped());
    assert_eq!(extended.skipped().len(), 1);
    let generation = store.live().load();
    for (features, expected) in [
        (&first, first_entry),
        (&second, second_entry),
        (&third, third_entry),
    ] {
        let found = extended.match_video(features, generation.banks(), &BankFilter::All);
        let hits: Vec<u64> = found.hits.iter().map(|h| h.entry).collect();
        assert_eq!(hits, vec![expected]);
        assert_eq!(
            found,
            afresh.match_video(features, generation.banks(), &BankFilter::All)
        );
    }
}
