//! vPDQ end to end: benign videos generated at test time from the shared corpus with the
//! `ffmpeg` CLI (slideshows, re-encodes, clips, a spliced-in known image, animations), hashed
//! through the sandboxed decoder, compared as the reference compares them; and hostile video
//! input, each refused with a typed error within bounded time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aranea_hash::{
    HashError, MediaKind, PdqHash, VideoLimits, VideoOptions, VpdqMatchParams, compare_vpdq,
    hash_media, is_moving_picture, parse_vpdq_text, prune_vpdq, vpdq_hash, write_vpdq_text,
};

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

fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("video")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run the ffmpeg CLI to make a test video; the inputs are finite, so it ends by itself.
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

/// A slideshow of corpus images, `seconds` each, at 320x240 and `fps`, as H.264 MP4.
fn slideshow(dir: &Path, name: &str, images: &[&str], seconds: u32, fps: u32) -> PathBuf {
    let mut args: Vec<String> = Vec::new();
    let mut graph = String::new();
    for (index, image) in images.iter().enumerate() {
        args.extend(["-loop", "1", "-t"].map(String::from));
        args.push(seconds.to_string());
        args.push("-i".into());
        args.push(corpus(image).display().to_string());
        graph.push_str(&format!(
            "[{index}]scale=320:240,setsar=1,fps={fps}[v{index}];"
        ));
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
    out
}

fn hash_file(path: &Path, options: &VideoOptions) -> Result<aranea_hash::VideoHashes, HashError> {
    vpdq_hash(&std::fs::read(path).unwrap(), options)
}

const IMAGES: [&str; 4] = [
    "img-0001.jpg",
    "img-0002.jpg",
    "img-0004.jpg",
    "img-0005.jpg",
];
const OTHERS: [&str; 3] = ["img-0011.jpg", "img-0012.jpg", "img-0013.jpg"];

#[test]
fn slideshow_frames_are_sampled_once_a_second_with_reference_numbers_and_timestamps() {
    let dir = work_dir("sampling");
    let video = slideshow(&dir, "show.mp4", &IMAGES, 2, 10);
    let hashes = hash_file(&video, &VideoOptions::default()).unwrap();
    assert_eq!(hashes.kind, MediaKind::Mp4);
    assert_eq!((hashes.info.width, hashes.info.height), (320, 240));
    assert_eq!(hashes.info.frame_rate, 10.0);
    let numbers: Vec<u64> = hashes.features.iter().map(|f| f.frame).collect();
    assert_eq!(numbers, vec![0, 10, 20, 30, 40, 50, 60, 70]);
    for feature in &hashes.features {
        assert_eq!(feature.timestamp, feature.frame as f64 / 10.0);
    }
    // Each second shows one known image: its frames are near that image's own PDQ.
    for (index, image) in IMAGES.iter().enumerate() {
        let known = manifest_pdq(image);
        for feature in &hashes.features[index * 2..index * 2 + 2] {
            let distance = feature.hash.hamming_distance(&known);
            assert!(
                distance <= 31,
                "{image} at {}s: {distance}",
                feature.timestamp
            );
        }
    }
    // Every frame: 80 frames, numbered 0..80.
    let every = VideoOptions {
        seconds_per_hash: 0.0,
        ..VideoOptions::default()
    };
    let all = hash_file(&video, &every).unwrap();
    assert_eq!(all.features.len(), 80);
    assert!(
        all.features
            .iter()
            .enumerate()
            .all(|(i, f)| f.frame == i as u64)
    );
    // A still scene prunes to one frame per image.
    assert_eq!(prune_vpdq(&all.features, 50, 8).len(), IMAGES.len());
}

#[test]
fn reencodes_at_other_bitrates_sizes_and_rates_match_and_other_videos_do_not() {
    let dir = work_dir("reencode");
    let original = slideshow(&dir, "original.mp4", &IMAGES, 2, 10);
    let path = |name: &str| dir.join(name).display().to_string();
    let source = original.display().to_string();
    ffmpeg(&[
        "-i",
        &source,
        "-vf",
        "scale=240:180,fps=15",
        "-c:v",
        "libvpx",
        "-b:v",
        "400k",
        &path("small.webm"),
    ]);
    ffmpeg(&[
        "-i",
        &source,
        "-vf",
        "fps=25",
        "-c:v",
        "mjpeg",
        "-q:v",
        "20",
        &path("mjpeg.avi"),
    ]);
    ffmpeg(&[
        "-i",
        &source,
        "-vf",
        "scale=640:480",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "40",
        &path("big.mkv"),
    ]);
    ffmpeg(&[
        "-i",
        &source,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-f",
        "mov",
        &path("copy.mov"),
    ]);
    let other = slideshow(&dir, "other.mp4", &OTHERS, 2, 10);

    let options = VideoOptions::default();
    let params = VpdqMatchParams::default();
    let reference = hash_file(&original, &options).unwrap();
    for (name, kind) in [
        ("small.webm", MediaKind::Webm),
        ("mjpeg.avi", MediaKind::Avi),
        ("big.mkv", MediaKind::Matroska),
        ("copy.mov", MediaKind::Mov),
    ] {
        let copy = hash_file(&dir.join(name), &options).unwrap();
        assert_eq!(copy.kind, kind);
        let result = compare_vpdq(&copy.features, &reference.features, &params);
        assert!(result.is_match, "{name}: {result:?}");
        assert!(result.query_matched_percent >= 80.0, "{name}: {result:?}");
    }
    let unrelated = hash_file(&other, &options).unwrap();
    let result = compare_vpdq(&unrelated.features, &reference.features, &params);
    assert!(!result.is_match, "{result:?}");
    assert!(result.query_matched_percent < 30.0, "{result:?}");
}

#[test]
fn a_clip_cut_from_a_video_matches_it_by_the_query_share() {
    let dir = work_dir("clip");
    let original = slideshow(&dir, "original.mp4", &IMAGES, 2, 10);
    let clip = dir.join("clip.mp4");
    let (source, target) = (original.display().to_string(), clip.display().to_string());
    ffmpeg(&[
        "-ss",
        "2",
        "-t",
        "3",
        "-i",
        &source,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        &target,
    ]);
    let options = VideoOptions::default();
    let whole = hash_file(&original, &options).unwrap();
    let part = hash_file(&clip, &options).unwrap();
    let result = compare_vpdq(&part.features, &whole.features, &VpdqMatchParams::default());
    assert_eq!(result.query_matched_percent, 100.0, "{result:?}");
    assert!(result.candidate_matched_percent < 80.0, "{result:?}");
    assert!(result.is_match);
}

#[test]
fn a_known_image_spliced_into_a_video_is_found_at_its_timestamp() {
    let dir = work_dir("splice");
    let known_name = "img-0020.jpg";
    let video = slideshow(
        &dir,
        "spliced.mp4",
        &["img-0014.jpg", "img-0015.jpg", known_name, "img-0016.jpg"],
        2,
        10,
    );
    let known = manifest_pdq(known_name);
    let hashes = hash_file(&video, &VideoOptions::default()).unwrap();
    let near: Vec<f64> = hashes
        .features
        .iter()
        .filter(|f| f.quality >= 50 && f.hash.hamming_distance(&known) <= 31)
        .map(|f| f.timestamp)
        .collect();
    assert_eq!(near, vec![4.0, 5.0]);
}

#[test]
fn animated_gif_and_webp_are_recognised_and_hashed_frame_by_frame() {
    let dir = work_dir("animation");
    let original = slideshow(&dir, "original.mp4", &IMAGES[..2], 1, 4);
    let source = original.display().to_string();
    let gif = dir.join("anim.gif");
    let webp = dir.join("anim.webp");
    // A palette made for the clip: the default fixed palette dithers too hard for PDQ.
    let palette = "split[a][b];[a]palettegen[p];[b][p]paletteuse";
    ffmpeg(&["-i", &source, "-vf", palette, &gif.display().to_string()]);
    ffmpeg(&[
        "-i",
        &source,
        "-c:v",
        "libwebp_anim",
        "-loop",
        "0",
        &webp.display().to_string(),
    ]);
    let reference = hash_file(&original, &VideoOptions::default()).unwrap();
    for (path, kind) in [(gif, MediaKind::Gif), (webp, MediaKind::Webp)] {
        let bytes = std::fs::read(&path).unwrap();
        assert!(is_moving_picture(&bytes), "{kind}");
        // Still-image hashing keeps working on the first frame.
        assert_eq!(hash_media(&bytes, &Default::default()).unwrap().kind, kind);
        let hashes = vpdq_hash(&bytes, &VideoOptions::default()).unwrap();
        let timestamps: Vec<f64> = hashes.features.iter().map(|f| f.timestamp).collect();
        assert_eq!(timestamps, vec![0.0, 1.0], "{kind}");
        let result = compare_vpdq(
            &hashes.features,
            &reference.features,
            &VpdqMatchParams::default(),
        );

        assert_eq!(result.query_matched_percent, 100.0, "{kind}: {result:?}");
    }
    let still = std::fs::read(corpus("img-0001.jpg")).unwrap();
    assert!(!is_moving_picture(&still));
    assert_eq!(
        vpdq_hash(&still, &VideoOptions::default()),
        Err(HashError::NotMoving {
            kind: MediaKind::Jpeg
        })
    );
}

#[test]
fn vpdq_text_of_a_real_video_round_trips_and_published_lines_parse() {
    let dir = work_dir("text");
    let video = slideshow(&dir, "show.mp4", &IMAGES[..2], 1, 30);
    let hashes = hash_file(&video, &VideoOptions::default()).unwrap();
    let text = write_vpdq_text(&hashes.features);
    assert_eq!(text.lines().count(), 2);
    assert!(text.lines().nth(1).unwrap().starts_with("30,"));
    assert_eq!(parse_vpdq_text(&text).unwrap(), hashes.features);
    // The first lines of ThreatExchange's vpdq/sample-hashes/chair-19-sd-bar.txt.
    let published = "0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0\n\
                     1,100,c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c,0.0319\n";
    let features = parse_vpdq_text(published).unwrap();
    assert_eq!(features.len(), 2);
    assert_eq!(features[1].frame, 1);
    assert_eq!(features[1].timestamp, 0.0319);
    assert_eq!(features[0].hash.hamming_distance(&features[1].hash), 10);
}

/// Options for hostile input: tight limits so a bug fails fast.
fn tight() -> VideoOptions {
    VideoOptions {
        limits: VideoLimits {
            max_wall: Duration::from_secs(20),
            max_child_memory: 512 * 1024 * 1024,
            ..VideoLimits::default()
        },
        ..VideoOptions::default()
    }
}

/// Hash hostile bytes, asserting the call is bounded in time.
fn hostile(bytes: &[u8], options: &VideoOptions) -> Result<aranea_hash::VideoHashes, HashError> {
    let start = Instant::now();
    let result = vpdq_hash(bytes, options);
    assert!(
        start.elapsed() < Duration::from_secs(25),
        "took {:?}",
        start.elapsed()
    );
    result
}

#[test]
fn zero_length_truncated_and_garbage_videos_are_typed_errors() {
    let dir = work_dir("broken");
    let video = std::fs::read(slideshow(&dir, "show.mp4", &IMAGES[..2], 1, 10)).unwrap();
    assert_eq!(hostile(&[], &tight()), Err(HashError::Empty));
    // The MP4 index (moov) sits at the end: half a file has none.
    let half = &video[..video.len() / 2];
    assert_eq!(
        hostile(half, &tight()),
        Err(HashError::Truncated {
            kind: MediaKind::Mp4
        })
    );
    // Video magic followed by noise.
    let mut garbage = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    garbage.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let error = hostile(&garbage, &tight()).unwrap_err();
    assert!(
        matches!(
            error,
            HashError::Decode {
                kind: MediaKind::Mp4,
                ..
            } | HashError::Truncated {
                kind: MediaKind::Mp4
            } | HashError::NoVideoStream { .. }
        ),
        "{error:?}"
    );
    let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x84];
    webm.extend_from_slice(b"webm");
    webm.extend(std::iter::repeat_n(0xFFu8, 5000));
    assert!(hostile(&webm, &tight()).is_err());
}

#[test]
fn a_container_claiming_hours_is_refused_before_decoding() {
    let dir = work_dir("hours");
    let mut video = std::fs::read(slideshow(&dir, "show.mp4", &IMAGES[..1], 1, 10)).unwrap();
    // Rewrite the movie and media header durations (32-bit, version 0) to ~13 hours at the
    // file's own timescale.
    for tag in [b"mvhd", b"mdhd"] {
        let at = video.windows(4).position(|w| w == tag).unwrap();
        let timescale = u32::from_be_bytes(video[at + 16..at + 20].try_into().unwrap());
        let duration = timescale.saturating_mul(48_000).to_be_bytes();
        video[at + 20..at + 24].copy_from_slice(&duration);
    }
    let error = hostile(&video, &tight()).unwrap_err();
    assert!(
        matches!(error, HashError::TooLong { declared_seconds, limit_seconds: 10_800 } if declared_seconds >= 40_000),
        "{error:?}"
    );
}

#[test]
fn decompression_bombs_are_refused_by_size_or_memory() {
    let dir = work_dir("bomb");
    // One black 8192x8192 frame compresses to a few kilobytes.
    let bomb = dir.join("bomb.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=8192x8192:d=1:r=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        &bomb.display().to_string(),
    ]);
    let bytes = std::fs::read(&bomb).unwrap();
    assert!(bytes.len() < 200_000, "{}", bytes.len());
    assert_eq!(
        hostile(&bytes, &tight()),
        Err(HashError::TooManyPixels {
            width: 8192,
            height: 8192,
            limit: 4096 * 2304
        })
    );
    // Allowed by size but not by the child's memory: the decoder fails, it does not grow.
    let mut starved = tight();
    starved.limits.max_frame_pixels = 8192 * 8192;
    starved.limits.max_child_memory = 64 * 1024 * 1024;
    let error = hostile(&bytes, &starved).unwrap_err();
    assert!(
        matches!(
            error,
            HashError::MemoryLimit { .. } | HashError::Decode { .. }
        ),
        "{error:?}"
    );
    // An animated GIF of two 4000x4000 frames in 14 kB: refused before any frame is decoded.
    let gif = dir.join("bomb.gif");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=4000x4000:d=2:r=1",
        &gif.display().to_string(),
    ]);
    let bytes = std::fs::read(&gif).unwrap();
    assert!(bytes.len() < 100_000, "{}", bytes.len());
    assert!(is_moving_picture(&bytes));
    assert_eq!(
        hostile(&bytes, &tight()),
        Err(HashError::TooManyPixels {
            width: 4000,
            height: 4000,
            limit: 4096 * 2304
        })
    );
}

#[test]
fn the_deadline_kills_a_slow_decode_and_a_missing_decoder_is_named() {
    let dir = work_dir("deadline");
    let video = std::fs::read(slideshow(&dir, "show.mp4", &IMAGES, 2, 30)).unwrap();
    let mut slow = tight();
    slow.seconds_per_hash = 0.0;
    slow.limits.max_wall = Duration::from_millis(150);
    let start = Instant::now();
    let error = vpdq_hash(&video, &slow).unwrap_err();
    assert!(
        matches!(error, HashError::DecodeTimeout { seconds: 0, .. }),
        "{error:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    let mut few = tight();
    few.limits.max_frames = 3;
    assert_eq!(
        vpdq_hash(&video, &few),
        Err(HashError::TooManyFrames { limit: 3 })
    );

    let missing = VideoOptions {
        ffprobe: PathBuf::from("/nonexistent/ffprobe"),
        ..tight()
    };
    assert!(matches!(
        vpdq_hash(&video, &missing),
        Err(HashError::DecoderUnavailable { .. })
    ));
}
