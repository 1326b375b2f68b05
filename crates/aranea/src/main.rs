//! The `aranea` command: wires the crates together. Logic lives in the crates; each
//! subcommand's module only parses its arguments, calls them and prints.

mod cli;
mod closed_stdout;
mod cmd_bank;
mod cmd_client;
mod cmd_crawl;
mod cmd_demo;
mod cmd_hash;
mod cmd_migrate;
mod cmd_notice;
mod cmd_report;
mod cmd_review;
mod cmd_serve;
mod cmd_simweb;
mod cmd_video;
mod config;
mod review_sink;

use clap::Parser;

fn main() -> std::process::ExitCode {
    closed_stdout::install_panic_hook();
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            if closed_stdout::caused(&error) {
                closed_stdout::die_of_sigpipe();
            }
            eprintln!("aranea: error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        cli::Command::Hash(args) => cmd_hash::run(&cli.global, args),
        cli::Command::Bank(args) => cmd_bank::run(&cli.global, args),
        cli::Command::Simweb(args) => cmd_simweb::run(&cli.global, args),
        cli::Command::Migrate(args) => cmd_migrate::run(&cli.global, args),
        cli::Command::Crawl(args) => cmd_crawl::run(&cli.global, args),
        cli::Command::Report(args) => cmd_report::run(&cli.global, args),
        cli::Command::Serve(args) => cmd_serve::run(&cli.global, args),
        cli::Command::Client(args) => cmd_client::run(&cli.global, args),
        cli::Command::Demo(args) => cmd_demo::run(&cli.global, args),
        cli::Command::Hotline(args) => cmd_review::run_hotline(&cli.global, args),
        cli::Command::User(args) => cmd_review::run_user(&cli.global, args),
        cli::Command::Audit(args) => cmd_review::run_audit(&cli.global, args),
        cli::Command::Vault(args) => cmd_review::run_vault(&cli.global, args),
        cli::Command::Notices(args) => cmd_notice::run(&cli.global, args),
    }
}
