//! `vigil serve`: the daemon (streams, jobs, HTTP API, metrics).

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::settings::{self, GlobalArgs};

/// The config `vigil serve` uses when `--config` is not given, so `vigil
/// serve` in a checkout runs the documented default setup.
const DEFAULT_CONFIG: &str = "configs/vigil.toml";

#[derive(Args, Debug)]
pub struct ServeArgs {}

pub fn run(g: &GlobalArgs, _a: &ServeArgs) -> anyhow::Result<ExitCode> {
    run_until_signal(g, vigil_server::run)
}

/// Loads the config (the default one when `--config` is absent and it
/// exists), then runs `daemon` on a multi-threaded runtime until SIGTERM or
/// SIGINT. Shared by `vigil serve` and `vigil worker`.
pub fn run_until_signal<F, Fut>(g: &GlobalArgs, daemon: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(
        vigil_core::config::Config,
        std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Fut,
    Fut: Future<Output = Result<(), vigil_server::ServeError>>,
{
    let mut g = g.clone();
    if g.config.is_none() {
        let p = PathBuf::from(DEFAULT_CONFIG);
        if p.is_file() {
            g.config = Some(p);
        }
    }
    let cfg = settings::load(&g)?;
    if let Some(p) = &g.config {
        tracing::info!(config = %p.display(), "config loaded");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vigil-http")
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(daemon(cfg, Box::pin(shutdown_signal())));
    // Blocking tasks still sitting in a camera read must not hold up exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (service managers, `docker stop`) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
