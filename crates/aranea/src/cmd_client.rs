//! `aranea client`: API clients of the server (Shield-compatible Basic credentials and native
//! API keys). `add` prints `NAME:SECRET` on its last line: the only time the secret is shown.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;

use crate::cli::{GlobalOptions, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClientCommand {
    /// Create a client; prints NAME:SECRET on the last line.
    Add {
        name: String,
        /// What it may call: shield, intake, read, banks (repeat; default: shield).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Every scope (with --hotline, every scope but banks: only a platform client may
        /// change the banks every hotline shares).
        #[arg(long, conflicts_with = "scopes")]
        all_scopes: bool,
        /// Requests per second allowed (bursts of as many); default: no limit.
        #[arg(long, value_name = "N")]
        rate: Option<u32>,
        /// Bind the client to one hotline (a registered hotline's code): it then reports to
        /// that hotline only and reads only its reports, notices and removal statistics.
        /// Default: a platform client, for every hotline.
        #[arg(long, value_name = "CODE")]
        hotline: Option<String>,
    },
    /// List clients (secrets are never shown).
    List {
        /// text: one tab-separated line per client; json: one array; jsonl: one object per line.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Revoke a client: its credentials stop working within seconds on every server.
    Revoke { name: String },
}

pub fn run(global: &GlobalOptions, args: ClientArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = aranea_store::Store::open(&global.database_url()).await?;
        let code = match args.command {
            ClientCommand::Add {
                name,
                scopes,
                all_scopes,
                rate,
                hotline,
            } => {
                let scopes: Vec<String> = if all_scopes {
                    use aranea_server::clients::scope;
                    scope::ALL
                        .iter()
                        .filter(|&&s| hotline.is_none() || s != scope::BANKS)
                        .map(|&s| s.to_owned())
                        .collect()
                } else if scopes.is_empty() {
                    vec![aranea_server::clients::scope::SHIELD.to_owned()]
                } else {
                    scopes
                };
                if rate == Some(0) {
                    bail!("--rate must be at least 1");
                }
                let issued = aranea_server::issue_hotline_client(
                    &store,
                    &name,
                    &scopes,
                    rate,
                    hotline.as_deref(),
                )
                .await?;
                let acts_for = issued
                    .client
                    .hotline
                    .as_ref()
                    .map_or("every hotline".to_owned(), |code| format!("hotline {code}"));
                println!(
                    "client {} created with scopes [{}] for {acts_for}; the secret is shown only now:",
                    issued.client.name,
                    issued.client.scopes.join(", ")
                );
                println!("{}:{}", issued.client.name, issued.secret);
                ExitCode::SUCCESS
            }
            ClientCommand::List { format } => {
                let clients = store.api_clients().list().await?;
                if format != OutputFormat::Text {
                    let rows: Vec<_> = clients
                        .iter()
                        .map(|c| {
                            json!({"name": c.name, "scopes": c.scopes, "rate_per_second": c.rate_per_second,
                                   "hotline": c.hotline, "created_at": c.created_at, "revoked_at": c.revoked_at})
                        })
                        .collect();
                    format.print_records(&rows)?;
                } else {
                    for c in &clients {
                        let rate = c.rate_per_second.map_or("unlimited".to_owned(), |r| format!("{r}/s"));
                        let state = if c.revoked_at.is_some() { "revoked" } else { "active" };
                        let hotline = c.hotline.as_deref().unwrap_or("all hotlines");
                        println!(
                            "{}\t{}\t[{}]\t{}\t{}",
                            c.name,
                            state,
                            c.scopes.join(","),
                            rate,
                            hotline
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            ClientCommand::Revoke { name } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis();
                if store.api_clients().revoke(&name, i64::try_from(now)?).await? {
                    println!("client {name} revoked");
                    ExitCode::SUCCESS
                } else {
                    eprintln!("aranea: no active client named {name:?}");
                    ExitCode::from(1)
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}
