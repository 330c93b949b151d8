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
    Nats(vigil_queue::JobQueue),
}

pub struct AppState {
    pub cfg: Config,
    pub metrics: Arc<Metrics>,
    pub jobs: JobBackend,
    /// Durable event store and webhook delivery state (`/v1/events`).
    pub outbox: vigil_events::Outbox,
    pub ready: OnceLock<Ready>,
    pub workers: Mutex<Vec<JoinHandle<()>>>,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn ready(&self) -> Result<&Ready, crate::error::ApiError> {
        self.ready.get().ok_or_else(|| {
            crate::error::ApiError::Unavailable("the model is still loading; retry shortly".into())
        })
    }
}
