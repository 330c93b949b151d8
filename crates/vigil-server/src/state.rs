//! What the handlers share.

use std::sync::{Arc, OnceLock};

use vigil_core::config::{Config, StreamConfig};
use vigil_core::{Detection, ImageBgr};
use vigil_pipeline::Engine;

use crate::metrics::Metrics;
use crate::streams::{
    BaselineSaved, LiveFeed, LiveRules, StreamDetail, StreamError, StreamView, Streams,
};

/// Exists once the model is loaded and warmed up (what `/readyz` reports).
pub struct Ready {
    /// `/v1/detect`'s way to the model (the shared engine in the daemon).
    pub detector: Arc<dyn ImageDetector>,
    /// The camera streams (`Streams` in the daemon).
    pub streams: Arc<dyn StreamService>,
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
    pub limits: crate::api::limits::Limits,
}

pub type SharedState = Arc<AppState>;

/// Why one image could not be run through the model.
#[derive(Debug, thiserror::Error)]
#[error("inference failed: {0}")]
pub struct DetectFailed(pub String);

/// Detection on one decoded image, batched with whatever else runs. A trait
/// so the HTTP edge runs in process with a fake, and a second inference
/// back end plugs in without touching the handlers.
pub trait ImageDetector: Send + Sync {
    /// Blocks until the image's detections are ready (call it off the
    /// async workers).
    fn detect_image(&self, image: ImageBgr) -> Result<Vec<Detection>, DetectFailed>;

    /// The model's input (width, height): an upload larger than it needs
    /// is decoded smaller (see `vigil_detect::image_io::decode_upload`).
    fn input_size(&self) -> (u32, u32);
}

impl ImageDetector for Engine {
    fn detect_image(&self, image: ImageBgr) -> Result<Vec<Detection>, DetectFailed> {
        Engine::detect_image(self, image).map_err(|e| DetectFailed(e.to_string()))
    }

    fn input_size(&self) -> (u32, u32) {
        Engine::input_size(self)
    }
}

/// A stream's latest processed frame with its objects.
pub type LatestFrame = (Arc<ImageBgr>, Vec<Detection>);

/// The camera streams as the HTTP edge and the daemon's housekeeping use
/// them. A trait so the router runs in process over a fake, without an
/// engine; the daemon's [`Streams`] is the one real implementation.
pub trait StreamService: Send + Sync {
    fn list(&self) -> Vec<StreamView>;
    fn detail(&self, id: &str) -> Result<StreamDetail, StreamError>;
    /// Blocking (starts the stream): call off the async workers.
    fn add(&self, cfg: StreamConfig) -> Result<StreamDetail, StreamError>;
    /// Blocking (may restart the stream).
    fn patch(
        &self,
        id: &str,
        merge: &serde_json::Value,
        if_match: Option<&str>,
    ) -> Result<StreamDetail, StreamError>;
    /// Blocking (drains the stream).
    fn remove(&self, id: &str) -> Result<(), StreamError>;
    fn save_baseline(&self, id: &str) -> Result<BaselineSaved, StreamError>;
    /// The latest processed frame and its objects; `None` before the first.
    fn latest(&self, id: &str) -> Result<Option<LatestFrame>, StreamError>;
    fn live(&self, id: &str) -> Result<(Arc<LiveFeed>, LiveRules), StreamError>;
    /// The 1 s sampler: rates, blocked flags, frame counters.
    fn sample(&self);
    /// Stops every stream, draining for at most `deadline`.
    fn shutdown(&self, deadline: std::time::Duration);
}

impl StreamService for Streams {
    fn list(&self) -> Vec<StreamView> {
        Streams::list(self)
    }
    fn detail(&self, id: &str) -> Result<StreamDetail, StreamError> {
        Streams::detail(self, id)
    }
    fn add(&self, cfg: StreamConfig) -> Result<StreamDetail, StreamError> {
        Streams::add(self, cfg)
    }
    fn patch(
        &self,
        id: &str,
        merge: &serde_json::Value,
        if_match: Option<&str>,
    ) -> Result<StreamDetail, StreamError> {
        Streams::patch(self, id, merge, if_match)
    }
    fn remove(&self, id: &str) -> Result<(), StreamError> {
        Streams::remove(self, id)
    }
    fn save_baseline(&self, id: &str) -> Result<BaselineSaved, StreamError> {
        Streams::save_baseline(self, id)
    }
    fn latest(&self, id: &str) -> Result<Option<LatestFrame>, StreamError> {
        Streams::latest(self, id)
    }
    fn live(&self, id: &str) -> Result<(Arc<LiveFeed>, LiveRules), StreamError> {
        Streams::live(self, id)
    }
    fn sample(&self) {
        Streams::sample(self);
    }
    fn shutdown(&self, deadline: std::time::Duration) {
        Streams::shutdown(self, deadline);
    }
}

/// What `/readyz` reports.
pub enum ReadyState {
    Ready {
        device: String,
        precision: String,
        backend: String,
        /// The model's file name (never its path); the worker omits it.
        model: Option<String>,
    },
    /// Not ready yet, and why.
    Waiting(String),
}

/// Where the ops routes learn readiness: the daemon's state, or a worker's.
pub trait Probe: Send + Sync {
    fn readiness(&self) -> ReadyState;
}

impl Probe for AppState {
    fn readiness(&self) -> ReadyState {
        match self.ready.get() {
            Some(r) => ReadyState::Ready {
                device: r.device.clone(),
                precision: r.precision.clone(),
                backend: r.backend.clone(),
                // The file name only: an open route must not reveal server paths.
                model: Some(
                    std::path::Path::new(&r.model)
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                ),
            },
            None => ReadyState::Waiting(
                self.jobs
                    .not_ready()
                    .unwrap_or_else(|| "loading the model".to_string()),
            ),
        }
    }
}
