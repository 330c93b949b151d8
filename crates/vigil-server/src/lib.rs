//! `vigil serve`: the daemon. Camera streams with reconnection, a durable job
//! queue for uploaded videos, and the HTTP API — all feeding one shared,
//! batched [`vigil_pipeline::Engine`].
//!
//! Blocking work (decoding, inference, encoding, SQLite) runs on dedicated
//! threads or `spawn_blocking`; async is used only at the HTTP edge.

mod api;
mod console;
mod error;
mod jobs;
mod metrics;
mod serve;
mod source_policy;
mod state;
mod storage;
mod streams;
mod worker;

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use vigil_core::config::{Config, QueueBackend};
use vigil_events::{
    EventSink, MqttSink, MqttTarget, Outbox, OutboxConfig, PromMetrics, SnapshotStore, WebhookSink,
    WebhookTarget,
};
use vigil_pipeline::{Engine, EngineConfig};

pub use api::error::ApiError;
pub use api::ApiDoc;
pub use error::ServeError;
pub use metrics::{Metrics, STAGES};
pub use worker::run_worker;

use crate::jobs::JobRunner;
use crate::state::{AppState, Ready, SharedState};
use crate::streams::{EventOutputs, Streams};
use vigil_jobs::{Deferred, JobQueue, LocalQueue};

/// How long in-flight HTTP requests get after a shutdown signal before the
/// daemon moves on; together with the stream and job drains this keeps
/// shutdown under 10 s.
const HTTP_DRAIN: Duration = Duration::from_secs(3);
const STREAM_DRAIN: Duration = Duration::from_secs(3);
const JOB_DRAIN: Duration = Duration::from_secs(3);
/// How often expired jobs are looked for; retention is in hours, so a
/// minute's slack is irrelevant.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Runs the daemon until `shutdown` resolves (SIGTERM/SIGINT in the binary).
///
/// Binds first so `/healthz` answers at once; the model loads in the
/// background and `/readyz` turns 200 when it is warm. A model that cannot be
/// loaded ends the daemon with that error: serving without one is pointless.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
    check_config(&cfg)?;
    // A stream node that cannot tell its replica index must not start at
    // all (rather than run every camera, or none, after the model loads).
    let shard = shard_index(&cfg)?;
    let storage = cfg.storage.dir.clone();
    std::fs::create_dir_all(&storage).map_err(|source| ServeError::Dir {
        what: "storage.dir",
        path: storage.clone(),
        source,
    })?;
    let metrics = Arc::new(Metrics::new()?);
    let mqtt = start_mqtt(&cfg);
    // NATS is connected in the background; its sink exists from the start
    // so events raised before the connection wait in the outbox.
    let nats_events = (cfg.queue.backend == QueueBackend::Nats && cfg.queue.publish_events)
        .then(|| Arc::new(vigil_queue::NatsEventSink::new()));
    let outbox = open_outbox(&cfg, &metrics, &mqtt, nats_events.clone())?;
    // Every event is in SQLite before a delivery is attempted; undelivered
    // ones from before a crash are picked up here.
    let delivery = outbox.start_delivery();
    let snapshots = if cfg.events.snapshots {
        let store = snapshot_store(&cfg);
        std::fs::create_dir_all(store.dir()).map_err(|source| ServeError::Dir {
            what: "event snapshots",
            path: store.dir().to_path_buf(),
            source,
        })?;
        Some(store)
    } else {
        None
    };
    // Local jobs run here; NATS jobs run in `vigil worker` processes, and
    // the queue is connected after the HTTP side is up (`connect_then_load`).
    let (jobs, nats): (Arc<dyn JobQueue>, _) = match cfg.queue.backend {
        QueueBackend::Local => {
            let local = LocalQueue::open(&storage, cfg.jobs.queue_size, cfg.jobs.retention_hours)?;
            (Arc::new(local), None)
        }
        QueueBackend::Nats => {
            // Shown in /readyz and 503 answers: never the credentials.
            let url = vigil_queue::mask_nats_url(cfg.queue.url.as_deref().unwrap_or_default());
            let deferred = Arc::new(Deferred::new(format!("NATS at {url}")));
            (Arc::clone(&deferred) as Arc<dyn JobQueue>, Some(deferred))
        }
    };
    let storage_watch = Arc::new(storage::StorageWatch::new(
        cfg.storage.dir.clone(),
        cfg.storage.min_free_mb,
    ));
    let outputs = EventOutputs {
        storage: Arc::clone(&storage_watch),
        lost: metrics.events_lost_total.clone(),
        outbox: outbox.clone(),
        snapshots,
        snapshot_quality: cfg.events.snapshot_quality,
        mqtt: mqtt.clone(),
        nats: nats_events,
    };
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: cfg.server.listen.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_or_else(|_| cfg.server.listen.clone(), |a| a.to_string());
    let limits = api::limits::Limits::from_config(&cfg);
    let state: SharedState = Arc::new(AppState {
        limits,
        cfg,
        metrics,
        jobs,
        outbox,
        ready: OnceLock::new(),
    });
    tracing::info!(listen = %addr, auth = state.cfg.server.token.is_some(), "HTTP API listening");
    if state.cfg.server.token.is_none() && !state.cfg.server.listens_on_loopback() {
        tracing::warn!(
            listen = %addr,
            "server.allow_unauthenticated = true: the API is open to every client that can reach this address"
        );
    }

    // Job slots are started by the loader once the engine runs, and end
    // when `stop_jobs` turns true.
    let (stop_jobs, jobs_stopping) = tokio::sync::watch::channel(false);
    let slots = Arc::new(Mutex::new(Vec::new()));
    let loader = tokio::spawn(connect_then_load(
        Arc::clone(&state),
        outputs,
        shard,
        nats,
        (jobs_stopping, Arc::clone(&slots)),
    ));
    let ticker = tokio::spawn(housekeeping(Arc::clone(&state), storage_watch));

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = api::router(Arc::clone(&state));
    let serve_limits = serve::ServeLimits {
        header_timeout: Duration::from_secs(state.cfg.server.header_timeout_s),
        max_connections: state.cfg.server.max_connections,
    };
    let server = tokio::spawn(serve::serve(listener, app, serve_limits, async move {
        let _ = http_stopped.await;
    }));

    let mut result = Ok(());
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => tracing::info!("shutting down"),
        r = loader => {
            match r {
                Ok(Ok(())) => {
                    shutdown.await;
                    tracing::info!("shutting down");
                }
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(ServeError::crashed("model loader")(e)),
            }
        }
    }
    let _ = stop_http.send(());
    if tokio::time::timeout(HTTP_DRAIN, server).await.is_err() {
        tracing::warn!("HTTP requests still open after the drain period; closing them");
    }
    ticker.abort();
    stop_components(&state, &stop_jobs, &slots).await;
    // What is not delivered yet stays in the outbox for the next start.
    let _ = tokio::time::timeout(HTTP_DRAIN, delivery.shutdown()).await;
    for m in &mqtt {
        m.shutdown(Duration::from_secs(1)).await;
    }
    tracing::info!("stopped");
    result
}

/// Where `vigil serve` looks for a stream's saved drift baseline
/// (`drift.baseline_dir`, else `storage.dir/baselines`, then `<id>.json`).
pub fn baseline_path(cfg: &Config, stream: &str) -> std::path::PathBuf {
    streams::Monitoring::from_config(cfg).baseline_path(stream)
}

/// Checks what `vigil-core` cannot: each stream's zones and lines (their
/// types live in `vigil-events`) and its tracker overrides. Used by
/// `vigil config check` and at start.
pub fn check_config(cfg: &Config) -> Result<(), ServeError> {
    for s in &cfg.streams {
        streams::check_config_stream(s, &cfg.tracker)?;
    }
    Ok(())
}

/// The configured replica index of `[shard]` (see [`ShardConfig`]); the
/// hostname is read only when the index is not configured.
///
/// [`ShardConfig`]: vigil_core::config::ShardConfig
fn shard_index(cfg: &Config) -> Result<u32, ServeError> {
    let host = std::env::var("HOSTNAME").ok();
    let index = cfg.shard.resolve_index(host.as_deref())?;
    if cfg.shard.count > 1 {
        let mine = (0..cfg.streams.len())
            .filter(|&i| cfg.shard.owns(index, i))
            .count();
        tracing::info!(
            shard = index,
            of = cfg.shard.count,
            streams = mine,
            configured = cfg.streams.len(),
            "running this replica's share of the streams"
        );
    }
    Ok(index)
}

/// With the NATS backend, connects first (retrying until NATS answers; the
/// event publisher needs the connection), then loads the model.
/// Job slots and how to stop them: started by the loader, awaited at shutdown.
type Slots = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

/// With the NATS backend, connects first (retrying until NATS answers; the
/// event publisher needs the connection), then loads the model; with the
/// local one, starts the job slots on the engine.
async fn connect_then_load(
    st: SharedState,
    outputs: EventOutputs,
    shard: u32,
    nats: Option<Arc<Deferred>>,
    (stop, slots): (tokio::sync::watch::Receiver<bool>, Slots),
) -> Result<(), ServeError> {
    if let Some(nats) = &nats {
        let queue = connect_queue_retrying(&st.cfg, |e| nats.failed(e)).await;
        if let Some(sink) = &outputs.nats {
            sink.connect(queue.event_publisher().await?);
        }
        tracing::info!(url = %vigil_queue::mask_nats_url(st.cfg.queue.url.as_deref().unwrap_or_default()), "jobs go to NATS JetStream; `vigil worker` processes run them");
        nats.set(Arc::new(queue));
    }
    let st2 = Arc::clone(&st);
    let engine = tokio::task::spawn_blocking(move || load(&st2, outputs, shard))
        .await
        .map_err(ServeError::crashed("model loader"))??;
    if nats.is_none() {
        let runner = Arc::new(JobRunner {
            queue: Arc::clone(&st.jobs),
            engine,
            limits: st.cfg.jobs.clone(),
            tracker: st.cfg.tracker.clone(),
            metrics: Arc::clone(&st.metrics),
            worker: worker_name(),
            scratch: st.cfg.storage.dir.join("worker"),
        });
        *slots.lock().unwrap_or_else(|p| p.into_inner()) = runner.start(&stop);
    }
    Ok(())
}

/// `host/pid`: who runs a job, in its record.
pub(crate) fn worker_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}/{}", std::process::id())
}

/// First pause between NATS connection attempts at start-up; it doubles up
/// to [`NATS_RETRY_MAX`], so a NATS that comes up late is found within
/// seconds without the log being flooded.
const NATS_RETRY_FIRST: Duration = Duration::from_millis(500);
const NATS_RETRY_MAX: Duration = Duration::from_secs(10);

/// Connects to the NATS backend, retrying with backoff until it answers
/// (each failure logged and handed to `failed`, e.g. for `/readyz`). The
/// URL's scheme was checked with the config, so what is retried here is a
/// server that is down, starting or without JetStream yet. Cancel by
/// dropping the future (shutdown).
pub(crate) async fn connect_queue_retrying(
    cfg: &Config,
    failed: impl Fn(&str),
) -> vigil_queue::NatsQueue {
    let mut backoff = vigil_core::Backoff::new(NATS_RETRY_FIRST, NATS_RETRY_MAX);
    let mut attempt = 1u32;
    loop {
        match connect_queue(cfg).await {
            Ok(queue) => {
                if attempt > 1 {
                    tracing::info!(attempts = attempt, "connected to NATS");
                }
                return queue;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    attempt,
                    retry_in_s = delay.as_secs_f64(),
                    error = %e,
                    "NATS is not reachable yet; retrying"
                );
                failed(&e);
                tokio::time::sleep(delay).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

/// Connects to the NATS backend of `[queue]`, with the URL in any error.
pub(crate) async fn connect_queue(cfg: &Config) -> Result<vigil_queue::NatsQueue, String> {
    let url = cfg
        .queue
        .url
        .clone()
        .ok_or("queue.url is required when queue.backend = \"nats\"")?;
    vigil_queue::NatsQueue::connect(vigil_queue::NatsOptions {
        url,
        ack_wait: Duration::from_secs_f64(cfg.queue.ack_wait_s),
        max_deliver: cfg.queue.max_deliver,
        queue_size: cfg.jobs.queue_size,
        retention: Duration::from_secs(cfg.jobs.retention_hours.saturating_mul(3600)),
        connect_timeout: Duration::from_secs(5),
        events_retention: Duration::from_secs_f64(cfg.queue.events_retention_hours * 3600.0),
    })
    .await
    .map_err(|e| format!("queue.backend = \"nats\": {e}"))
}

/// The event outbox under `storage.dir`, delivering to the configured
/// webhooks, MQTT brokers and (with `queue.publish_events`) NATS.
fn open_outbox(
    cfg: &Config,
    metrics: &Metrics,
    mqtt: &[MqttSink],
    nats: Option<Arc<vigil_queue::NatsEventSink>>,
) -> Result<Outbox, ServeError> {
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    for (i, w) in cfg.webhooks.iter().enumerate() {
        let target = WebhookTarget {
            secret: w.secret.clone(),
            events: w.event_types(),
            ..WebhookTarget::new(w.url.clone())
        };
        let sink = WebhookSink::new(target)
            .map_err(|e| ServeError::Config(format!("webhooks[{i}]: {e}")))?;
        sinks.push(Arc::new(sink));
    }
    sinks.extend(
        mqtt.iter()
            .map(|m| Arc::new(m.clone()) as Arc<dyn EventSink>),
    );
    sinks.extend(nats.map(|n| n as Arc<dyn EventSink>));
    let path = cfg.storage.dir.join("events.sqlite3");
    Outbox::open_with_sinks(
        &path,
        sinks,
        OutboxConfig {
            metrics: Some(PromMetrics {
                deliveries_total: metrics.webhook_deliveries_total.clone(),
                event_deliveries_total: metrics.event_deliveries_total.clone(),
                outbox_pending: metrics.outbox_pending.clone(),
            }),
            ..OutboxConfig::default()
        },
    )
    .map_err(|source| ServeError::Outbox {
        path: path.clone(),
        source,
    })
}

/// Where event snapshots live (`storage.dir/snapshots`) and for how long;
/// the API reads them through the same store.
pub(crate) fn snapshot_store(cfg: &Config) -> SnapshotStore {
    SnapshotStore::new(
        cfg.storage.dir.join("snapshots"),
        Duration::from_secs_f64(cfg.events.snapshot_retention_hours * 3600.0),
    )
}

/// One connection per `[[mqtt]]` broker; they connect (and reconnect) in the
/// background, so an unreachable broker never delays the start.
fn start_mqtt(cfg: &Config) -> Vec<MqttSink> {
    cfg.mqtt
        .iter()
        .map(|m| {
            tracing::info!(broker = %format!("{}:{}", m.host, m.port), prefix = %m.topic_prefix, "publishing events over MQTT");
            let mut t = MqttTarget::new(m.host.clone(), m.port);
            if let Some(id) = &m.client_id {
                t.client_id.clone_from(id);
            }
            t.topic_prefix.clone_from(&m.topic_prefix);
            t.username.clone_from(&m.username);
            t.password.clone_from(&m.password);
            t.events = vigil_core::config::event_types(&m.events);
            t.discovery = m.discovery;
            t.discovery_prefix.clone_from(&m.discovery_prefix);
            MqttSink::start(t)
        })
        .collect()
}

/// Loads and warms the model, starts the engine and the configured streams
/// (those of replica `shard`); then the daemon is ready.
fn load(st: &AppState, outputs: EventOutputs, shard: u32) -> Result<Arc<Engine>, ServeError> {
    let (engine, backend) = start_engine(&st.cfg)?;
    st.metrics.set_model_info(
        &backend.runtime,
        backend.device.as_str(),
        backend.precision.as_str(),
    );
    let device = backend.device.to_string();
    let model = st.cfg.model.path.display().to_string();
    // The stream registry shares the job database (WAL; one connection each).
    let registry_path = st.cfg.storage.dir.join("jobs.sqlite3");
    let registry =
        streams::Registry::open(&registry_path).map_err(|source| ServeError::Registry {
            path: registry_path.clone(),
            source,
        })?;
    let streams = Arc::new(
        Streams::new(
            Arc::clone(&engine),
            st.cfg.tracker.clone(),
            Arc::clone(&st.metrics),
            outputs,
            registry,
        )
        // Drift and camera-health monitoring ([drift], [health]).
        .with_monitoring(streams::Monitoring::from_config(&st.cfg))
        // What API clients may open, and how many streams at most.
        .with_limits(&st.cfg.server),
    );
    let owned: Vec<_> = st
        .cfg
        .streams
        .iter()
        .enumerate()
        .filter(|(i, _)| st.cfg.shard.owns(shard, *i))
        .map(|(_, s)| s.clone())
        .collect();
    // Config streams are merged into the registry; what it holds then runs.
    streams.restore(&owned)?;
    tracing::info!(
        device = %device,
        precision = %backend.precision,
        backend = %backend.runtime,
        model = %model,
        "ready"
    );
    let _ = st.ready.set(Ready {
        detector: Arc::clone(&engine) as Arc<dyn state::ImageDetector>,
        streams,
        device,
        precision: backend.precision.to_string(),
        backend: backend.runtime.clone(),
        model,
    });
    Ok(engine)
}

/// Loads and warms the model and starts the shared batched engine; returns
/// it with how inference actually runs (`auto` resolved).
pub(crate) fn start_engine(
    cfg: &Config,
) -> Result<(Arc<Engine>, vigil_detect::Backend), ServeError> {
    let (engine, backend) = Engine::load(
        &cfg.model,
        EngineConfig {
            batch: cfg.batch.clone(),
            jobs_priority: cfg.jobs.priority,
            ..EngineConfig::default()
        },
    )
    .map_err(|e| {
        ServeError::Model(match e {
            vigil_detect::DetectError::Inference(m) => format!("model warm-up failed: {m}"),
            e => e.to_string(),
        })
    })?;
    Ok((Arc::new(engine), backend))
}

/// Once a second: stream rates and frame counters; once a minute: the job
/// retention sweep and the expired event snapshots.
async fn housekeeping(st: SharedState, storage: Arc<storage::StorageWatch>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_sweep = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        check_storage(&st, &storage).await;
        if let Some(r) = st.ready.get() {
            r.streams.sample();
        }
        // The queue's own bookkeeping; a shared queue's finished jobs are
        // counted by the workers that finish them, not here.
        if st.jobs.not_ready().is_none() {
            if let Ok(c) = st.jobs.counts().await {
                st.metrics.show_job_counts(&c);
            }
        }
        if tokio::time::Instant::now() >= next_sweep {
            next_sweep += SWEEP_EVERY;
            // NATS expires records and files itself (bucket max_age).
            if st.jobs.sweep().await > 0 {
                if let Ok(c) = st.jobs.counts().await {
                    st.metrics.show_job_counts(&c);
                }
            }
            if st.cfg.events.snapshots {
                let store = snapshot_store(&st.cfg);
                let _ =
                    tokio::task::spawn_blocking(move || store.sweep(std::time::SystemTime::now()))
                        .await;
            }
        }
    }
}

/// Raises `storage.low` / `storage.ok` when free space crosses the floor:
/// the event goes through the outbox like any other, and the gauge follows.
async fn check_storage(st: &SharedState, storage: &Arc<storage::StorageWatch>) {
    let w = Arc::clone(storage);
    let Ok(Some(change)) = tokio::task::spawn_blocking(move || w.check()).await else {
        return;
    };
    let event = storage.event(change);
    match change {
        storage::Change::Low { free } => {
            st.metrics.storage_low.set(1);
            tracing::warn!(
                free_mb = free / (1024 * 1024),
                min_free_mb = st.cfg.storage.min_free_mb,
                "free space below storage.min_free_mb: snapshots paused, uploads refused (507)"
            );
        }
        storage::Change::Ok { free } => {
            st.metrics.storage_low.set(0);
            tracing::info!(
                free_mb = free / (1024 * 1024),
                "free space recovered: snapshots resume"
            );
        }
    }
    let outbox = st.outbox.clone();
    let kind = event.kind;
    let stored = tokio::task::spawn_blocking(move || outbox.append(std::slice::from_ref(&event)))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    match stored {
        Ok(()) => st
            .metrics
            .events_total
            .with_label_values(&[kind.as_str()])
            .inc(),
        Err(e) => {
            st.metrics.events_lost_total.inc();
            tracing::error!(event = kind.as_str(), error = %e, "cannot write the storage event to the outbox");
        }
    }
}

/// Stops streams (in-flight frames drain), gives running jobs back to the
/// queue (local ones run again at the next start), and waits a bounded
/// time for the job slots.
async fn stop_components(
    st: &SharedState,
    stop_jobs: &tokio::sync::watch::Sender<bool>,
    slots: &Slots,
) {
    let _ = stop_jobs.send(true);
    let st2 = Arc::clone(st);
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(r) = st2.ready.get() {
            r.streams.shutdown(STREAM_DRAIN);
        }
    })
    .await;
    let slots = std::mem::take(&mut *slots.lock().unwrap_or_else(|p| p.into_inner()));
    let all = futures_util::future::join_all(slots);
    if tokio::time::timeout(JOB_DRAIN, all).await.is_err() {
        tracing::warn!("a job worker did not stop in time");
    }
}
