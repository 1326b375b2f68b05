//! `aranea migrate`: brings the database named by `--db` (or the SQLite file in the data
//! directory) to this build's schema. Opening the store does the same; this command exists
//! so operators can migrate a shared PostgreSQL once, before starting many workers.

use clap::Args;

use crate::cli::GlobalOptions;

#[derive(Debug, Args)]
pub struct MigrateArgs {}

pub fn run(global: &GlobalOptions, _args: MigrateArgs) -> anyhow::Result<std::process::ExitCode> {
    let url = global.database_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (applied, version) = runtime.block_on(async {
        let store = aranea_store::Store::connect(&url, &Default::default()).await?;
        let applied = store.migrate().await?;
        let version = store.schema_version().await?;
        store.close().await;
        Ok::<_, aranea_store::StoreError>((applied, version))
    })?;
    println!("applied {applied} migration(s); schema at version {version}");
    Ok(std::process::ExitCode::SUCCESS)
}
