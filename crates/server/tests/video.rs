//! Video through `POST /v1/media/` on a real socket, with benign slideshows made from corpus
//! photos by the ffmpeg CLI: a known video (and a re-encode of it) matches the video bank
//! with per-frame timestamps, a known photo spliced into a video matches the image bank at
//! the second it appears, an unknown video matches nothing, and hostile videos get Shield's
//! error answers in bounded time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aranea_hash::{PdqHash, VideoOptions, vpdq_hash};
use aranea_index::{BankSpec, NewEntry, Origin, Provenance, Signal, vpdq_entry};
use aranea_server::ServerConfig;
use aranea_server::shield::ScannedMedia;
use common::{Reply, call};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn ffmpeg(args: &[String]) {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/test installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Corpus photos, two seconds each, at `size` and 10 fps, H.264 in MP4 (`extra` before the
/// output name, e.g. a quality setting).
fn slideshow(dir: &Path, name: &str, images: &[&str], size: &str, extra: &[&str]) -> PathBuf {
    let mut args = Vec::new();
    let mut graph = String::new();
    for (index, image) in images.iter().enumerate() {
        args.extend(["-loop", "1", "-t", "2", "-i"].map(String::from));
        args.push(format!("{CORPUS}/{image}"));
        graph.push_str(&format!("[{index}]scale={size},setsar=1,fps=10[v{index}];"));
    }
    graph.extend((0..images.len()).map(|i| format!("[v{i}]")));
    graph.push_str(&format!("concat=n={}:v=1[out]", images.len()));
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
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = dir.join(name);
    args.push(out.display().to_string());
    ffmpeg(&args);
    out
}

/// `(sha256, pdq_hex)` of a corpus photo from the manifest.
fn manifest(name: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("{CORPUS}/MANIFEST.tsv")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    (fields[1].to_owned(), fields.last().unwrap().to_string())
}

fn scan(addr: std::net::SocketAddr, credentials: &str, content_type: &str, body: &[u8]) -> Reply {
    call(
        addr,
        "POST",
        "/v1/media/",
        Some(credentials),
        Some(content_type),
        body,
    )
}

fn scanned(reply: &Reply) -> ScannedMedia {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    serde_json::from_slice(&reply.body).unwrap()
}

/// Banks: `known-images` (csam) holding the PDQ of img-0006 with its SHA-256, and
/// `known-videos` (csam) holding the vPDQ and MD5 of `video`.
fn load_banks(server: &common::Server, video: &[u8]) {
    let features = vpdq_hash(video, &VideoOptions::default()).unwrap().features;
    let (vpdq, metadata) = vpdq_entry(&features);
    let md5 = aranea_hash::crypto_hashes(video).md5;
    let (sha256, pdq_hex) = manifest("img-0006.jpg");
    let pdq = PdqHash::from_hex(&pdq_hex).unwrap();
    server
        .state
        .banks()
        .write(|store| {
            let images = store.create_bank(BankSpec::new("known-images", "test", "csam"))?;
            let videos = store.create_bank(BankSpec::new("known-videos", "test", "csam"))?;
            let provenance = store.add_provenance(Provenance {
                added_by: "test".into(),
                added_at: 0,
                origin: Origin::Manual,
            })?;
            let entry = |bank, signal, metadata: Option<String>| NewEntry {
                bank,
                signal,
                classification: None,
                provenance,
                line: 0,
                metadata,
            };
            store.add_entries(&[
                entry(
                    images,
                    Signal::Pdq(pdq),
                    Some(format!("{{\"sha256_hex\":\"{sha256}\"}}")),
                ),
                entry(videos, vpdq, Some(metadata)),
                entry(videos, Signal::VideoMd5(md5), None),
            ])?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn videos_match_known_videos_and_known_images_inside_them_with_timestamps() {
    let server = common::start("video", ServerConfig::default());
    let shield = server.client("acme", &["shield"], None);
    let work = server.dir.join("videos");
    std::fs::create_dir_all(&work).unwrap();
    let photos = ["img-0003.jpg", "img-0004.jpg", "img-0005.jpg"];
    let known = slideshow(&work, "known.mp4", &photos, "320:240", &[]);
    let known_bytes = std::fs::read(&known).unwrap();
    load_banks(&server, &known_bytes);
    let addr = server.addr;

    // The known file itself: its MD5 is in the video bank (exact), its frames too (near).
    let answer = scanned(&scan(addr, &shield, "video/mp4", &known_bytes));
    assert_eq!(answer.match_type.as_deref(), Some("exact"));
    assert_eq!(answer.classification, "csam");
    assert_eq!(answer.size_bytes, known_bytes.len() as u64);
    let stamps: Vec<f64> = answer
        .near_match_details
        .iter()
        .map(|d| d.timestamp)
        .collect();
    assert_eq!(stamps, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(answer.near_match_details.iter().all(|d| d.distance == 0));
    // A known video's rows carry the scanned media's own hashes, as Shield's do.
    for detail in &answer.near_match_details {
        assert_eq!(detail.sha1_base32, answer.sha1_base32);
        assert_eq!(detail.sha256_hex, answer.sha256_hex);
        assert_eq!(detail.sha256_hex.len(), 64);
    }

    // A re-encode at another size and a poor quality: the same video by its frames.
    let reencoded = slideshow(&work, "re.mp4", &photos, "240:180", &["-crf", "40"]);
    let answer = scanned(&scan(
        addr,
        &shield,
        "video/mp4",
        &std::fs::read(&reencoded).unwrap(),
    ));
    assert_eq!(answer.match_type.as_deref(), Some("near"));
    assert_eq!(answer.classification, "csam");
    // Heavy re-encoding moves some frames past distance 31; the video still matches.
    assert!(answer.near_match_details.len() >= 3, "{answer:?}");
    assert!(answer.near_match_details.iter().all(|d| d.distance <= 31));
    assert!(
        answer
            .near_match_details
            .iter()
            .all(|d| d.sha256_hex == answer.sha256_hex && !d.sha1_base32.is_empty())
    );

    // A known photo spliced in after four seconds of unknown ones.
    let spliced = slideshow(
        &work,
        "spliced.mkv",
        &["img-0020.jpg", "img-0021.jpg", "img-0006.jpg"],
        "320:240",
        &["-f", "matroska"],
    );
    let answer = scanned(&scan(
        addr,
        &shield,
        "video/x-matroska",
        &std::fs::read(&spliced).unwrap(),
    ));
    assert_eq!(answer.match_type.as_deref(), Some("near"), "{answer:?}");
    assert_eq!(answer.near_match_details.len(), 1, "{answer:?}");
    let detail = &answer.near_match_details[0];
    assert_eq!(detail.timestamp, 4.0);
    assert_eq!(detail.sha256_hex, manifest("img-0006.jpg").0);
    assert!(detail.distance <= 31);

    // An unknown video.
    let unknown = slideshow(
        &work,
        "unknown.mp4",
        &["img-0030.jpg", "img-0031.jpg"],
        "320:240",
        &[],
    );
    let answer = scanned(&scan(
        addr,
        &shield,
        "video/mp4",
        &std::fs::read(&unknown).unwrap(),
    ));
    assert_eq!(answer.classification, "no-known-match");
    assert_eq!(answer.match_type, None);
    assert!(answer.near_match_details.is_empty());

    // Hostile videos: Shield's error shape, in bounded time.
    let mut garbage = known_bytes[..64].to_vec();
    garbage.extend(std::iter::repeat_n(0x5a, 200_000));
    let hostile: [(&str, Vec<u8>, u16); 3] = [
        (
            "truncated",
            known_bytes[..known_bytes.len() / 3].to_vec(),
            400,
        ),
        ("a header and garbage", garbage, 400),
        ("empty", Vec::new(), 400),
    ];
    for (what, body, status) in hostile {
        let started = Instant::now();
        let reply = scan(addr, &shield, "video/mp4", &body);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} took too long"
        );
        assert_eq!(
            reply.status,
            status,
            "{what}: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(reply.json()["detail"].is_string(), "{what}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn video_limits_refuse_long_and_oversized_videos() {
    let config = ServerConfig {
        max_video_seconds: 3,
        max_media_bytes: 200_000,
        ..ServerConfig::default()
    };
    let server = common::start("video-limits", config);
    let shield = server.client("acme", &["shield"], None);
    let work = server.dir.join("videos");
    std::fs::create_dir_all(&work).unwrap();
    let long = slideshow(
        &work,
        "long.mp4",
        &["img-0007.jpg", "img-0009.jpg"],
        "160:120",
        &[],
    );
    let started = Instant::now();
    let reply = scan(
        server.addr,
        &shield,
        "video/mp4",
        &std::fs::read(&long).unwrap(),
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        reply.status,
        400,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let detail = reply.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("could not be hashed"), "{detail}");
    let big = vec![0u8; 300_000];
    let reply = scan(server.addr, &shield, "video/mp4", &big);
    assert_eq!(reply.status, 413);
    assert!(reply.json()["detail"].as_str().unwrap().contains("200000"));
}

/// Sets the PDQ threshold of `bank` through the live banks (as the API and `aranea bank`
/// do), which applies to the bank's video frames too.
fn set_threshold(server: &common::Server, bank: &str, threshold: u32) {
    server
        .state
        .banks()
        .write(|store| store.update_bank(bank, |spec| spec.pdq_threshold = threshold))
        .unwrap();
}

#[test]
fn a_banks_threshold_is_the_frame_distance_and_the_match_share_is_configured() {
    let server = common::start("video-threshold", ServerConfig::default());
    let shield = server.client("acme", &["shield"], None);
    let work = server.dir.join("videos");
    std::fs::create_dir_all(&work).unwrap();
    let photos = ["img-0040.jpg", "img-0041.jpg", "img-0042.jpg"];
    let known = slideshow(&work, "known.mp4", &photos, "320:240", &[]);
    load_banks(&server, &std::fs::read(&known).unwrap());
    // Another size and quality: every frame a few bits away, none identical.
    let near = std::fs::read(slideshow(
        &work,
        "near.mp4",
        &photos,
        "256:192",
        &["-crf", "30"],
    ))
    .unwrap();
    let answer = scanned(&scan(server.addr, &shield, "video/mp4", &near));
    assert_eq!(answer.match_type.as_deref(), Some("near"), "{answer:?}");
    let nearest = answer
        .near_match_details
        .iter()
        .map(|d| d.distance)
        .min()
        .unwrap();
    assert!(nearest > 0, "{answer:?}");
    // Below the nearest frame's distance nothing matches; restored, it matches again.
    set_threshold(&server, "known-videos", nearest - 1);
    let answer = scanned(&scan(server.addr, &shield, "video/mp4", &near));
    assert_eq!(answer.match_type, None, "{answer:?}");
    assert_eq!(answer.classification, "no-known-match");
    set_threshold(&server, "known-videos", 31);
    let answer = scanned(&scan(server.addr, &shield, "video/mp4", &near));
    assert_eq!(answer.match_type.as_deref(), Some("near"), "{answer:?}");

    // Two thirds of the known video, then an unknown photo: 4 of 6 frames each way.
    let part = std::fs::read(slideshow(
        &work,
        "part.mp4",
        &["img-0040.jpg", "img-0041.jpg", "img-0050.jpg"],
        "320:240",
        &[],
    ))
    .unwrap();
    let answer = scanned(&scan(server.addr, &shield, "video/mp4", &part));
    assert_eq!(answer.match_type, None, "80% by default: {answer:?}");
    let lenient = common::start(
        "video-share",
        ServerConfig {
            video_match_percent: 60.0,
            ..ServerConfig::default()
        },
    );
    let client = lenient.client("acme", &["shield"], None);
    load_banks(&lenient, &std::fs::read(&known).unwrap());
    let answer = scanned(&scan(lenient.addr, &client, "video/mp4", &part));
    assert_eq!(answer.match_type.as_deref(), Some("near"), "{answer:?}");
    let stamps: Vec<f64> = answer
        .near_match_details
        .iter()
        .map(|d| d.timestamp)
        .collect();
    assert_eq!(stamps, [0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn an_animation_lists_a_known_image_once() {
    let server = common::start("video-gif", ServerConfig::default());
    let shield = server.client("acme", &["shield"], None);
    let work = server.dir.join("videos");
    std::fs::create_dir_all(&work).unwrap();
    // The known photo first (matched as the still picture and as frames 0 and 1), then an
    // unknown one, then the known one again.
    let clip = slideshow(
        &work,
        "clip.mp4",
        &["img-0006.jpg", "img-0060.jpg", "img-0006.jpg"],
        "320:240",
        &[],
    );
    let gif = work.join("anim.gif");
    let clip = clip.display().to_string();
    let palette = "fps=5,split[a][b];[a]palettegen[p];[b][p]paletteuse".to_owned();
    ffmpeg(&[
        "-i".into(),
        clip,
        "-vf".into(),
        palette,
        gif.display().to_string(),
    ]);
    let bytes = std::fs::read(&gif).unwrap();
    load_banks(
        &server,
        &std::fs::read(slideshow(
            &work,
            "other.mp4",
            &["img-0070.jpg"],
            "320:240",
            &[],
        ))
        .unwrap(),
    );
    let answer = scanned(&scan(server.addr, &shield, "image/gif", &bytes));
    assert_eq!(answer.match_type.as_deref(), Some("near"), "{answer:?}");
    assert_eq!(answer.near_match_details.len(), 1, "{answer:?}");
    let detail = &answer.near_match_details[0];
    assert_eq!(detail.timestamp, 0.0);
    assert_eq!(detail.sha256_hex, manifest("img-0006.jpg").0);
}
