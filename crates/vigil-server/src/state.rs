//! What the handlers share.

use std::sync::{Arc, OnceLock};

use vigil_core::config::Config;
use vigil_pipeline::Engine;

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

pub struct AppState {
    pub cfg: Config,
    pub metrics: Arc<Metrics>,
    /// Where uploaded-video jobs go (`[queue] backend`): local SQLite, or
    /// NATS JetStream connected in the background. Handlers see only the trait.
    pub jobs: Arc<dyn vigil_jobs::JobQueue>,
    /// Durable event store and webhook delivery state (`/v1/events`).
    pub outbox: vigil_events::Outbox,
    pub ready: OnceLock<Ready>,
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
