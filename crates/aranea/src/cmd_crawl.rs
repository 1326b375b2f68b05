//! `aranea crawl`: runs one crawl worker against the database (`--db`) and its banks (in
//! `DATA/banks`, or on PostgreSQL in the database), seeded from URLs or files of URLs, with a progress line on stderr when it
//! is a terminal and a summary on stdout.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aranea_crawl::{CrawlConfig, CrawlProgress, Crawler};
use aranea_index::LiveIndex;
use aranea_index::video::VideoIndex;
use aranea_server::LiveBanks;
use clap::{Args, ValueEnum};
use url::Url;

use crate::cli::GlobalOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CrawlFormat {
    Text,
    Json,
    // Described in `--format`'s help: a value with its own help would lay `crawl --help`
    // out in clap's long form.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// URLs to start from, or files with one URL per line (`#` starts a comment).
    #[arg(long, num_args = 1.., value_name = "FILE|URL")]
    seeds: Vec<String>,
    /// Stop when nothing is queued any more (all workers' URLs included).
    #[arg(long)]
    until_idle: bool,
    /// Stop after this many seconds (leases are released cleanly).
    #[arg(long, value_name = "SECONDS")]
    r#for: Option<u64>,
    /// Name leases are held under (default: host name and process id).
    #[arg(long)]
    worker: Option<String>,
    /// text: a summary line; json: the summary as one object; jsonl: one progress object
    /// per second, then the summary.
    #[arg(long, value_enum, default_value = "text")]
    format: CrawlFormat,
}

pub fn run(global: &GlobalOptions, args: CrawlArgs) -> anyhow::Result<std::process::ExitCode> {
    let config: CrawlConfig = global.config_file()?.section("crawl")?;
    let review: aranea_review::ReviewConfig = global.config_file()?.section("review")?;
    let seeds = read_seeds(&args.seeds)?;
    let home = global.bank_home()?;
    let banks_at = home.path().display().to_string();
    let video = aranea_index::VideoIndexParams::default();
    let banks = Arc::new(
        LiveBanks::open_home(home, video)
            .with_context(|| format!("opening banks in {banks_at}"))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let url = global.database_url();
    let progress = runtime.block_on(async {
        let store = aranea_store::Store::open(&url).await?;
        // Media entering the review queue is sealed into the review vault when
        // `[review] vault_public_key` is set; otherwise its bytes are dropped.
        let sink = crate::review_sink::review_sink(&store, &review)?;
        // The crawler holds this index for its whole run; bank changes adopt into it.
        let index = banks.live();
        let crawler = match &args.worker {
            Some(name) => {
                Crawler::with_worker_name(store.clone(), Arc::clone(&index), config, sink, name)?
            }
            None => Crawler::new(store.clone(), Arc::clone(&index), config, sink)?,
        };
        let videos = banks.videos().map(|v| Arc::clone(&v.index));
        if let Some(videos) = &videos {
            crawler.set_video_index(Arc::clone(videos));
        }
        let follow = follow_banks(&crawler, banks, index, videos);
        if !seeds.is_empty() {
            let outcome = crawler.enqueue_seeds(&seeds).await?;
            for (url, why) in &outcome.refused {
                eprintln!("aranea: seed {url} refused: {why}");
            }
        }
        let limit = args.r#for.map(Duration::from_secs);
        let stop = async move {
            match limit {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let stop = async {
            tokio::select! {
                _ = stop => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        let crawl = async {
            if args.until_idle {
                crawler.run_until_idle_or(stop).await
            } else {
                crawler.run(stop).await
            }
        };
        let show = show_progress(&crawler, args.format);
        let progress = tokio::select! {
            done = crawl => done?,
            _ = show => unreachable_progress(),
            never = follow => match never {},
        };
        store.close().await;
        Ok::<CrawlProgress, anyhow::Error>(progress)
    })?;
    if std::io::stderr().is_terminal() && args.format == CrawlFormat::Text {
        eprintln!();
    }
    match args.format {
        CrawlFormat::Text => println!("{}", line(&progress)),
        CrawlFormat::Json | CrawlFormat::Jsonl => println!("{}", serde_json::to_string(&progress)?),
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// How often the bank directory is checked for changes by other processes (a review
/// decision in the server, `aranea bank import`).
const BANK_POLL: Duration = Duration::from_secs(1);

/// Keeps the crawler matching against the banks on disk: whenever another process changed
/// the bank directory, the reopened banks are adopted into the index the crawler holds and
/// the video index is replaced. A reload that fails keeps the previous banks in use (said
/// once on stderr per distinct failure).
async fn follow_banks(
    crawler: &Crawler,
    banks: Arc<LiveBanks>,
    held: Arc<LiveIndex>,
    mut videos: Option<Arc<VideoIndex>>,
) -> std::convert::Infallible {
    let mut adopted = Arc::clone(&held);
    let mut last_failure = String::new();
    let mut tick = tokio::time::interval(BANK_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let reloading = Arc::clone(&banks);
        let failure =
            match tokio::task::spawn_blocking(move || reloading.refresh_if_changed()).await {
                Ok(Ok(_)) => String::new(),
                Ok(Err(error)) => {
                    format!("bank reload failed; the previous banks stay in use: {error}")
                }
                Err(error) => format!("bank reload task failed: {error}"),
            };
        if !failure.is_empty() && failure != last_failure {
            eprintln!("aranea: {failure}");
        }
        last_failure = failure;
        let now = banks.live();
        if !Arc::ptr_eq(&now, &adopted) {
            held.adopt(&now);
            let generation = held.load();
            eprintln!(
                "aranea: banks changed on disk; matching against journal position {} ({} banks)",
                generation.seq(),
                generation.banks().len()
            );
            adopted = now;
        }
        if let Some(current) = banks.videos()
            && videos
                .as_ref()
                .is_none_or(|v| !Arc::ptr_eq(v, &current.index))
        {
            crawler.set_video_index(Arc::clone(&current.index));
            videos = Some(Arc::clone(&current.index));
        }
    }
}

fn unreachable_progress() -> CrawlProgress {
    // show_progress loops forever; select! needs a value of the right type.
    CrawlProgress {
        fetched: 0,
        pages: 0,
        media: 0,
        matches: 0,
        review: 0,
        errors: 0,
        skipped: 0,
        queued: 0,
        hosts_leased: 0,
        elapsed_secs: 0.0,
        rate: 0.0,
    }
}

async fn show_progress(crawler: &Crawler, format: CrawlFormat) {
    let terminal = std::io::stderr().is_terminal();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let progress = crawler.progress();
        match format {
            CrawlFormat::Jsonl => {
                if let Ok(text) = serde_json::to_string(&progress) {
                    println!("{text}");
                }
            }
            _ if terminal => eprint!("\r\x1b[2K{}", line(&progress)),
            _ => {}
        }
    }
}

fn line(p: &CrawlProgress) -> String {
    format!(
        "fetched {} ({:.1}/s) · pages {} · media {} · matches {} · review {} · errors {} · skipped {} · queued {} · hosts {}",
        p.fetched,
        p.rate,
        p.pages,
        p.media,
        p.matches,
        p.review,
        p.errors,
        p.skipped,
        p.queued,
        p.hosts_leased
    )
}

/// URLs given directly, or read from files (one per line, blank lines and `#` comments
/// skipped).
fn read_seeds(args: &[String]) -> anyhow::Result<Vec<Url>> {
    let mut seeds = Vec::new();
    for arg in args {
        if arg.starts_with("http://") || arg.starts_with("https://") {
            seeds.push(Url::parse(arg).with_context(|| format!("seed {arg}"))?);
            continue;
        }
        let text = std::fs::read_to_string(Path::new(arg))
            .with_context(|| format!("reading seeds from {arg}"))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            seeds.push(Url::parse(line).with_context(|| format!("{arg}:{}: {line}", n + 1))?);
        }
    }
    Ok(seeds)
}
