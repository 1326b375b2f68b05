//! `aranea bank` (work in progress).

use crate::cli::GlobalOptions;

#[derive(Debug, clap::Args)]
pub struct BankArgs {}

pub fn run(_global: &GlobalOptions, _args: BankArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`aranea bank` is not implemented yet")
}
