//! `aranea demo`: the whole system in one process on SQLite. Starts the simulated internet's
//! `demo` scenario, loads its known-hash bank, creates two hotlines with analysts, crawls it
//! (media queued for review sealed into the vault), sends removal notices to the simulated
//! providers and re-checks on the world's accelerated clock, and serves the API and web UI,
//! with a live progress line. `--for SECONDS` runs, then exits cleanly, leaving the database
//! and data directory for inspection. It must never reach beyond the simulated web's blocks.
//!
//! Video: when the `ffmpeg` CLI is present, a benign slideshow of corpus photos is made at
//! start, served on a page of one of the world's sites and declared known in a video bank
//! (`vpdq`), so the crawl finds a known video by its frames; the crawler's video index follows
//! every bank change the server publishes. Without ffmpeg the demo says so and has no video.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use aranea_crawl::{CrawlConfig, Crawler};
use aranea_index::BankSpec;
use aranea_notice::config::{CdnConfig, HotlineConfig, WebhookConfig};
use aranea_notice::{Clock, NoticeConfig, NoticeEngine, UnixMillis};
use aranea_review::{ReviewConfig, VaultSecretKey};
use aranea_server::{AppState, ServerConfig};
use aranea_simweb::{RunningWorld, SimWeb, scenario};

use crate::cli::GlobalOptions;

mod video;
use video::{
    DEMO_VIDEO_BANK, DemoVideo, VIDEO_PAGE, VIDEO_PATH, demo_video, follow_video_banks,
    load_known_video,
};

/// The bank the demo fills from the simulated web's known photos.
const DEMO_BANK: &str = "simweb-known";
/// The demo hotline that receives the public report form's reports.
const DEMO_REPORT_HOTLINE: &str = "demo-ca";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address to serve the API and web UI on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Run this many seconds, then exit cleanly (default: until Ctrl-C).
    #[arg(long = "for", value_name = "SECONDS")]
    run_for: Option<u64>,
    /// Seed of the simulated world.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(global: &GlobalOptions, args: DemoArgs) -> anyhow::Result<ExitCode> {
    aranea_server::init_logging();
    std::fs::create_dir_all(&global.data)
        .with_context(|| format!("creating {}", global.data.display()))?;
    // Shared with the notice engine's clock, which reads the world's simulated time.
    let scenario = scenario::load("demo")?;
    let video = demo_video(&global.data.join("simweb"), &scenario, args.seed)?;
    let mut web = SimWeb::new(scenario)
        .seed(args.seed)
        .out_dir(global.data.join("simweb"));
    if let Some(video) = &video {
        let page = format!(
            "<html><body><h1>Clips</h1><video src=\"{VIDEO_PATH}\" controls></video></body></html>"
        );
        web = web
            .extra_file(&video.host, VIDEO_PAGE, "text/html", page.into_bytes())
            .extra_file(&video.host, VIDEO_PATH, "video/mp4", video.bytes.clone());
    }
    let world = Arc::new(web.start().context("starting the simulated internet")?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(demo(global, &args, &world, video.as_ref()));
    // Every task holding a clone has ended; dropping the last one stops the world's servers.
    drop(world);
    result
}

async fn demo(
    global: &GlobalOptions,
    args: &DemoArgs,
    world: &Arc<RunningWorld>,
    video: Option<&DemoVideo>,
) -> anyhow::Result<ExitCode> {
    let store = aranea_store::Store::open(&global.database_url())
        .await
        .context("opening the database")?;
    let config = ServerConfig {
        listen: args.listen.clone(),
        url_allow_cidrs: provider_blocks(world),
        url_extra_roots: world
            .ca_cert_path()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        ..ServerConfig::default()
    };
    let banks = global.bank_home_async().await?;
    let state = AppState::open_home(config, banks, store.clone()).await?;
    let loaded = load_known_bank(&state, world).await?;
    println!("bank {DEMO_BANK}: {loaded} known hashes from the simulated web");
    if let Some(video) = video {
        let frames = load_known_video(&state, video).await?;
        println!(
            "bank {DEMO_VIDEO_BANK}: a generated slideshow ({frames} vPDQ frames) declared known, served at {}",
            world.url(&video.host, VIDEO_PAGE)
        );
    }
    let client = ensure_demo_client(&store).await?;
    println!("Shield/API client (all scopes): {client}");
    let review_config = vault_config(&global.data)?;
    demo_hotlines(&store, &review_config).await?;
    // The web UI under /ui/ (review queue, statistics). Decisions write through the server's
    // live banks, whose index the crawler below searches: a decision that makes media known
    // takes effect for the next page crawled, without a restart.
    let bank_writer: Arc<dyn aranea_review::BankWriter> = state.banks().clone();
    let review = aranea_review::Review::from_config(
        store.clone(),
        review_config.clone(),
        Some(bank_writer),
    )?;
    // Secure cookies unless on loopback, as `aranea serve` decides.
    let loopback = ["127.", "localhost", "[::1]"]
        .iter()
        .any(|p| args.listen.starts_with(p));
    tokio::spawn(aranea_server::ui::review_upkeep(review.clone()));
    aranea_server::ui::install_review(review, !loopback);

    let crawler = Crawler::new(
        store.clone(),
        state.banks().live(),
        crawl_config(world),
        crate::review_sink::review_sink(&store, &review_config)?,
    )?;
    // The video page is reported like any other URL (nothing on the sites links to it), and
    // first, so that its site is among the first crawled even in a short demo.
    let mut seeds: Vec<url::Url> = video
        .and_then(|v| url::Url::parse(&world.url(&v.host, VIDEO_PAGE)).ok())
        .into_iter()
        .collect();
    seeds.extend(
        world
            .world()
            .sites
            .iter()
            .filter_map(|s| url::Url::parse(&world.url(&s.host, "/")).ok()),
    );
    let seeded = crawler.enqueue_seeds(&seeds).await?;
    let sites = world.world().sites.len();
    if seeds.len() == sites {
        println!(
            "crawling {sites} sites of the simulated web ({} new seeds)",
            seeded.queued
        );
    } else {
        println!(
            "crawling {sites} sites of the simulated web from {} seeds ({} new)",
            seeds.len(),
            seeded.queued
        );
    }

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;
    println!("serving on http://{local}");
    // The public report form, as an operator turns it on with [report_form]: the crawler
    // below takes what it receives like any other report.
    aranea_server::ui::install_report_form(aranea_server::ui::report_form::ReportFormConfig {
        enabled: true,
        hotline: DEMO_REPORT_HOTLINE.to_owned(),
        ..Default::default()
    });
    println!(
        "public report form: http://{local}/report (reports go to hotline {DEMO_REPORT_HOTLINE})"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // The notices' links lead to this server's respond page, signed with the database's key
    // (the notice engine reads the same one).
    aranea_server::ui::install_notice_links(
        aranea_notice::LinkKeys::open(&notice_config(world, &local.to_string()), &store).await?,
    );
    let server = tokio::spawn(aranea_server::serve(
        listener,
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let crawl = {
        let stop = stopped(stop_rx.clone());
        let banks = Arc::clone(state.banks());
        tokio::spawn(async move {
            let crawled = tokio::select! {
                done = crawler.run(stop) => done,
                never = follow_video_banks(&crawler, banks) => match never {},
            };
            crawled.map(|p| (p, crawler))
        })
    };
    let tally = Arc::new(NoticeTally::default());
    let notices = tokio::spawn(notice_worker(
        notice_engine(&store, world, local).await?,
        Arc::clone(world),
        Arc::clone(&tally),
        stop_rx.clone(),
    ));
    let progress = tokio::spawn(progress_line(
        store.clone(),
        Arc::clone(&tally),
        stop_rx.clone(),
    ));

    let started = Instant::now();
    match args.run_for {
        Some(secs) => {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(secs)) => {}
                () = aranea_server::shutdown_signal() => {}
            }
        }
        None => aranea_server::shutdown_signal().await,
    }
    let _ = stop_tx.send(true);
    let (crawled, _crawler) = crawl.await.context("crawler task")??;
    server.await.context("server task")??;
    notices.await.context("notice task")?;
    let _ = progress.await;
    let counts = store.counts().await?;
    println!(
        "\nstopped after {:.0} s: {} fetches, {} media hashed, {} sightings, {} matches, {} in review, {} notices sent, {} removals ({} requests by this run, robots.txt included)",
        started.elapsed().as_secs_f64(),
        counts.fetches,
        counts.media,
        counts.sightings,
        counts.matches,
        counts.review,
        tally.sent.load(Ordering::Relaxed),
        tally.removed.load(Ordering::Relaxed),
        crawled.fetched
    );
    println!("the database and data stay in {}", global.data.display());
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn provider_blocks(world: &RunningWorld) -> Vec<String> {
    world
        .world()
        .providers
        .iter()
        .flat_map(|p| p.blocks.iter())
        .map(|b| format!("{}/{}", b.base, b.prefix))
        .collect()
}

fn crawl_config(world: &RunningWorld) -> CrawlConfig {
    CrawlConfig {
        allow_cidrs: provider_blocks(world)
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
        name_servers: vec![world.dns_addr()],
        system_roots: false,
        ca_files: world
            .ca_cert_path()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        ..CrawlConfig::default()
    }
}

/// Creates the demo bank from the world's HMA CSV once; later runs reuse it.
async fn load_known_bank(state: &AppState, world: &RunningWorld) -> anyhow::Result<usize> {
    let banks = Arc::clone(state.banks());
    let list = world.bank_path().to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || {
        banks.write(|store| {
            if store.bank_id(DEMO_BANK).is_ok() {
                return Ok(Ok(0));
            }
            let spec = BankSpec::new(DEMO_BANK, "simweb", "csam");
            crate::cmd_bank::create_bank_from_list(store, spec, &list, "aranea demo")
                .map(|imported| imported.map(|summary| summary.added as usize))
        })
    })
    .await??;
    loaded.with_context(|| format!("loading the known bank {DEMO_BANK}"))
}

/// Two hotlines with three analysts each (consensus needs three), once; passwords are printed.
async fn demo_hotlines(store: &aranea_store::Store, config: &ReviewConfig) -> anyhow::Result<()> {
    use aranea_review::{AuditActor, NewUserRequest, Review, Schemes};
    let review = Review::new(store.clone(), config.clone(), Schemes::builtin());
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    for (code, name, country) in [
        ("demo-ca", "Demo hotline Canada", "CA"),
        ("demo-nl", "Demo hotline Netherlands", "NL"),
    ] {
        let hotline = aranea_store::NewHotline {
            code: code.to_owned(),
            name: name.to_owned(),
            country: country.to_owned(),
            languages: vec!["en".to_owned()],
            jurisdiction: country.to_owned(),
            shares_review_pool: true,
            shares_banks: true,
            daily_cap: 200,
        };
        let Ok(id) = review.add_hotline(AuditActor::Cli, &hotline, now).await else {
            println!(
                "hotline {code}: exists (analysts' passwords were printed when it was created)"
            );
            continue;
        };
        for n in 1..=3 {
            let username = format!("{code}-analyst{n}");
            let password = demo_password(&username);
            let request = NewUserRequest {
                hotline: id,
                username: username.clone(),
                display_name: String::new(),
                role: aranea_store::UserRole::Analyst,
                password: password.clone(),
            };
            review.add_user(AuditActor::Cli, request, now).await?;
            println!("hotline {code}: analyst {username} password {password}");
        }
        if code == "demo-ca" {
            // The demo's notices go out as the platform's own hotline, so the statistics
            // pages (/ui/statistics) show them to a platform administrator.
            let password = demo_password("demo-admin");
            let request = NewUserRequest {
                hotline: id,
                username: "demo-admin".to_owned(),
                display_name: "Demo administrator".to_owned(),
                role: aranea_store::UserRole::PlatformAdmin,
                password: password.clone(),
            };
            review.add_user(AuditActor::Cli, request, now).await?;
            println!(
                "platform administrator demo-admin password {password} (statistics: /ui/statistics)"
            );
        }
    }
    Ok(())
}

/// A throwaway password for a demo account (printed once; the demo runs on loopback).
fn demo_password(salt: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut text = String::new();
    for round in 0..2u8 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write(salt.as_bytes());
        hasher.write_u8(round);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        text.push_str(&format!("{:016x}", hasher.finish()));
    }
    text
}

async fn ensure_demo_client(store: &aranea_store::Store) -> anyhow::Result<String> {
    let name = format!("demo-{}", std::process::id());
    let scopes: Vec<String> = aranea_server::clients::scope::ALL
        .map(str::to_owned)
        .to_vec();
    let issued = aranea_server::issue_client(store, &name, &scopes, None).await?;
    Ok(format!("{}:{}", issued.client.name, issued.secret))
}

/// One line, rewritten each second when stderr is a terminal (every 10 s otherwise).
async fn progress_line(
    store: aranea_store::Store,
    tally: Arc<NoticeTally>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let terminal = std::io::stderr().is_terminal();
    let every = Duration::from_secs(if terminal { 1 } else { 10 });
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(every) => {}
        }
        let Ok(c) = store.counts().await else {
            continue;
        };
        let line = format!(
            "{:>4} s | queued {} | fetched {} | media {} | sightings {} | matches {} | review {} | notices sent {} | removed {}",
            started.elapsed().as_secs(),
            c.urls_queued,
            c.fetches,
            c.media,
            c.sightings,
            c.matches,
            c.review,
            tally.sent.load(Ordering::Relaxed),
            tally.removed.load(Ordering::Relaxed)
        );
        let mut err = std::io::stderr().lock();
        let _ = if terminal {
            write!(err, "\r{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// The vault's key pair in the data directory, created on first run; analysts' media are
/// sealed to its public key. The secret file is readable by its owner only.
fn vault_config(data: &Path) -> anyhow::Result<ReviewConfig> {
    let secret_path = data.join("vault.secret");
    let secret = match std::fs::read_to_string(&secret_path) {
        Ok(text) => VaultSecretKey::from_hex(&text)
            .with_context(|| format!("reading {}", secret_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = VaultSecretKey::generate()?;
            write_private(&secret_path, key.to_hex().as_bytes())?;
            println!("review vault: new key pair in {}", secret_path.display());
            key
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", secret_path.display())),
    };
    let public = secret.public_key().to_hex();
    std::fs::write(data.join("vault.public"), format!("{public}\n"))?;
    Ok(ReviewConfig {
        vault_public_key: Some(public),
        vault_secret_key_file: Some(secret_path),
        ..ReviewConfig::default()
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// The notice engine's clock: the world's simulated time, started at the demo's real start,
/// so matches the crawler records in real time are never in the engine's future.
struct DemoClock {
    start: UnixMillis,
    world: Arc<RunningWorld>,
}

impl DemoClock {
    /// Starts at the real time, or at the newest notice record (event, re-check, item
    /// opened) already in the database if that is later: a previous run on the same data
    /// directory ran its accelerated clock days ahead, and a clock restarted at the real time
    /// would date this run's notices and removals before that run's (and leave its items'
    /// re-checks days in the future).
    async fn starting(
        store: &aranea_store::Store,
        world: Arc<RunningWorld>,
    ) -> anyhow::Result<DemoClock> {
        let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let opened = aranea_notice::stats::as_of(store, None, i64::try_from(real.as_millis())?)
            .await
            .context("reading the newest notice event")?;
        let recorded = store
            .statistics()
            .latest_notice_record_at()
            .await
            .context("reading the newest notice event")?;
        let now = recorded.map_or(opened, |t| t.max(opened));
        let start = now - millis(world.sim_now());
        Ok(DemoClock { start, world })
    }
}

impl Clock for DemoClock {
    fn now(&self) -> UnixMillis {
        self.start.saturating_add(millis(self.world.sim_now()))
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Notices sent and removals confirmed by this run, for the progress line.
#[derive(Default)]
struct NoticeTally {
    sent: AtomicUsize,
    removed: AtomicUsize,
}

async fn notice_engine(
    store: &aranea_store::Store,
    world: &Arc<RunningWorld>,
    listen: std::net::SocketAddr,
) -> anyhow::Result<NoticeEngine> {
    let config = notice_config(world, &listen.to_string());
    let fetch = config.fetch_config()?;
    Ok(NoticeEngine::new(
        store.clone(),
        config,
        fetch,
        Arc::new(DemoClock::starting(store, Arc::clone(world)).await?),
        &format!("demo-notice-{}", std::process::id()),
    )?)
}

/// Every real second, one pass of the notice engine, then one extra simulated hour: on top of
/// the world's own pace (an hour a second) a simulated day passes in twelve real seconds, so
/// notices, re-checks and removals all show within the demo's first minute.
async fn notice_worker(
    engine: NoticeEngine,
    world: Arc<RunningWorld>,
    tally: Arc<NoticeTally>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), engine.run_once()).await {
            Ok(Ok(pass)) => {
                tally.sent.fetch_add(pass.sent, Ordering::Relaxed);
                tally.removed.fetch_add(pass.removed, Ordering::Relaxed);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "notice pass failed"),
            Err(_) => tracing::warn!("notice pass took over 30 s"),
        }
        world.advance(Duration::from_secs(3600));
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Notices from a demo hotline to every simulated provider: addresses, RDAP, SMTP sink and
/// webhooks all from the running world. `listen` is where the respond links point.
fn notice_config(world: &RunningWorld, listen: &str) -> NoticeConfig {
    let rdap = world.rdap_base_url();
    // The world's RDAP and webhook server sits outside the providers' blocks.
    let infra = url::Url::parse(&rdap)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("{h}/32")));
    let mut config = NoticeConfig {
        hotline: HotlineConfig {
            name: "Aranea demo hotline".into(),
            email: "notices@demo-hotline.example".into(),
            domain: "demo-hotline.example".into(),
            country: "CA".into(),
            ..HotlineConfig::default()
        },
        ip_to_asn_path: Some(world.ip_to_asn_path().to_path_buf()),
        rdap_base_urls: vec![rdap],
        respond_base_url: format!("http://{listen}/notice/respond"),
        allow_cidrs: provider_blocks(world).into_iter().chain(infra).collect(),
        name_servers: vec![world.dns_addr()],
        ca_files: world
            .ca_cert_path()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        retry_base_secs: 1,
        ..NoticeConfig::default()
    };
    let smtp = world.smtp_addr();
    config.smtp.host = Some(smtp.ip().to_string());
    config.smtp.port = smtp.port();
    config.smtp.tls = "none".into();
    config.smtp.timeout_secs = 10;
    for provider in &world.world().providers {
        if provider.cdn {
            config.cdns.push(CdnConfig {
                name: provider.name.clone(),
                asns: vec![provider.asn],
                ..CdnConfig::default()
            });
        }
        if let Some(url) = world.webhook_url(&provider.name) {
            config.webhooks.insert(
                provider.name.clone(),
                WebhookConfig {
                    url,
                    secret: demo_password(&provider.name),
                },
            );
        }
    }
    config
}
