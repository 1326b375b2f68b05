//! `aranea serve`: the HTTP server (matching API, native API, web UI, metrics) on its own.
//! Many servers may run against one PostgreSQL, on several machines: the banks are then
//! kept in the database too (on SQLite, in `DATA/banks`).

use std::process::ExitCode;

use anyhow::Context;
use aranea_server::{AppState, ServerConfig};

use crate::cli::GlobalOptions;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (default: `listen` in [server], else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

pub fn run(global: &GlobalOptions, args: ServeArgs) -> anyhow::Result<ExitCode> {
    aranea_server::init_logging();
    let mut config: ServerConfig = global.config_file()?.section("server")?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = aranea_store::Store::open(&global.database_url())
            .await
            .context("opening the database")?;
        let listen = config.listen.clone();
        let banks = global.bank_home_async().await?;
        let state = AppState::open_home(config, banks, store.clone()).await?;
        install_review_ui(global, &store, &listen, &state)?;
        // The public report form at /report, when [report_form] enables it.
        let report_form: aranea_server::ui::report_form::ReportFormConfig =
            global.config_file()?.section("report_form")?;
        report_form.check(&store).await?;
        aranea_server::ui::install_report_form(report_form);
        // Notices sent by `aranea notices run` with the same `[notice]` section (or, with no
        // link_secret, the same database) link here.
        let notice: aranea_notice::NoticeConfig = global.config_file()?.section("notice")?;
        aranea_server::ui::install_notice_links(
            aranea_notice::LinkKeys::open(&notice, &store)
                .await
                .context("the notices' link key")?,
        );
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let local = listener.local_addr()?;
        // Scripts wait for this line; it carries the real port when ADDR asked for port 0.
        println!("listening on http://{local}");
        tracing::info!(%local, "serving");
        aranea_server::serve(listener, state, aranea_server::shutdown_signal()).await?;
        store.close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The analysts' web UI under /ui/ (review room): positive decisions write through the
/// server's live banks, so matching sees them at once; decisions a crash or a failed bank
/// write left unapplied are finished, and media past retention purged, in the background.
fn install_review_ui(
    global: &GlobalOptions,
    store: &aranea_store::Store,
    listen: &str,
    state: &AppState,
) -> anyhow::Result<()> {
    let config: aranea_review::ReviewConfig = global.config_file()?.section("review")?;
    let banks: std::sync::Arc<dyn aranea_review::BankWriter> = state.banks().clone();
    let review = aranea_review::Review::from_config(store.clone(), config, Some(banks))?;
    let loopback = listen.starts_with("127.")
        || listen.starts_with("localhost")
        || listen.starts_with("[::1]");
    tokio::spawn(aranea_server::ui::review_upkeep(review.clone()));
    aranea_server::ui::install_review(review, !loopback);
    Ok(())
}
