//! The demo's video: a benign slideshow of corpus photos made with the `ffmpeg` CLI, served
//! on one of the simulated web's sites and declared known in a video bank, and the task that
//! keeps the crawler's video index in step with the server's banks. Must not run without
//! ffmpeg's absence being said, nor use anything but corpus photos.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aranea_crawl::Crawler;
use aranea_index::{BankSpec, NewEntry, Origin, Provenance};
use aranea_server::AppState;

/// The bank holding the demo's generated video.
pub const DEMO_VIDEO_BANK: &str = "simweb-known-videos";
/// Where the demo video and the page embedding it are served on the chosen site.
pub const VIDEO_PAGE: &str = "/videos/index.html";
pub const VIDEO_PATH: &str = "/videos/slideshow.mp4";
/// Corpus photos of the demo video (benign, like every corpus photo).
pub const VIDEO_PHOTOS: [&str; 3] = ["img-0100.jpg", "img-0101.jpg", "img-0102.jpg"];

/// The demo's generated video and the site serving it.
pub struct DemoVideo {
    pub host: String,
    pub bytes: Vec<u8>,
}

/// Makes the demo video with the `ffmpeg` CLI (once; later runs reuse the file) and picks the
/// site to serve it: an ordinary site (not hostile, no CDN in front, robots.txt allowing
/// everything) of the world this scenario and seed generate. `None` (said on stdout) when ffmpeg is missing.
pub fn demo_video(
    dir: &Path,
    scenario: &aranea_simweb::Scenario,
    seed: u64,
) -> anyhow::Result<Option<DemoVideo>> {
    let ffmpeg_runs = std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ffmpeg_runs {
        println!(
            "video: ffmpeg not found, so the demo world has no video (install ffmpeg to add one)"
        );
        return Ok(None);
    }
    let corpus = Path::new(aranea_simweb::corpus::DEFAULT_DIR);
    let world = aranea_simweb::world::World::generate(
        scenario,
        seed,
        aranea_simweb::corpus::Corpus::open(corpus)?,
    )?;
    let host = world
        .sites
        .iter()
        .filter(|s| {
            !s.hostile
                && s.cdn.is_none()
                && s.robots == aranea_simweb::scenario::RobotsVariant::Allow
        })
        // The crawler takes hosts that are due at the same time in the order it stored them,
        // which is by name: the first name is crawled within the demo's first seconds.
        .min_by(|a, b| a.host.cmp(&b.host))
        .map(|s| s.host.clone())
        .context("the demo world has no ordinary site to serve the video")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join("demo-slideshow.mp4");
    if !file.exists() {
        let partial = dir.join("demo-slideshow.partial.mp4");
        let mut command = std::process::Command::new("ffmpeg");
        command.args(["-nostdin", "-y", "-loglevel", "error"]);
        let mut graph = String::new();
        for (index, photo) in VIDEO_PHOTOS.iter().enumerate() {
            command.args(["-loop", "1", "-t", "2", "-i"]);
            command.arg(corpus.join(photo));
            graph.push_str(&format!(
                "[{index}]scale=320:240,setsar=1,fps=10[v{index}];"
            ));
        }
        graph.extend((0..VIDEO_PHOTOS.len()).map(|i| format!("[v{i}]")));
        graph.push_str(&format!("concat=n={}:v=1[out]", VIDEO_PHOTOS.len()));
        command.args([
            "-filter_complex",
            &graph,
            "-map",
            "[out]",
            "-c:v",
            "libx264",
        ]);
        command.args(["-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mp4"]);
        command.arg(&partial);
        let output = command.output().context("running ffmpeg")?;
        if !output.status.success() {
            anyhow::bail!(
                "ffmpeg could not make the demo video: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::fs::rename(&partial, &file)?;
    }
    let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
    Ok(Some(DemoVideo { host, bytes }))
}

/// Declares the demo video known: its vPDQ in the demo's video bank (once). Returns the
/// number of frames.
pub async fn load_known_video(state: &AppState, video: &DemoVideo) -> anyhow::Result<usize> {
    let bytes = video.bytes.clone();
    let features = tokio::task::spawn_blocking(move || {
        aranea_hash::vpdq_hash(&bytes, &aranea_hash::VideoOptions::default())
    })
    .await??
    .features;
    let frames = features.len();
    let banks = Arc::clone(state.banks());
    tokio::task::spawn_blocking(move || {
        banks.write(|store| {
            if store.bank_id(DEMO_VIDEO_BANK).is_ok() {
                return Ok(());
            }
            let bank = store.create_bank(BankSpec::new(DEMO_VIDEO_BANK, "demo", "csam"))?;
            let provenance = store.add_provenance(Provenance {
                added_by: "aranea demo".into(),
                added_at: aranea_index::bank::unix_now(),
                origin: Origin::Manual,
            })?;
            let (signal, metadata) = aranea_index::vpdq_entry(&features);
            store.add_entries(&[NewEntry {
                bank,
                signal,
                classification: None,
                provenance,
                line: 0,
                metadata: Some(metadata),
            }])?;
            Ok(())
        })
    })
    .await??;
    Ok(frames)
}

/// Hands the crawler the server's video index now and after every bank change (the server
/// rebuilds it with each change it publishes or notices). Never returns.
pub async fn follow_video_banks(
    crawler: &Crawler,
    banks: Arc<aranea_server::LiveBanks>,
) -> std::convert::Infallible {
    let mut current: Option<Arc<aranea_index::VideoIndex>> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Some(videos) = banks.videos() else {
            continue;
        };
        if current
            .as_ref()
            .is_none_or(|c| !Arc::ptr_eq(c, &videos.index))
        {
            crawler.set_video_index(Arc::clone(&videos.index));
            current = Some(Arc::clone(&videos.index));
        }
    }
}
