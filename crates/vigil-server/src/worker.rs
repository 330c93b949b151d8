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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;
use tracing::Instrument;
use vigil_core::config::{Config, QueueBackend};
use vigil_pipeline::Engine;
use vigil_queue::{Claim, ClaimOutcome, Delivery, JobQueue};

use crate::jobs::{process_video, JobContext, JobControl, Outcome, DETECTIONS_FILE, VIDEO_FILE};
use crate::metrics::Metrics;

/// How long one fetch waits for a job before checking for shutdown.
const FETCH_WAIT: Duration = Duration::from_secs(2);
/// Progress reports (and JetStream heartbeats) per running job.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Pause after a failed fetch (NATS away), so the log is not flooded.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

struct Worker {
    cfg: Config,
    queue: JobQueue,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    /// `host/pid`, recorded in each job it claims.
    id: String,
    scratch: PathBuf,
}

/// What the HTTP side of a worker needs.
struct Health {
    metrics: Arc<Metrics>,
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

/// Runs a worker until `shutdown` resolves. Running jobs are given back to
/// the queue (redelivered at once to another worker) before returning.
pub async fn run_worker(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), String> {
    if cfg.queue.backend != QueueBackend::Nats {
        return Err(
            "vigil worker needs the scale-out backend: set [queue] backend = \"nats\" and url \
             (or VIGIL_QUEUE_BACKEND=nats VIGIL_QUEUE_URL=nats://host:4222)"
                .into(),
        );
    }
    let metrics = Arc::new(Metrics::new().map_err(|e| format!("metrics: {e}"))?);
    let scratch = cfg.storage.dir.join("worker");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("storage.dir {}: {e}", scratch.display()))?;
    let url = cfg.queue.url.clone().unwrap_or_default();
    let health = Arc::new(Health {
        metrics: Arc::clone(&metrics),
        ready: OnceLock::new(),
        waiting: Mutex::new(format!("connecting to the job queue (NATS at {url})")),
    });
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|e| format!("server.listen {}: {e}", cfg.server.listen))?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::clone(&health));
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
        r = loading => r.map_err(|e| format!("model loader crashed: {e}"))??,
    };
    let id = format!("{}/{}", hostname(), std::process::id());
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
    let worker = Arc::new(Worker {
        cfg,
        queue,
        engine,
        metrics,
        id,
        scratch,
    });
    // `jobs.workers` jobs at once, all on the one batched engine.
    let slots: Vec<_> = (0..worker.cfg.jobs.workers)
        .map(|_| tokio::spawn(Arc::clone(&worker).slot(stop_rx.clone())))
        .collect();
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

impl Worker {
    /// One job at a time, until shutdown.
    async fn slot(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let next = tokio::select! {
                _ = stop.changed() => return,
                n = self.queue.next(FETCH_WAIT) => n,
            };
            match next {
                Ok(None) => {}
                Ok(Some(d)) => {
                    let span = tracing::info_span!("job", job = %d.id, delivery = d.delivered);
                    self.take(d, stop.clone()).instrument(span).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch jobs; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    async fn take(&self, d: Delivery, stop: watch::Receiver<bool>) {
        match self.queue.claim(d, &self.id).await {
            Ok(ClaimOutcome::Run(claim)) => self.run(*claim, stop).await,
            Ok(ClaimOutcome::AlreadyFinished(r)) => {
                tracing::info!(
                    status = r.status.as_str(),
                    "redelivered job was already finished"
                );
            }
            Ok(ClaimOutcome::GaveUp(r)) => {
                self.count("failed");
                tracing::warn!(error = ?r.error, "job failed");
            }
            Ok(ClaimOutcome::Missing) => tracing::warn!("job has no record (expired?); dropped"),
            Err(e) => tracing::warn!(error = %e, "cannot claim job; it will be redelivered"),
        }
    }

    fn count(&self, status: &str) {
        self.metrics.jobs.with_label_values(&[status]).inc();
    }

    async fn run(&self, mut claim: Claim, mut stop: watch::Receiver<bool>) {
        let rec = claim.record().clone();
        tracing::info!(attempt = rec.attempt, "job claimed");
        // Per attempt: a superseded worker still finishing must not write
        // into the files of the worker that took the job over.
        let dir = self.scratch.join(format!("{}-{}", rec.id, rec.attempt));
        let input = dir.join("input");
        let fetched = match tokio::fs::create_dir_all(&dir).await {
            Ok(()) => claim
                .download_input(&input)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("{}: {e}", dir.display())),
        };
        if let Err(e) = fetched {
            tracing::warn!(error = %e, "cannot fetch the upload; giving the job back");
            let _ = claim.release().await;
            remove_dir(&dir).await;
            return;
        }
        self.metrics.jobs.with_label_values(&["running"]).inc();
        let progress = Arc::new(Progress::default());
        let task = {
            let (engine, progress) = (Arc::clone(&self.engine), Arc::clone(&progress));
            let (tracker, metrics) = (self.cfg.tracker.clone(), Arc::clone(&self.metrics));
            let limits = self.cfg.jobs.clone();
            let (id, params, dir) = (rec.id.clone(), rec.params.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                let cx = JobContext {
                    engine: &engine,
                    limits: &limits,
                    tracker: &tracker,
                    metrics: &metrics,
                };
                let mut ctl = RemoteControl(progress);
                process_video(&cx, &id, &dir.join("input"), &dir, &params, &mut ctl)
            })
        };
        tokio::pin!(task);
        let mut tick = tokio::time::interval(REPORT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut lost, mut stopping) = (false, false);
        let outcome = loop {
            tokio::select! {
                r = &mut task => break r,
                _ = tick.tick(), if !lost => {
                    let (done, total) = progress.read();
                    match claim.progress(done, total).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("another worker has taken this job over; stopping");
                            lost = true;
                            progress.stop.store(true, Ordering::SeqCst);
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot report progress"),
                    }
                }
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    progress.stop.store(true, Ordering::SeqCst);
                }
            }
        };
        self.metrics.jobs.with_label_values(&["running"]).dec();
        let files = [
            (VIDEO_FILE, dir.join(VIDEO_FILE)),
            (DETECTIONS_FILE, dir.join(DETECTIONS_FILE)),
        ];
        match outcome {
            _ if lost => {}
            Ok(Outcome::Succeeded { frames }) => {
                let files: Vec<(&str, &Path)> =
                    files.iter().map(|(n, p)| (*n, p.as_path())).collect();
                match claim.succeed(frames, &files).await {
                    Ok(true) => {
                        self.count("succeeded");
                        tracing::info!(frames, "job succeeded");
                    }
                    Ok(false) => tracing::warn!(
                        "job finished here but another worker had taken it over; result discarded"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot store the results; the job will be redelivered")
                    }
                }
            }
            Ok(Outcome::Failed(msg)) => {
                tracing::warn!(error = %msg, "job failed");
                match claim.fail(msg).await {
                    Ok(true) => self.count("failed"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot record the failure; the job will be redelivered")
                    }
                }
            }
            Ok(Outcome::Stopped) => {
                if let Err(e) = claim.release().await {
                    tracing::warn!(error = %e, "cannot give the job back; it will be redelivered after queue.ack_wait_s");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "job crashed; giving it back");
                let _ = claim.release().await;
            }
        }
        remove_dir(&dir).await;
    }
}

/// Shared between the blocking job thread and the reporting loop.
#[derive(Default)]
struct Progress {
    done: OnceLock<Arc<AtomicU64>>,
    total: Mutex<Option<u64>>,
    /// Set from outside (shutdown, or the job was taken over).
    stop: AtomicBool,
}

impl Progress {
    fn read(&self) -> (u64, Option<u64>) {
        let done = self.done.get().map_or(0, |d| d.load(Ordering::Relaxed));
        (done, *self.total.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

struct RemoteControl(Arc<Progress>);

impl JobControl for RemoteControl {
    fn started(&mut self, total: Option<u64>, _stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
        *self.0.total.lock().unwrap_or_else(|p| p.into_inner()) = total;
        let _ = self.0.done.set(done);
    }

    fn progress(&mut self, _done: u64) -> bool {
        !self.0.stop.load(Ordering::SeqCst)
    }
}

async fn remove_dir(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove job scratch files");
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(h): State<Arc<Health>>) -> Response {
    match h.ready.get() {
        Some(b) => Json(serde_json::json!({
            "ready": true,
            "device": b.device.as_str(),
            "precision": b.precision.as_str(),
            "backend": b.runtime,
        }))
        .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "ready": false,
                "reason": h.waiting.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            })),
        )
            .into_response(),
    }
}

async fn metrics_text(State(h): State<Arc<Health>>) -> Response {
    match h.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
