//! What the handlers share.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use vigil_core::config::Config;
use vigil_pipeline::Engine;

use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::streams::Streams;

/// Exists once the model is loaded and warmed up (what `/readyz` reports).
pub struct Ready {
    pub engine: Arc<Engine>,
    pub streams: Arc<Streams>,
    /// The device inference actually runs on (`auto` resolved).
    pub device: String,
    /// `fp32`, `bf16`, `fp16` or `int8` (`auto` resolved).
    pub precision: String,
    /// `onnxruntime-<version>` of the loaded library.
    pub backend: String,
    pub model: String,
}

/// Where uploaded-video jobs go (`[queue] backend`).
pub enum JobBackend {
    /// SQLite + local disk; this daemon's own workers run them.
    Local(Arc<Jobs>),
    /// NATS JetStream; `vigil worker` processes run them.
    Nats(NatsJobs),
}

/// The NATS job queue, connected in the background: a daemon started before
/// its NATS server (a reboot, a compose file without ordering) keeps
/// retrying instead of exiting, and says why it is not ready meanwhile.
pub struct NatsJobs {
    url: String,
    queue: OnceLock<vigil_queue::JobQueue>,
    waiting: Mutex<Option<String>>,
}

impl NatsJobs {
    pub fn new(url: &str) -> Self {
        Self {
            // Shown in /readyz and 503 answers: never the credentials.
            url: vigil_queue::mask_nats_url(url),
            queue: OnceLock::new(),
            waiting: Mutex::new(None),
        }
    }

    /// The queue once connected.
    pub fn get(&self) -> Option<&vigil_queue::JobQueue> {
        self.queue.get()
    }

    /// The queue, or 503 naming the server and the last connection error.
    pub fn queue(&self) -> Result<&vigil_queue::JobQueue, crate::error::ApiError> {
        self.queue
            .get()
            .ok_or_else(|| crate::error::ApiError::Unavailable(self.not_connected()))
    }

    pub fn set(&self, queue: vigil_queue::JobQueue) {
        let _ = self.queue.set(queue);
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Records why the last connection attempt failed (for `/readyz`).
    pub fn failed(&self, error: &str) {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
    }

    /// Why the queue is not usable yet, for `/readyz` and 503 answers.
    pub fn not_connected(&self) -> String {
        match &*self.waiting.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => format!(
                "waiting for the job queue (NATS at {}); retrying: {e}",
                self.url
            ),
            None => format!("connecting to the job queue (NATS at {})", self.url),
        }
    }
}

pub struct AppState {
    pub cfg: Config,
    pub metrics: Arc<Metrics>,
    pub jobs: JobBackend,
    /// Durable event store and webhook delivery state (`/v1/events`).
    pub outbox: vigil_events::Outbox,
    pub ready: OnceLock<Ready>,
    pub workers: Mutex<Vec<JoinHandle<()>>>,
    /// Per-client and per-route bounds (body pace, uploads in flight,
    /// `/v1/detect` concurrency, free-space floor).
    pub limits: crate::limits::Limits,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn ready(&self) -> Result<&Ready, crate::error::ApiError> {
        self.ready.get().ok_or_else(|| {
            crate::error::ApiError::Unavailable("the model is still loading; retry shortly".into())
        })
    }
}
