//! Our vPDQ against Meta's reference implementation, run here: the PyPI `vpdq` package is
//! Meta's own Python binding of the ThreatExchange C++ vPDQ (scripts/test builds it). Benign
//! videos generated from the shared corpus with the `ffmpeg` CLI (H.264 MP4 and VP9 WebM,
//! several sizes and frame rates, one frame per second and every frame) are hashed by both,
//! and the features must be identical frame by frame: frame numbers, qualities, PDQ hashes
//! bit for bit, and timestamps as the reference's text format writes them (three decimals).
//! The reference decodes through libavcodec and swscale in-process, we through the `ffmpeg`
//! CLI with the same area scaler; any difference is a bug here, not a tolerance.

use std::path::{Path, PathBuf};
use std::process::Command;

use aranea_hash::{VideoOptions, VpdqFeature, parse_vpdq_text, vpdq_hash};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vpdq-reference");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A slideshow of corpus photos, two seconds each, at `size` and `fps`, `codec` into `name`.
fn slideshow(
    dir: &Path,
    name: &str,
    photos: &[&str],
    size: &str,
    fps: u32,
    codec: &[&str],
) -> PathBuf {
    let mut args: Vec<String> = ["-nostdin", "-y", "-loglevel", "error"]
        .map(String::from)
        .to_vec();
    let mut graph = String::new();
    for (index, photo) in photos.iter().enumerate() {
        args.extend(["-loop", "1", "-t", "2", "-i"].map(String::from));
        args.push(format!("{CORPUS}/{photo}"));
        graph.push_str(&format!(
            "[{index}]scale={size},setsar=1,fps={fps}[v{index}];"
        ));
    }
    graph.extend((0..photos.len()).map(|i| format!("[v{i}]")));
    graph.push_str(&format!("concat=n={}:v=1[out]", photos.len()));
    args.extend(["-filter_complex", &graph, "-map", "[out]"].map(String::from));
    args.extend(codec.iter().map(|s| s.to_string()));
    let out = dir.join(name);
    args.push(out.display().to_string());
    let output = Command::new("ffmpeg")
        .args(&args)
        .output()
        .expect("ffmpeg is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// The reference's features, written by the reference's own `hash_to_hex` in its text
/// format (`frame,quality,hash,timestamp`), read with our parser.
fn reference(video: &Path, seconds_per_hash: f64) -> Vec<VpdqFeature> {
    let script = "import sys, vpdq\n\
        for f in vpdq.computeHash(sys.argv[1], seconds_per_hash=float(sys.argv[2])):\n\
        \x20   h = f.hash if isinstance(f.hash, str) else vpdq.hash_to_hex(f.hash)\n\
        \x20   print(f'{f.frame_number},{f.quality},{h},{f.timestamp:.3f}')\n";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(video)
        .arg(seconds_per_hash.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "Meta's vpdq package (scripts/test installs it) failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_vpdq_text(&String::from_utf8(output.stdout).unwrap()).unwrap()
}

fn compare(video: &Path, seconds_per_hash: f64) -> usize {
    let theirs = reference(video, seconds_per_hash);
    let options = VideoOptions {
        seconds_per_hash,
        ..VideoOptions::default()
    };
    let ours = vpdq_hash(&std::fs::read(video).unwrap(), &options)
        .unwrap()
        .features;
    let name = video.file_name().unwrap().to_string_lossy();
    assert!(!theirs.is_empty(), "{name}: the reference found no frames");
    assert_eq!(
        ours.iter().map(|f| f.frame).collect::<Vec<_>>(),
        theirs.iter().map(|f| f.frame).collect::<Vec<_>>(),
        "{name}: frame numbers"
    );
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            format!("{:.3}", a.timestamp),
            format!("{:.3}", b.timestamp),
            "{name} frame {}: timestamp",
            a.frame
        );
        assert_eq!(
            a.hash.to_hex(),
            b.hash.to_hex(),
            "{name} frame {}: {} bits apart",
            a.frame,
            a.hash.hamming_distance(&b.hash)
        );
        assert_eq!(a.quality, b.quality, "{name} frame {}: quality", a.frame);
    }
    theirs.len()
}

#[test]
fn our_vpdq_features_equal_the_reference_implementations_frame_by_frame() {
    let dir = work_dir();
    let h264 = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ];
    let vp9 = [
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "300k",
    ];
    let cases = [
        (
            slideshow(
                &dir,
                "slides.mp4",
                &["img-0003.jpg", "img-0004.jpg", "img-0005.jpg"],
                "320:240",
                10,
                &h264,
            ),
            1.0,
        ),
        (
            slideshow(
                &dir,
                "wide-25fps.mp4",
                &["img-0011.jpg", "img-0016.jpg"],
                "640:360",
                25,
                &h264,
            ),
            1.0,
        ),
        (
            slideshow(
                &dir,
                "every-frame.mp4",
                &["img-0012.jpg", "img-0013.jpg"],
                "160:120",
                5,
                &h264,
            ),
            0.0,
        ),
        (
            slideshow(
                &dir,
                "slides.webm",
                &["img-0014.jpg", "img-0015.jpg"],
                "320:240",
                12,
                &vp9,
            ),
            1.0,
        ),
    ];
    for (video, seconds_per_hash) in &cases {
        let frames = compare(video, *seconds_per_hash);
        println!(
            "{}: {frames} frames identical to the reference's",
            video.file_name().unwrap().to_string_lossy()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
