//! Video in the crawl: benign videos generated from the corpus with the `ffmpeg` CLI and
//! served by the simulated web. A known video (vPDQ bank entry), a clip cut from it, a video
//! whose MD5 is banked, and a video with a known photo spliced in are all matched (the photo
//! with the time it appears); an unknown video beside them goes to review; a truncated video
//! and a decompression bomb end in recorded errors within the crawl's time limits, and are
//! still recorded and matched by their digests (the truncated one's MD5 is banked).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aranea_crawl::{Crawler, ReviewMediaSink};
use aranea_hash::{PdqHash, VideoOptions, crypto_hashes, vpdq_hash};
use aranea_index::video::{VideoIndex, VideoIndexParams, vpdq_entry};
use aranea_index::{BankSpec, BankStore, NewEntry, Origin, Provenance, Signal};
use aranea_simweb::{SimWeb, scenario};
use aranea_store::{ReviewState, Store, UrlState};

const HOST: &str = "sunny-gallery.sim";

fn corpus(name: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .join(name)
}

/// The corpus's own PDQ of an image, from the manifest.
fn manifest_pdq(name: &str) -> PdqHash {
    let manifest = std::fs::read_to_string(corpus("MANIFEST.tsv")).unwrap();
    let line = manifest
        .lines()
        .find(|line| line.starts_with(&format!("{name}\t")))
        .unwrap();
    PdqHash::from_hex(line.split('\t').next_back().unwrap()).unwrap()
}

/// Runs the ffmpeg CLI on finite inputs (it ends by itself).
fn ffmpeg(args: &[&str]) {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/test installs it)");
    assert!(
        output.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A slideshow of corpus images, one second each, 320x240 at 5 fps, H.264 MP4.
fn slideshow(dir: &Path, name: &str, images: &[&str]) -> Vec<u8> {
    let mut args: Vec<String> = Vec::new();
    let mut graph = String::new();
    for (index, image) in images.iter().enumerate() {
        args.extend(["-loop", "1", "-t", "1", "-i"].map(String::from));
        args.push(corpus(image).display().to_string());
        graph.push_str(&format!("[{index}]scale=320:240,setsar=1,fps=5[v{index}];"));
    }
    for index in 0..images.len() {
        graph.push_str(&format!("[v{index}]"));
    }
    graph.push_str(&format!("concat=n={}:v=1[out]", images.len()));
    let out = dir.join(name);
    args.extend(["-filter_complex", &graph, "-map", "[out]"].map(String::from));
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]
        .map(String::from),
    );
    args.push(out.display().to_string());
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::read(out).unwrap()
}

/// Seconds `from`..`from + seconds` of `video`, re-encoded.
fn clip(dir: &Path, video: &[u8], from: u32, seconds: u32) -> Vec<u8> {
    let input = dir.join("clip-source.mp4");
    std::fs::write(&input, video).unwrap();
    let out = dir.join("clip.mp4");
    ffmpeg(&[
        "-ss",
        &from.to_string(),
        "-t",
        &seconds.to_string(),
        "-i",
        &input.display().to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        &out.display().to_string(),
    ]);
    std::fs::read(out).unwrap()
}

/// One black 8192x8192 frame: a few kilobytes that would decode to 200 MB.
fn bomb(dir: &Path) -> Vec<u8> {
    let out = dir.join("bomb.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=8192x8192:d=1:r=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        &out.display().to_string(),
    ]);
    std::fs::read(out).unwrap()
}

#[derive(Default)]
struct Kept(Mutex<Vec<[u8; 32]>>);

impl ReviewMediaSink for Kept {
    fn keep(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<(), String> {
        assert!(!bytes.is_empty());
        self.0.lock().unwrap().push(*sha256);
        Ok(())
    }
}

const VIDEO_IMAGES: [&str; 4] = [
    "img-0011.jpg",
    "img-0012.jpg",
    "img-0013.jpg",
    "img-0014.jpg",
];
const STILL: &str = "img-0021.jpg";
const FILLER: [&str; 3] = ["img-0031.jpg", "img-0033.jpg", "img-0034.jpg"];
const UNKNOWN: [&str; 2] = ["img-0041.jpg", "img-0042.jpg"];
const BY_MD5: [&str; 1] = ["img-0047.jpg"];

struct Served {
    known: Vec<u8>,
    clip: Vec<u8>,
    by_md5: Vec<u8>,
    spliced: Vec<u8>,
    unknown: Vec<u8>,
    truncated: Vec<u8>,
    bomb: Vec<u8>,
}

fn make_videos(dir: &Path) -> Served {
    let known = slideshow(dir, "known.mp4", &VIDEO_IMAGES);
    let clip = clip(dir, &known, 1, 2);
    let unknown = slideshow(dir, "unknown.mp4", &UNKNOWN);
    let mut truncated = slideshow(dir, "truncated.mp4", &FILLER);
    truncated.truncate(truncated.len() / 2);
    Served {
        clip,
        by_md5: slideshow(dir, "md5.mp4", &BY_MD5),
        spliced: slideshow(
            dir,
            "spliced.mp4",
            &[FILLER[0], FILLER[1], STILL, FILLER[2]],
        ),
        unknown,
        truncated,
        bomb: bomb(dir),
        known,
    }
}

/// Banks: the known still (PDQ), the known video (vPDQ), the MD5-banked video and the file
/// MD5 of the truncated video (a hotline banks the files it was sent, broken or not).
fn banks(dir: &Path, served: &Served) -> (Arc<aranea_index::LiveIndex>, Arc<VideoIndex>) {
    let mut store = BankStore::open(dir).unwrap();
    let stills = store
        .create_bank(BankSpec::new("stills", "test", "csam"))
        .unwrap();
    let videos = store
        .create_bank(BankSpec::new("videos", "test", "csam"))
        .unwrap();
    let provenance = store
        .add_provenance(Provenance {
            added_by: "test".into(),
            added_at: 0,
            origin: Origin::Manual,
        })
        .unwrap();
    let features = vpdq_hash(&served.known, &VideoOptions::default())
        .unwrap()
        .features;
    let (vpdq, metadata) = vpdq_entry(&features);
    let entry = |bank, signal, metadata| NewEntry {
        bank,
        signal,
        classification: None,
        provenance,
        line: 0,
        metadata,
    };
    store
        .add_entries(&[
            entry(stills, Signal::Pdq(manifest_pdq(STILL)), None),
            entry(videos, vpdq, Some(metadata)),
            entry(
                videos,
                Signal::VideoMd5(crypto_hashes(&served.by_md5).md5),
                None,
            ),
            entry(
                stills,
                Signal::Md5(crypto_hashes(&served.truncated).md5),
                None,
            ),
        ])
        .unwrap();
    let index = VideoIndex::build(store.state(), VideoIndexParams::default()).unwrap();
    (store.live(), Arc::new(index))
}

const PAGE: &str = r#"<html><body><h1>Clips</h1>
<img src="/v/still.jpg">
<video src="/v/known.mp4"></video>
<video><source src="/v/clip.mp4" type="video/mp4"></video>
<video src="/v/md5.mp4"></video>
<video src="/v/spliced.mp4"></video>
<video src="/v/unknown.mp4"></video>
<video src="/v/truncated.mp4"></video>
<video src="/v/bomb.mkv"></video>
</body></html>"#;

/// What was recorded of the media at `path`: its SHA-256 and every match (signal type,
/// frame time) of its sightings.
async fn matches_at(store: &Store, url: &str) -> ([u8; 32], Vec<(String, Option<i64>)>) {
    let id = store
        .frontier()
        .url_id(url)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{url} not queued"));
    let media = store.crawl_facts().media_at_url(id).await.unwrap();
    let sha = *media
        .first()
        .unwrap_or_else(|| panic!("{url}: no media recorded"));
    let mut found = Vec::new();
    for sighting in store.media().sightings_of(&sha).await.unwrap() {
        for m in store.media().timed_matches_of(sighting.id).await.unwrap() {
            found.push((m.hit.signal_type.clone(), m.frame_ms));
        }
    }
    (sha, found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_clipped_and_spliced_videos_match_and_hostile_videos_are_recorded_errors() {
    let work = tempfile::tempdir().unwrap();
    let served = make_videos(work.path());
    let still = std::fs::read(corpus(STILL)).unwrap();
    let files: [(&str, &str, &[u8]); 8] = [
        ("/v/still.jpg", "image/jpeg", &still),
        ("/v/known.mp4", "video/mp4", &served.known),
        ("/v/clip.mp4", "video/mp4", &served.clip),
        ("/v/md5.mp4", "video/mp4", &served.by_md5),
        ("/v/spliced.mp4", "video/mp4", &served.spliced),
        ("/v/unknown.mp4", "video/mp4", &served.unknown),
        ("/v/truncated.mp4", "video/mp4", &served.truncated),
        ("/v/bomb.mkv", "video/x-matroska", &served.bomb),
    ];
    let mut web = SimWeb::new(scenario::load("small").unwrap())
        .seed(7)
        .extra_file(HOST, "/videos.html", "text/html", PAGE.as_bytes().to_vec());
    for (path, content_type, bytes) in files {
        web = web.extra_file(HOST, path, content_type, bytes.to_vec());
    }
    let world = web.start().unwrap();
    let (banks, videos) = banks(&work.path().join("banks"), &served);
    let store = support::sqlite(work.path()).await;
    let mut config = support::config(&world, 0);
    config.min_pdq_quality = aranea_crawl::CrawlConfig::default().min_pdq_quality;
    let kept = Arc::new(Kept::default());
    let crawler =
        Crawler::with_worker_name(store.clone(), banks, config, kept.clone(), "v").unwrap();
    crawler.set_video_index(videos);
    let page = world.url(HOST, "/videos.html");
    crawler
        .enqueue_seeds(&[page.parse().unwrap()])
        .await
        .unwrap();
    let progress = tokio::time::timeout(Duration::from_secs(50), crawler.run_until_idle())
        .await
        .expect("crawl did not finish in time")
        .unwrap();
    eprintln!("{progress:?}");

    let url = |path: &str| world.url(HOST, path);
    let (_, known) = matches_at(&store, &url("/v/known.mp4")).await;
    assert!(
        known.iter().any(|(signal, _)| signal == "vpdq"),
        "known: {known:?}"
    );
    let (_, clip) = matches_at(&store, &url("/v/clip.mp4")).await;
    assert!(
        clip.iter().any(|(signal, _)| signal == "vpdq"),
        "clip: {clip:?}"
    );
    let (_, by_md5) = matches_at(&store, &url("/v/md5.mp4")).await;
    assert!(
        by_md5
            .iter()
            .any(|(signal, at)| signal == "video_md5" && at.is_none()),
        "{by_md5:?}"
    );
    // The still shows from 2 s to 3 s: its first sampled frame is at 2 s.
    let (_, spliced) = matches_at(&store, &url("/v/spliced.mp4")).await;
    assert_eq!(spliced, vec![("pdq".to_owned(), Some(2_000))], "spliced");
    let (unknown_sha, unknown) = matches_at(&store, &url("/v/unknown.mp4")).await;
    assert!(unknown.is_empty(), "{unknown:?}");
    let entry = store
        .review()
        .get(&unknown_sha)
        .await
        .unwrap()
        .expect("unknown video queued for review");
    assert_eq!(entry.state, ReviewState::Pending);
    assert!(
        kept.0.lock().unwrap().contains(&unknown_sha),
        "its bytes went to the review sink"
    );
    // Videos that cannot be decoded are still their bytes: recorded with their digests and
    // matched by them, with the decode error on the fetch.
    for (path, why) in [("/v/truncated.mp4", "truncated"), ("/v/bomb.mkv", "pixels")] {
        let id = store.frontier().url_id(&url(path)).await.unwrap().unwrap();
        let record = store.frontier().url(id).await.unwrap().unwrap();
        assert_eq!(record.state, UrlState::Done, "{path}");
        let fetches = store.frontier().fetches(id).await.unwrap();
        let error = fetches
            .last()
            .and_then(|f| f.error.clone())
            .unwrap_or_default();
        assert!(
            error.contains("unreadable media") && error.to_lowercase().contains(why),
            "{path}: {error}"
        );
    }
    let (truncated_sha, truncated) = matches_at(&store, &url("/v/truncated.mp4")).await;
    assert_eq!(truncated, vec![("md5".to_owned(), None)], "truncated");
    let media = store.media().get(&truncated_sha).await.unwrap().unwrap();
    assert_eq!(media.record.md5, crypto_hashes(&served.truncated).md5);
    assert_eq!(media.record.sha1, crypto_hashes(&served.truncated).sha1);
    assert_eq!(truncated_sha, crypto_hashes(&served.truncated).sha256);
    let (_, bomb) = matches_at(&store, &url("/v/bomb.mkv")).await;
    assert!(bomb.is_empty(), "{bomb:?}");
    assert!(progress.errors >= 2, "{progress:?}");
}
