//! Structured logs: JSON lines when stderr is not a terminal (services, containers), readable
//! text when it is. The level comes from `ARANEA_LOG` (`off`, `error`, `warn`, `info`, `debug`,
//! `trace`; default `info`); a value that names none of them is reported in a warning line and
//! `info` is used, so a typo (`ARANEA_LOG=verbose`, or a `RUST_LOG`-style filter) does not
//! pass unnoticed.

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;

/// Installs the global subscriber; a second call does nothing.
pub fn init_logging() {
    let requested = std::env::var("ARANEA_LOG").ok();
    let requested = requested
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let parsed = requested.map(|v| v.parse::<LevelFilter>().map_err(|_| v));
    let level = match parsed {
        Some(Ok(level)) => level,
        _ => LevelFilter::INFO,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    let installed = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().with_current_span(false).try_init()
    };
    // Through the subscriber just installed, so the warning is a JSON line like the others.
    if installed.is_ok()
        && let Some(Err(unknown)) = parsed
    {
        tracing::warn!(
            ARANEA_LOG = unknown,
            "ARANEA_LOG={unknown:?} is not a level (off, error, warn, info, debug, trace): logging at info"
        );
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
