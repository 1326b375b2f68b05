//! Throughput of media hashing on ~1-megapixel JPEGs, per core, next to the reference path
//! (Pillow + PyPI `pdqhash`) measured in the same run.
//!
//! `cargo bench -p aranea-hash --bench throughput` prints a table; it asserts nothing. Targets
//! (issue 2): end to end ≥ 150 images/s per core, hashing alone ≥ 1,000 images/s per core.
//! Then the video figure (issue 9): seconds of 720p video vPDQ-hashed per CPU second, at one
//! frame a second and every frame, the `ffmpeg` decoder child's CPU time included.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aranea_hash::{Limits, VideoOptions, decode_rgb8, hash_media, pdq_from_rgb8, vpdq_hash};

const MIN_TIME: Duration = Duration::from_secs(3);

fn bench_images() -> Vec<PathBuf> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/bench/images-1mp"
    ));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jpg"))
        .collect();
    paths.sort();
    paths
}

/// CPU time this thread has run, from Linux's per-thread scheduler statistics. The machine is
/// shared, so images per *CPU* second is the honest "per core" figure; wall time is a fallback.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Images per CPU second of `work` over `items`, repeated until at least `MIN_TIME` of wall
/// time has passed.
fn rate<T>(items: &[T], mut work: impl FnMut(&T)) -> f64 {
    let start = Instant::now();
    let cpu_start = thread_cpu_time();
    let mut count = 0usize;
    loop {
        for item in items {
            work(item);
            count += 1;
        }
        let elapsed = start.elapsed();
        if elapsed >= MIN_TIME {
            let busy = match (cpu_start, thread_cpu_time()) {
                (Some(before), Some(after)) if after > before => after - before,
                _ => elapsed,
            };
            return count as f64 / busy.as_secs_f64();
        }
    }
}

/// Run the Python reference path; `None` (with the reason printed) if it cannot run here.
fn reference_rates(paths: &[PathBuf]) -> Option<(f64, f64)> {
    let script = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/pdqhash_pillow.py"
    ));
    let probe = Command::new("python3")
        .args(["-c", "import pdqhash, PIL, numpy"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        _ => {
            println!(
                "reference path unavailable: python3 with pdqhash, Pillow and numpy is not installed"
            );
            println!("  (pip install pdqhash pillow numpy) -- no side-by-side figures this run");
            return None;
        }
    }
    let output = Command::new("python3")
        .arg(script)
        .args(paths)
        .output()
        .ok()?;
    if !output.status.success() {
        println!(
            "reference path failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((value("end_to_end")?, value("hashing_alone")?))
}

fn main() {
    let paths = bench_images();
    let limits = Limits::default();
    if std::env::var_os("ARANEA_BENCH_PROFILE_HASHING").is_some() {
        // For `perf record`: only the hashing-alone loop, long enough to sample.
        let decoded: Vec<_> = paths
            .iter()
            .map(|p| decode_rgb8(&std::fs::read(p).unwrap(), &limits).unwrap())
            .collect();
        let rate = rate(&decoded, |(rgb, w, h)| {
            std::hint::black_box(pdq_from_rgb8(rgb, *w, *h).unwrap());
        });
        println!("hashing alone: {rate:.1} images/s");
        return;
    }
    let megapixels: f64 = paths
        .iter()
        .map(|p| {
            let h = hash_media(&std::fs::read(p).unwrap(), &limits).unwrap();
            f64::from(h.width) * f64::from(h.height) / 1e6
        })
        .sum::<f64>()
        / paths.len() as f64;
    println!(
        "{} JPEGs, mean {megapixels:.2} MP, one thread, rates per CPU second",
        paths.len()
    );

    let end_to_end = rate(&paths, |path| {
        let bytes = std::fs::read(path).unwrap();
        std::hint::black_box(hash_media(&bytes, &limits).unwrap());
    });
    let encoded: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let decode_only = rate(&encoded, |bytes| {
        let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg);
        std::hint::black_box(image.unwrap());
    });
    let decoded: Vec<(Vec<u8>, u32, u32)> = encoded
        .iter()
        .map(|b| decode_rgb8(b, &limits).unwrap())
        .collect();
    let hashing = rate(&decoded, |(rgb, w, h)| {
        std::hint::black_box(pdq_from_rgb8(rgb, *w, *h).unwrap());
    });
    let crypto = rate(&encoded, |bytes| {
        std::hint::black_box(aranea_hash::crypto_hashes(bytes));
    });

    let reference = reference_rates(&paths);
    println!();
    println!(
        "{:<44} {:>12} {:>14} {:>8}",
        "images/s per core", "aranea", "Pillow+pdqhash", "ratio"
    );
    let row = |name: &str, ours: f64, theirs: Option<f64>| match theirs {
        Some(theirs) => println!(
            "{name:<44} {ours:>12.1} {theirs:>14.1} {:>7.1}x",
            ours / theirs
        ),
        None => println!("{name:<44} {ours:>12.1} {:>14} {:>8}", "n/a", "n/a"),
    };
    row(
        "end to end (read + decode + PDQ + crypto)",
        end_to_end,
        reference.map(|r| r.0),
    );
    row(
        "hashing alone (PDQ from decoded RGB)",
        hashing,
        reference.map(|r| r.1),
    );
    row(
        "decode alone (zune-jpeg via image, to RGB)",
        decode_only,
        None,
    );
    row("MD5 + SHA-1 + SHA-256 alone", crypto, None);
    println!();
    println!(
        "targets: end to end >= 150/s ({}), hashing alone >= 1000/s ({})",
        if end_to_end >= 150.0 {
            "met"
        } else {
            "NOT met"
        },
        if hashing >= 1000.0 { "met" } else { "NOT met" }
    );
    video_rates();
}

/// CPU time of this process's reaped children (the decoder), from `/proc/self/stat` fields 16
/// and 17, in clock ticks of 1/100 s (Linux's USER_HZ).
fn children_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Seconds of a generated 720p, 30 fps H.264 video hashed per CPU second (this thread plus
/// the decoder child), at one frame a second and at every frame.
fn video_rates() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-video");
    std::fs::create_dir_all(&dir).unwrap();
    let video = dir.join("720p-20s.mp4");
    if !video.exists() {
        let status = Command::new("ffmpeg")
            .args(["-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg("testsrc2=s=1280x720:r=30:d=20")
            .args([
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            ])
            .arg(&video)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            println!("\nvideo: ffmpeg could not generate the test video -- no video figures");
            return;
        }
    }
    let bytes = std::fs::read(&video).unwrap();
    let seconds_of_video = 20.0;
    println!();
    println!(
        "{:<44} {:>12} {:>14}",
        "720p H.264, 30 fps, 20 s", "video s/CPU s", "video s/wall s"
    );
    for (name, seconds_per_hash) in [("vPDQ at 1 frame/s", 1.0), ("vPDQ every frame", 0.0)] {
        let options = VideoOptions {
            seconds_per_hash,
            ..VideoOptions::default()
        };
        let (start, cpu, children) = (Instant::now(), thread_cpu_time(), children_cpu_time());
        std::hint::black_box(vpdq_hash(&bytes, &options).unwrap());
        let wall = start.elapsed();
        let busy = match (cpu, thread_cpu_time(), children, children_cpu_time()) {
            (Some(a), Some(b), Some(c), Some(d)) => (b - a) + (d - c),
            _ => wall,
        };
        println!(
            "{name:<44} {:>12.1} {:>14.1}",
            seconds_of_video / busy.as_secs_f64(),
            seconds_of_video / wall.as_secs_f64()
        );
    }
}
