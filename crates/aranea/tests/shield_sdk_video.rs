//! Video through the official Python Shield SDK (PyPI `arachnid-shield-sdk`) against a real
//! `aranea serve` on a socket, and live video banks: benign slideshows made from corpus
//! photos by the ffmpeg CLI. A known photo spliced into a video is reported at the second it
//! shows; a video is unknown until `aranea bank add-video` (another process) adds it, then a
//! re-encode of it matches within seconds with per-frame `timestamp`s and the scanned file's
//! own hashes, and `aranea bank disable --entry` takes it away again, without a restart.
//!
//! The SDK script is tests/shield_sdk/check_video.py.

#[path = "common/process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use process::{aranea_ok as aranea, run_bounded, serve};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const CHECK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/shield_sdk/check_video.py"
);

struct Server(Child, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

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

/// Corpus photos, two seconds each, at `size` and 10 fps, H.264 in MP4.
fn slideshow(dir: &Path, name: &str, photos: &[&str], size: &str, crf: &str) -> PathBuf {
    let mut args = Vec::new();
    let mut graph = String::new();
    for (index, photo) in photos.iter().enumerate() {
        args.extend(["-loop", "1", "-t", "2", "-i"].map(String::from));
        args.push(format!("{CORPUS}/{photo}"));
        graph.push_str(&format!("[{index}]scale={size},setsar=1,fps=10[v{index}];"));
    }
    graph.extend((0..photos.len()).map(|i| format!("[v{i}]")));
    graph.push_str(&format!("concat=n={}:v=1[out]", photos.len()));
    args.extend(["-filter_complex", &graph, "-map", "[out]"].map(String::from));
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-crf", crf].map(String::from));
    args.extend(["-pix_fmt", "yuv420p"].map(String::from));
    let out = dir.join(name);
    args.push(out.display().to_string());
    ffmpeg(&args);
    out
}

/// Runs the SDK checker, killed after a minute; panics with its output when a check fails.
fn python(env: &[(&str, String)], args: &[&str]) {
    let mut command = Command::new("python3");
    command
        .arg(CHECK)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let (passed, output) = run_bounded(&mut command, Duration::from_secs(60));
    assert!(
        passed,
        "the Python SDK video check {args:?} failed (scripts/test installs arachnid-shield-sdk):\n{output}"
    );
    println!("{output}");
}

/// `(sha256, pdq)` of a corpus photo from the manifest.
fn manifest(name: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("{CORPUS}/MANIFEST.tsv")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    (fields[1].to_owned(), fields.last().unwrap().to_string())
}

#[test]
fn python_sdk_reads_video_answers_and_video_bank_changes_apply_within_seconds() {
    let dir = std::env::temp_dir().join(format!("aranea-sdk-video-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let photos = ["img-0080.jpg", "img-0081.jpg", "img-0082.jpg"];
    let known = slideshow(&dir, "known.mp4", &photos, "320:240", "23");
    // Other bytes (MD5) and frames a few bits away: only vPDQ can find it.
    let copy = slideshow(&dir, "copy.mp4", &photos, "288:216", "30");
    let spliced = slideshow(
        &dir,
        "spliced.mp4",
        &["img-0083.jpg", "img-0084.jpg", "img-0006.jpg"],
        "320:240",
        "23",
    );
    let (sha256, pdq) = manifest("img-0006.jpg");
    let images = dir.join("images.jsonl");
    std::fs::write(
        &images,
        format!(
            "{{\"signal_type\":\"pdq\",\"signal_value\":\"{pdq}\",\"sha256_hex\":\"{sha256}\"}}\n"
        ),
    )
    .unwrap();

    let data = dir.join("data");
    let db = format!("sqlite://{}", dir.join("aranea.db").display());
    for bank in ["images", "videos"] {
        aranea(
            &data,
            &db,
            &[
                "bank",
                "create",
                bank,
                "--source",
                "test",
                "--classification",
                "csam",
            ],
        );
    }
    aranea(
        &data,
        &db,
        &[
            "bank",
            "import",
            "images",
            images.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
    );
    let added = aranea(&data, &db, &["client", "add", "sdk-video"]);
    let (user, pass) = added.lines().last().unwrap().split_once(':').unwrap();
    let config = dir.join("aranea.toml");
    std::fs::write(&config, "[server]\nbank_poll_ms = 200\n").unwrap();
    let (child, url) = serve(&data, &db, &config);
    let server = Server(child, dir.clone());
    let env = [
        ("ARACHNID_SHIELD_URL", format!("{url}/")),
        ("SHIELD_USER", user.to_owned()),
        ("SHIELD_PASS", pass.to_owned()),
    ];
    let path = |p: &Path| p.to_str().unwrap().to_owned();

    python(&env, &["spliced", &path(&spliced), "4", &sha256]);
    python(&env, &["no-match", &path(&copy)]);

    // Another process adds the video while the server runs.
    let before = Instant::now();
    let added = aranea(&data, &db, &["bank", "add-video", "videos", &path(&known)]);
    python(&env, &["wait-match", &path(&copy)]);
    println!("video bank entry visible after {:?}", before.elapsed());

    let vpdq_entry = added
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["signal_type"] == "vpdq")
        .and_then(|v| v["entry"].as_u64())
        .unwrap();
    let before = Instant::now();
    aranea(
        &data,
        &db,
        &[
            "bank",
            "disable",
            "videos",
            "--entry",
            &vpdq_entry.to_string(),
        ],
    );
    python(&env, &["wait-no-match", &path(&copy)]);
    println!("disabled entry gone after {:?}", before.elapsed());
    drop(server);
}
