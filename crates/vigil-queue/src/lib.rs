//! The scale-out backbone: uploaded-video jobs, their files and their status
//! over NATS JetStream, so any number of API nodes and `vigil worker`
//! processes on any machines share one queue.
//!
//! What lives where (all created on first use, idempotently):
//! - **Object Store `vigil-videos`**: the upload as `<job>/input`; results as
//!   `<job>/<attempt>/video.mp4` and `<job>/<attempt>/detections.jsonl`.
//! - **KV bucket `vigil-jobs`**: one [`JobRecord`] per job, read by every API
//!   node. Every write is a compare-and-set on the key's revision; that is
//!   what makes a job complete at most once (see [`Claim`]).
//! - **Stream `VIGIL_JOBS`** (work-queue retention, subject `vigil.jobs`):
//!   one message per job, pulled by the durable consumer `vigil-workers`.
//!   A worker that stops reporting progress for `ack_wait` loses the message
//!   to another worker (JetStream redelivery).
//! - **Stream `VIGIL_EVENTS`** (subjects `vigil.events.>`): every detection
//!   event, for downstream consumers ([`EventPublisher`]).
//!
//! This crate knows nothing about video or models: it moves bytes and
//! records; the server and the worker decide what a job does. [`NatsQueue`]
//! implements [`vigil_jobs::JobQueue`], the one interface the HTTP handlers
//! and the worker loop use.

mod events;
mod jobs;
mod queue;
mod record;

pub use events::{event_subject, EventPublisher, NatsEventSink};
pub use queue::{
    mask_nats_url, Claim, ClaimOutcome, Delivery, NatsOptions, NatsQueue, QueueCounts,
};
pub use vigil_jobs::{JobRecord, JobStatus, SubmitError};

/// Any failure talking to NATS, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("NATS {what}: {reason}")]
pub struct QueueError {
    pub what: String,
    pub reason: String,
}

impl QueueError {
    pub(crate) fn new(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// `map_err` helper: `.map_err(ctx("kv get"))`.
pub(crate) fn ctx<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> QueueError {
    move |e| QueueError::new(what, e)
}
