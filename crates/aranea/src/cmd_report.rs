//! `aranea report add URL`: records a reported URL; the next crawl worker to look queues it
//! (with the reported priority) and fetches it. `aranea report show ID`: where it stands.

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
    /// Show a report: its status, why it was rejected, and the URLs its redirects led to.
    Show {
        /// The report's id, as `report add` printed it, or its public reference (such as
        /// `7KQ3-M9XD-2FHA`, as the public report form told the reporter).
        id: String,
        /// text: one `key: value` line per field, then one `followed:` line per redirect
        /// target; json and jsonl: one object on one line, `{"report", "reference", "url",
        /// "reporter", "hotline", "notes", "reported_at", "status", "reason", "followed":
        /// [{"url", "redirects"}]}`.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

pub fn run(global: &GlobalOptions, args: ReportArgs) -> anyhow::Result<std::process::ExitCode> {
    let (url, reporter, hotline, notes, format) = match args.command {
        ReportCommand::Add {
            url,
            reporter,
            hotline,
            notes,
            format,
        } => (url, reporter, hotline, notes, format),
        ReportCommand::Show { id, format } => return show(global, id, format),
    };
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

/// Prints one report (by id, or by public reference) as `format` says; an unknown one is
/// an error.
fn show(
    global: &GlobalOptions,
    id: String,
    format: OutputFormat,
) -> anyhow::Result<std::process::ExitCode> {
    let by_id = if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        let Ok(number) = id.parse::<i64>() else {
            anyhow::bail!("no report {id}");
        };
        Some(aranea_store::ReportId::from_raw(number))
    } else {
        None
    };
    let reference = match by_id {
        Some(_) => None,
        None => match aranea_store::ReportReference::parse(&id) {
            Some(reference) => Some(reference),
            None => anyhow::bail!("{id:?} is neither a report id nor a report reference"),
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let found = runtime.block_on(async {
        let store = aranea_store::Store::open(&global.database_url()).await?;
        let found = match (by_id, &reference) {
            (Some(id), _) => store.reports().get(id).await?,
            (None, Some(reference)) => store.reports().by_reference(reference).await?,
            (None, None) => None,
        };
        let Some(report) = found else {
            store.close().await;
            return Ok(None);
        };
        let id = report.id;
        // The URLs its redirects led to, in the order followed (the first link is the URL
        // reported itself).
        let mut followed = Vec::new();
        for link in store.reports().links(id).await? {
            if link.redirects == 0 {
                continue;
            }
            if let Some(record) = store.frontier().url(link.url).await? {
                followed.push((record.url, link.redirects));
            }
        }
        store.close().await;
        Ok::<_, aranea_store::StoreError>(Some((report, followed)))
    })?;
    let Some((report, followed)) = found else {
        anyhow::bail!("no report {id}");
    };
    match format {
        OutputFormat::Text => {
            // One line per field: texts that could hold a line break are printed as JSON
            // strings, so no value can pass for another line.
            let quoted = |text: &str| serde_json::Value::from(text).to_string();
            println!("report: {}", report.id.get());
            println!("reference: {}", report.reference);
            // Intake refuses control characters in a URL; a row from before that is quoted.
            if report.url.chars().any(char::is_control) {
                println!("url: {}", quoted(&report.url));
            } else {
                println!("url: {}", report.url);
            }
            println!("status: {}", report.status.as_str());
            if let Some(reason) = &report.reason {
                println!("reason: {}", quoted(reason));
            }
            println!("reporter: {}", quoted(&report.reporter));
            println!("hotline: {}", quoted(&report.hotline));
            println!(
                "reported_at: {}",
                aranea_notice::clock::rfc3339(report.reported_at)
            );
            if !report.notes.is_empty() {
                println!("notes: {}", quoted(&report.notes));
            }
            for (url, redirects) in &followed {
                println!("followed: {url} (after {redirects} redirects)");
            }
        }
        OutputFormat::Json | OutputFormat::Jsonl => {
            let followed: Vec<serde_json::Value> = followed
                .iter()
                .map(|(url, redirects)| serde_json::json!({"url": url, "redirects": redirects}))
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "report": report.id.get(), "reference": report.reference.as_str(),
                    "url": report.url, "reporter": report.reporter,
                    "hotline": report.hotline, "notes": report.notes,
                    "reported_at": report.reported_at, "status": report.status.as_str(),
                    "reason": report.reason, "followed": followed,
                })
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
