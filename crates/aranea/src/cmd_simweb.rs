//! `aranea simweb` (work in progress).

use crate::cli::GlobalOptions;

#[derive(Debug, clap::Args)]
pub struct SimwebArgs {}

pub fn run(_global: &GlobalOptions, _args: SimwebArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`aranea simweb` is not implemented yet")
}
