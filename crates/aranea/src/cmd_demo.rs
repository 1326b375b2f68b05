//! `aranea demo`: the whole system in one process on SQLite. Starts the simulated internet's
//! `demo` scenario, loads its known-hash bank, creates two hotlines with analysts, crawls it,
//! and serves the API and web UI, with a live progress line. `--for SECONDS` runs, then exits
//! cleanly, leaving the database and data directory for inspection.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aranea_crawl::{CrawlConfig, Crawler, DiscardMedia};
use aranea_index::import::{ListFormat, ReadOptions, read_list};
use aranea_index::{BankSpec, NewEntry, Origin, Provenance};
use aranea_server::{AppState, ServerConfig};
use aranea_simweb::{RunningWorld, SimWeb, scenario};

use crate::cli::GlobalOptions;

/// The bank the demo fills from the simulated web's known photos.
const DEMO_BANK: &str = "simweb-known";

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
    let world = SimWeb::new(scenario::load("demo")?)
        .seed(args.seed)
        .out_dir(global.data.join("simweb"))
        .start()
        .context("starting the simulated internet")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(demo(global, &args, &world));
    world.shutdown();
    result
}

async fn demo(
    global: &GlobalOptions,
    args: &DemoArgs,
    world: &RunningWorld,
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
    let state = AppState::open(config, &global.data.join("banks"), store.clone()).await?;
    let loaded = load_known_bank(&state, world).await?;
    println!("bank {DEMO_BANK}: {loaded} known hashes from the simulated web");
    let client = ensure_demo_client(&store).await?;
    println!("Shield/API client (all scopes): {client}");
    demo_hotlines(&store).await?;

    let crawler = Crawler::new(
        store.clone(),
        state.banks().live(),
        crawl_config(world),
        Arc::new(DiscardMedia),
    )?;
    let seeds: Vec<url::Url> = world
        .world()
        .sites
        .iter()
        .filter_map(|s| url::Url::parse(&world.url(&s.host, "/")).ok())
        .collect();
    let seeded = crawler.enqueue_seeds(&seeds).await?;
    println!(
        "crawling {} sites of the simulated web ({} new seeds)",
        seeds.len(),
        seeded.queued
    );

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("serving on http://{}", listener.local_addr()?);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(aranea_server::serve(
        listener,
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let crawl = {
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { crawler.run(stop).await.map(|p| (p, crawler)) })
    };
    let progress = tokio::spawn(progress_line(store.clone(), stop_rx.clone()));

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
    let _ = progress.await;
    let counts = store.counts().await?;
    println!(
        "\nstopped after {:.0} s: {} fetches, {} media hashed, {} sightings, {} matches, {} in review ({} fetched by this run)",
        started.elapsed().as_secs_f64(),
        counts.fetches,
        counts.media,
        counts.sightings,
        counts.matches,
        counts.review,
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
    let added = tokio::task::spawn_blocking(move || {
        banks.write(|store| {
            if store.bank_id(DEMO_BANK).is_ok() {
                return Ok(0);
            }
            let bank = store.create_bank(BankSpec::new(DEMO_BANK, "simweb", "csam"))?;
            let provenance = store.add_provenance(Provenance {
                added_by: "aranea demo".into(),
                added_at: aranea_index::bank::unix_now(),
                origin: Origin::Import {
                    file: list.display().to_string(),
                },
            })?;
            let mut entries = Vec::new();
            let file =
                std::fs::File::open(&list).map_err(|source| aranea_index::StoreError::Io {
                    path: list.clone(),
                    source,
                })?;
            let _ = read_list(
                file,
                ListFormat::HmaCsv,
                &ReadOptions::default(),
                &mut |row| {
                    if let Ok(row) = row {
                        entries.push(NewEntry {
                            bank,
                            signal: row.signal,
                            classification: None,
                            provenance,
                            line: row.line,
                            metadata: None,
                        });
                    }
                },
            );
            Ok(store.add_entries(&entries)?.added.len())
        })
    })
    .await??;
    Ok(added)
}

/// Two hotlines with three analysts each (consensus needs three), once; passwords are printed.
async fn demo_hotlines(store: &aranea_store::Store) -> anyhow::Result<()> {
    use aranea_review::{AuditActor, NewUserRequest, Review, ReviewConfig, Schemes};
    let review = Review::new(store.clone(), ReviewConfig::default(), Schemes::builtin());
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
async fn progress_line(store: aranea_store::Store, mut stop: tokio::sync::watch::Receiver<bool>) {
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
            "{:>4} s | queued {} | fetched {} | media {} | sightings {} | matches {} | review {}",
            started.elapsed().as_secs(),
            c.urls_queued,
            c.fetches,
            c.media,
            c.sightings,
            c.matches,
            c.review
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
