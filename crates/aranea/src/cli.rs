//! Options shared by every subcommand, and the subcommand list.
//!
//! One convention everywhere: `--db URL` (env `ARANEA_DB`), `--data DIR` (env `ARANEA_DATA`),
//! `--config FILE` (env `ARANEA_CONFIG`); machine-readable output with `--format`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "aranea",
    version,
    about = "Find known child sexual abuse material on the open web and get it removed."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Database URL: sqlite://PATH or postgres://… (default: a SQLite file in the data directory).
    #[arg(long, env = "ARANEA_DB", global = true, value_name = "URL")]
    pub db: Option<String>,
    /// Data directory (database, snapshots, encrypted review media).
    #[arg(
        long,
        env = "ARANEA_DATA",
        global = true,
        value_name = "DIR",
        default_value = "./aranea-data"
    )]
    pub data: PathBuf,
    /// Configuration file (TOML).
    #[arg(long, env = "ARANEA_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl GlobalOptions {
    /// The database URL in force: `--db`, else a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.db {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data.join("aranea.db").display()),
        }
    }

    /// Where the hash banks are kept: in the database's journal on PostgreSQL (several
    /// machines share them; this machine's snapshot under `DATA/bank-cache/`), otherwise in
    /// `DATA/banks`. Blocking: connects to PostgreSQL.
    pub fn bank_home(&self) -> anyhow::Result<aranea_server::BankHome> {
        let url = self.database_url();
        aranea_server::BankHome::for_database(&self.data, &url)
            .context("opening the banks' journal in the database")
    }

    /// [`Self::bank_home`] from async code, on the blocking pool.
    pub async fn bank_home_async(&self) -> anyhow::Result<aranea_server::BankHome> {
        let (data, url) = (self.data.clone(), self.database_url());
        tokio::task::spawn_blocking(move || aranea_server::BankHome::for_database(&data, &url))
            .await?
            .context("opening the banks' journal in the database")
    }

    /// The configuration file in force (`--config`), parsed; empty when none was given.
    pub fn config_file(&self) -> anyhow::Result<crate::config::ConfigFile> {
        crate::config::ConfigFile::load(self.config.as_deref())
    }
}

/// `--format` of the commands whose output is records: text for people, one JSON array
/// (`json`) or one JSON object per line (`jsonl`) for programs. Commands with a single
/// result print one object on one line for both JSON formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Jsonl,
}

impl OutputFormat {
    /// Prints records as one JSON array (`json`) or one object per line (`jsonl`). Each
    /// command lays its `text` out its own way and prints it without calling this.
    pub fn print_records(self, records: &[Value]) -> anyhow::Result<()> {
        match self {
            Self::Json => println!("{}", serde_json::to_string_pretty(records)?),
            Self::Jsonl | Self::Text => records.iter().for_each(|r| println!("{r}")),
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Hash image and video files: type, size, MD5, SHA-1, SHA-256, PDQ and vPDQ.
    Hash(crate::cmd_hash::HashArgs),
    /// Manage hash banks: create, import, export, match (in DATA/banks, or with a
    /// PostgreSQL --db in the database, shared by every machine using it).
    Bank(crate::cmd_bank::BankArgs),
    /// Run the simulated internet standalone.
    Simweb(crate::cmd_simweb::SimwebArgs),
    /// Bring the database (--db) to this build's schema.
    Migrate(crate::cmd_migrate::MigrateArgs),
    /// Crawl: fetch reported and seeded URLs, hash and match their media, follow matches.
    Crawl(crate::cmd_crawl::CrawlArgs),
    /// Record reported URLs for the crawler.
    Report(crate::cmd_report::ReportArgs),
    /// Run the HTTP server: matching API, native API, web UI, metrics.
    Serve(crate::cmd_serve::ServeArgs),
    /// Manage API clients (Shield credentials and API keys).
    Client(crate::cmd_client::ClientArgs),
    /// Everything in one process against the simulated web, served on :8080 (SQLite in the
    /// data directory unless --db says otherwise).
    Demo(crate::cmd_demo::DemoArgs),
    /// Hotlines (tenants): add, list.
    Hotline(crate::cmd_review::HotlineArgs),
    /// Analysts and other users: add, list, disable, enable, reset-2fa.
    User(crate::cmd_review::UserArgs),
    /// The review audit trail: verify its hash chain.
    Audit(crate::cmd_review::AuditArgs),
    /// The encrypted review media vault: key generation, retention purge.
    Vault(crate::cmd_review::VaultArgs),
    /// Removal notices: run the worker, list, show (XARF as sent), resend, statistics.
    #[command(alias = "notice")]
    Notices(crate::cmd_notice::NoticesArgs),
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    /// Every option of every subcommand says what it does in `--help`: an option without a
    /// description is a question the operator has to answer by reading the source.
    #[test]
    fn every_option_of_every_subcommand_has_a_description() {
        let mut undescribed = Vec::new();
        let mut pending = vec![(String::from("aranea"), super::Cli::command())];
        while let Some((path, command)) = pending.pop() {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_positional() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    undescribed.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
            }
            for sub in command.get_subcommands() {
                pending.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
        }
        undescribed.sort();
        assert!(
            undescribed.is_empty(),
            "options without help: {undescribed:#?}"
        );
    }

    /// Every subcommand's `--help` prints what `-h` prints, in the compact one-line-per-option
    /// layout. clap gives `--help` its long layout (each help on the line below its option,
    /// every possible value on a line of its own) as soon as one option has a long help (a
    /// doc comment of several paragraphs) or a possible value has help (a doc comment on a
    /// `ValueEnum` variant): say what the values mean in the option's own help instead.
    #[test]
    fn every_subcommand_help_has_the_compact_layout() {
        let help = |words: &[String], flag: &str| {
            let mut argv = words.to_vec();
            argv.push(flag.to_owned());
            match super::Cli::try_parse_from(&argv) {
                Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.render().to_string(),
                other => panic!("{argv:?} printed no help: {other:?}"),
            }
        };
        let mut long_layout = Vec::new();
        let mut pending = vec![(vec![String::from("aranea")], super::Cli::command())];
        while let Some((words, command)) = pending.pop() {
            let long = help(&words, "--help");
            if long != help(&words, "-h") {
                long_layout.push(format!("{}:\n{long}", words.join(" ")));
            }
            for sub in command.get_subcommands() {
                let mut sub_words = words.clone();
                sub_words.push(sub.get_name().to_owned());
                pending.push((sub_words, sub.clone()));
            }
        }
        long_layout.sort();
        assert!(
            long_layout.is_empty(),
            "--help in clap's long layout:\n{}",
            long_layout.join("\n")
        );
    }
}
