//! `aranea notices`: run the notice worker, list and show notices (XARF exactly as sent),
//! resend one, rotate the respond links' key, and print removal statistics.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aranea_notice::{NoticeConfig, NoticeEngine, SystemClock, stats, views};
use aranea_store::{NoticeFilter, NoticeId, NoticeState, Store};
use clap::{Args, Subcommand, ValueEnum};

use crate::cli::GlobalOptions;

#[derive(Debug, Args)]
pub struct NoticesArgs {
    #[command(subcommand)]
    command: NoticesCommand,
}

#[derive(Debug, Subcommand)]
enum NoticesCommand {
    /// Run the notice worker: attribute matches, send notices, re-check, escalate.
    Run {
        /// One pass, then exit.
        #[arg(long)]
        once: bool,
        /// Name of this worker in leases (default: host name and process id).
        #[arg(long)]
        worker: Option<String>,
    },
    /// List notices, newest first.
    List {
        /// Only notices in this state (queued, sending, committing, sent, uncertain, failed,
        /// withdrawn). `--status failed` lists what the worker could not deliver.
        #[arg(long, alias = "status")]
        state: Option<String>,
        /// Only notices to this provider key (e.g. asn:64501; not empty, which would match
        /// every notice).
        #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
        provider: Option<String>,
        /// Notices per page (at least 1).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        /// The next page: notices older than this cursor (printed after a full page; a
        /// positive id).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        cursor: Option<i64>,
        /// text: a header and one line per notice; json: one array; jsonl: one object per
        /// line.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Show one notice: its items and timeline, or exactly what was sent.
    Show {
        /// The notice's id, as `notices list` prints it.
        id: i64,
        /// text: a summary, its items and timeline; json: all of it as one object; xarf: the
        /// XARF reports exactly as sent; email: the plain-text email body as sent.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Queue a copy of a notice to the same recipient.
    Resend {
        /// The notice's id, as `notices list` prints it.
        id: i64,
    },
    /// Make a new key sign the respond links (the database's key, when [notice] sets no
    /// link_secret). Links signed with the previous key still verify until link_ttl_secs,
    /// the longest a link lives, has passed; running workers and servers pick the new key
    /// up within a minute, without a restart.
    RotateLinkKey,
    /// Removal statistics per provider, country and hotline.
    Stats {
        /// text: one line per provider, country and hotline; json: one array; csv: a header
        /// and one row each.
        #[arg(long, value_enum, default_value_t = StatsFormat::Text)]
        format: StatsFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ListFormat {
    Text,
    Json,
    Jsonl,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
// No doc comments on the variants: help on a possible value turns `--help` into clap's long
// layout (the values are described in `--format`'s help).
enum ShowFormat {
    Text,
    Json,
    Xarf,
    Email,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatsFormat {
    Text,
    Json,
    Csv,
}

fn state_of(text: &str) -> anyhow::Result<NoticeState> {
    Ok(match text {
        "queued" => NoticeState::Queued,
        "sending" => NoticeState::Sending,
        "committing" => NoticeState::Committing,
        "sent" => NoticeState::Sent,
        "uncertain" => NoticeState::Uncertain,
        "failed" => NoticeState::Failed,
        "withdrawn" => NoticeState::Withdrawn,
        other => anyhow::bail!("unknown notice state {other:?}"),
    })
}

pub fn run(global: &GlobalOptions, args: NoticesArgs) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = Store::open(&global.database_url())
            .await
            .context("opening the database")?;
        match args.command {
            NoticesCommand::Run { once, worker } => run_worker(global, store, once, worker).await,
            NoticesCommand::List {
                state,
                provider,
                limit,
                cursor,
                format,
            } => {
                let filter = NoticeFilter {
                    state: state.as_deref().map(state_of).transpose()?,
                    provider_key: provider,
                    hotline: None,
                    limit: Some(limit),
                };
                let (notices, next) = store
                    .notices()
                    .list_notices_page(&filter, cursor.map(NoticeId))
                    .await?;
                // On stderr, so the JSON on stdout stays one document per page.
                if let Some(next) = next {
                    eprintln!("more: --cursor {}", next.0);
                }
                match format {
                    ListFormat::Json => {
                        let all: Vec<_> = notices.iter().map(views::notice_summary).collect();
                        println!("{}", serde_json::to_string_pretty(&all)?);
                    }
                    ListFormat::Jsonl => {
                        for n in &notices {
                            println!("{}", views::notice_summary(n));
                        }
                    }
                    ListFormat::Text => {
                        println!("{:>6}  {:<10} {:<10} {:<24} {:<32} sent", "id", "state", "kind", "provider", "recipient");
                        for n in &notices {
                            println!(
                                "{:>6}  {:<10} {:<10} {:<24} {:<32} {}",
                                n.id,
                                n.state.as_str(),
                                n.kind,
                                n.provider_name,
                                n.recipient,
                                n.sent_at.map(aranea_notice::clock::rfc3339).unwrap_or_default()
                            );
                        }
                    }
                }
                Ok(std::process::ExitCode::SUCCESS)
            }
            NoticesCommand::Show { id, format } => show(&store, id, format).await,
            NoticesCommand::Resend { id } => {
                let now = aranea_notice::Clock::now(&SystemClock);
                let copy = store.notices().resend_notice(NoticeId(id), now).await?;
                println!("queued notice {} as a resend of {id}", copy.0);
                Ok(std::process::ExitCode::SUCCESS)
            }
            NoticesCommand::RotateLinkKey => {
                let config: NoticeConfig = global.config_file()?.section("notice")?;
                let rotation = aranea_notice::link_keys::rotate(&config, &store)
                    .await
                    .context("rotating the respond links' key")?;
                let at = aranea_notice::clock::rfc3339(rotation.at);
                match rotation.previous_verifies_until {
                    Some(until) => println!(
                        "a new key signs the respond links from {at}; links signed with the \
                         previous key verify until {}",
                        aranea_notice::clock::rfc3339(until)
                    ),
                    None => println!("a new key signs the respond links from {at}"),
                }
                Ok(std::process::ExitCode::SUCCESS)
            }
            NoticesCommand::Stats { format } => {
                let real_now = aranea_notice::Clock::now(&SystemClock);
                let now = stats::as_of(&store, None, real_now).await?;
                let rows = stats::compute(&store.notices().item_facts().await?, now);
                match format {
                    StatsFormat::Csv => print!("{}", stats::to_csv(&rows)),
                    StatsFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                    StatsFormat::Text => {
                        for r in &rows {
                            println!(
                                "{:<9} {:<28} items {:>4}  removed {:>4}  median {:>7}  p90 {:>7}  outstanding {:>4}  oldest {:>7}  re-uploads {:>3}",
                                r.dimension,
                                r.key,
                                r.items,
                                r.removed,
                                r.median_hours_to_removal.map(|h| format!("{h:.1} h")).unwrap_or_else(|| "-".into()),
                                r.p90_hours_to_removal.map(|h| format!("{h:.1} h")).unwrap_or_else(|| "-".into()),
                                r.outstanding,
                                r.oldest_outstanding_hours.map(|h| format!("{h:.1} h")).unwrap_or_else(|| "-".into()),
                                r.reuploads
                            );
                        }
                    }
                }
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    })
}

async fn show(
    store: &Store,
    id: i64,
    format: ShowFormat,
) -> anyhow::Result<std::process::ExitCode> {
    let Some(notice) = store.notices().notice(NoticeId(id)).await? else {
        anyhow::bail!("no notice {id}");
    };
    match format {
        ShowFormat::Xarf => println!("{}", notice.xarf),
        ShowFormat::Email => print!("{}", notice.body_text),
        ShowFormat::Json | ShowFormat::Text => {
            let items = store.notices().items_of_notice(NoticeId(id)).await?;
            let timeline = store.notices().timeline(NoticeId(id)).await?;
            if matches!(format, ShowFormat::Json) {
                let mut value = views::notice_full(&notice);
                if let Some(map) = value.as_object_mut() {
                    map.insert("items".into(), items.iter().map(views::item).collect());
                    map.insert(
                        "timeline".into(),
                        timeline.iter().map(views::event).collect(),
                    );
                }
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!(
                    "notice {} ({}) {} to {} via {} [{}]",
                    notice.id,
                    notice.report_id,
                    notice.kind,
                    notice.recipient,
                    notice.channel,
                    notice.state.as_str()
                );
                println!(
                    "provider {}  hotline {}  subject: {}",
                    notice.provider_name, notice.hotline, notice.subject
                );
                for item in &items {
                    println!("  item {:>5} {:<9} {}", item.id, item.state, item.url);
                }
                for retraction in store.notices().retractions_of(NoticeId(id)).await? {
                    if retraction.0 != id {
                        println!("  retracted by notice {}", retraction.0);
                    }
                }
                for event in &timeline {
                    println!(
                        "  {}  {:<12} {}",
                        aranea_notice::clock::rfc3339(event.at),
                        event.kind,
                        event.detail
                    );
                }
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn run_worker(
    global: &GlobalOptions,
    store: Store,
    once: bool,
    worker: Option<String>,
) -> anyhow::Result<std::process::ExitCode> {
    let config: NoticeConfig = global.config_file()?.section("notice")?;
    let fetch = config.fetch_config()?;
    let interval = Duration::from_secs(config.interval_secs.max(1));
    let worker = worker.unwrap_or_else(|| format!("notice-{}", std::process::id()));
    // Failed notices and refused data files are logged at ERROR level (JSON lines unless
    // stderr is a terminal; ARANEA_LOG sets the level).
    aranea_server::init_logging();
    let engine = NoticeEngine::new(store, config, fetch, Arc::new(SystemClock), &worker)?;
    loop {
        let pass = engine.run_once().await?;
        eprintln!(
            "notice pass: {} new items, {} composed, {} sent, {} retried, {} failed, {} checked, {} removed, {} re-uploads, {} withdrawn, {} retractions, {} pages to revisit ({} nearby hosts)",
            pass.ingested,
            pass.composed,
            pass.sent,
            pass.retried,
            pass.failed,
            pass.checked,
            pass.removed,
            pass.reuploads,
            pass.withdrawn,
            pass.retractions,
            pass.revisits,
            pass.revisited_hosts
        );
        if once {
            return Ok(std::process::ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(std::process::ExitCode::SUCCESS),
        }
    }
}
