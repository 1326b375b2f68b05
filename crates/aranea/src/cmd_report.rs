//! `aranea report add URL`: records a reported URL; the next crawl worker to look queues it
//! (with the reported priority) and fetches it.

use clap::{Args, Subcommand};

use crate::cli::{GlobalOptions, OutputFormat};

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Record a reported URL.
    Add {
        url: String,
        /// Who reported it (a person, a partner, a tool).
        #[arg(long, default_value = "operator")]
        reporter: String,
        /// The hotline that received the report: its code (`aranea hotline list`). Once
        /// any hotline is registered, an unregistered one is refused and nothing recorded.
        #[arg(long, default_value = "local")]
        hotline: String,
        /// Free text kept with the report.
        #[arg(long, default_value = "")]
        notes: String,
        /// json (the default) and jsonl: one object on one line, `{"report": ID, "url",
        /// "status": "received", "reporter", "hotline"}`; text: one sentence with the id.
        #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
        format: OutputFormat,
    },
}

pub fn run(global: &GlobalOptions, args: ReportArgs) -> anyhow::Result<std::process::ExitCode> {
    let ReportCommand::Add {
        url,
        reporter,
        hotline,
        notes,
        format,
    } = args.command;
    let parsed =
        url::Url::parse(url.trim()).map_err(|e| anyhow::anyhow!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        anyhow::bail!("{url:?}: only http and https URLs can be crawled");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let id = runtime.block_on(async {
        let store = aranea_store::Store::open(&global.database_url()).await?;
        let report = aranea_store::NewReport {
            url: url.clone(),
            reporter: reporter.clone(),
            hotline: hotline.clone(),
            notes,
        };
        let id = store.reports().add(&report, now).await?;
        store.close().await;
        Ok::<_, aranea_store::StoreError>(id)
    });
    let id = match id {
        Ok(id) => id,
        Err(unknown @ aranea_store::StoreError::UnknownHotline { .. }) => anyhow::bail!(
            "{unknown}: nothing recorded (`aranea hotline list` shows the registered hotlines)"
        ),
        Err(other) => return Err(other.into()),
    };
    match format {
        OutputFormat::Text => println!("report {} received: {url}", id.get()),
        OutputFormat::Json | OutputFormat::Jsonl => println!(
            "{}",
            serde_json::json!({"report": id.get(), "url": url, "status": "received",
                               "reporter": reporter, "hotline": hotline})
        ),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
