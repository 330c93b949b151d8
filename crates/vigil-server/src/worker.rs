//! `vigil worker`: pulls uploaded-video jobs from NATS JetStream, runs them
//! through its own batched engine and stores the results back, for as many
//! workers on as many machines as the load needs.
//!
//! Each claimed job reports progress every second; that both updates the
//! job record every API node reads and tells JetStream the job is alive. A
//! worker that dies simply stops reporting, and after `queue.ack_wait_s` the
//! job is redelivered to another worker (see [`vigil_queue::Claim`] for why
//! it still completes only once).
//!
//! Besides jobs, a worker serves `/healthz`, `/readyz` and `/metrics` on
//! `server.listen`, so it is probed and scraped like `vigil serve`.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use vigil_core::config::{Config, QueueBackend};

use crate::jobs::JobRunner;
use crate::metrics::Metrics;
use crate::state::{Probe, ReadyState};
use crate::ServeError;

/// What the ops routes of a worker report.
struct Health {
    /// How inference runs, once the model is loaded and warm.
    ready: OnceLock<vigil_detect::Backend>,
    /// Why the worker is not ready yet (for `/readyz`).
    waiting: Mutex<String>,
}

impl Health {
    fn waiting_for(&self, why: String) {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }
}

impl Probe for Health {
    fn readiness(&self) -> ReadyState {
        match self.ready.get() {
            Some(b) => ReadyState::Ready {
                device: b.device.as_str().to_string(),
                precision: b.precision.as_str().to_string(),
                backend: b.runtime.clone(),
                model: None,
            },
            None => ReadyState::Waiting(
                self.waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            ),
        }
    }
}

/// Runs a worker until `shutdown` resolves. Running jobs are given back to
/// the queue (redelivered at once to another worker) before returning.
pub async fn run_worker(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    if cfg.queue.backend != QueueBackend::Nats {
        return Err(ServeError::Config(
            "vigil worker needs the scale-out backend: set [queue] backend = \"nats\" and url \
             (or VIGIL_QUEUE_BACKEND=nats VIGIL_QUEUE_URL=nats://host:4222)"
                .into(),
        ));
    }
    let metrics = Arc::new(Metrics::new()?);
    let scratch = cfg.storage.dir.join("worker");
    std::fs::create_dir_all(&scratch).map_err(|source| ServeError::Dir {
        what: "storage.dir",
        path: scratch.clone(),
        source,
    })?;
    // Shown on the open /readyz: never the credentials (issue #15, item 11).
    let url = vigil_queue::mask_nats_url(cfg.queue.url.as_deref().unwrap_or_default());
    let health = Arc::new(Health {
        ready: OnceLock::new(),
        waiting: Mutex::new(format!("connecting to the job queue (NATS at {url})")),
    });
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: cfg.server.listen.clone(),
            source,
        })?;
    // The same ops routes as `vigil serve`, over the worker's own state.
    let app: Router = crate::api::ops::router(crate::api::ops::Ops {
        metrics: Arc::clone(&metrics),
        probe: Arc::clone(&health) as Arc<dyn Probe>,
    });
    // The same self-defending accept loop as `vigil serve` (slowloris).
    let limits = crate::serve::ServeLimits {
        header_timeout: Duration::from_secs(cfg.server.header_timeout_s),
        max_connections: cfg.server.max_connections,
    };
    let http = tokio::spawn(crate::serve::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    // NATS may come up after the worker (a reboot, a compose file without
    // ordering): retry until it answers, probed as not ready meanwhile.
    let connecting = crate::connect_queue_retrying(&cfg, |e| {
        health.waiting_for(format!(
            "waiting for the job queue (NATS at {url}); retrying: {e}"
        ));
    });
    let queue = tokio::select! {
        () = &mut shutdown => {
            http.abort();
            return Ok(());
        }
        q = connecting => q,
    };
    health.waiting_for("loading the model".into());
    let cfg_for_load = cfg.clone();
    let loading = tokio::task::spawn_blocking(move || crate::start_engine(&cfg_for_load));
    let (engine, backend) = tokio::select! {
        () = &mut shutdown => {
            http.abort();
            return Ok(());
        }
        r = loading => r.map_err(ServeError::crashed("model loader"))??,
    };
    let id = crate::worker_name();
    tracing::info!(
        worker = %id,
        device = %backend.device,
        precision = %backend.precision,
        backend = %backend.runtime,
        slots = cfg.jobs.workers,
        "worker ready; waiting for jobs"
    );
    metrics.set_model_info(
        &backend.runtime,
        backend.device.as_str(),
        backend.precision.as_str(),
    );
    let _ = health.ready.set(backend);
    // `jobs.workers` jobs at once, all on the one batched engine.
    let runner = Arc::new(JobRunner {
        queue: Arc::new(queue),
        engine,
        limits: cfg.jobs.clone(),
        tracker: cfg.tracker.clone(),
        metrics,
        worker: id,
        scratch,
    });
    let slots = runner.start(&stop_rx);
    shutdown.await;
    tracing::info!("shutting down; giving running jobs back to the queue");
    let _ = stop_tx.send(true);
    for s in slots {
        let _ = s.await;
    }
    http.abort();
    tracing::info!("stopped");
    Ok(())
}
