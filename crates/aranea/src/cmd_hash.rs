//! `aranea hash` (work in progress).

use crate::cli::GlobalOptions;

#[derive(Debug, clap::Args)]
pub struct HashArgs {}

pub fn run(_global: &GlobalOptions, _args: HashArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`aranea hash` is not implemented yet")
}
