//! Watching the pipeline's output for trouble that is not an error:
//!
//! - **model drift** ([`DriftMonitor`]): the Population Stability Index of a
//!   stream's class mix and confidence histogram over a sliding window against
//!   a baseline, raising `drift.detected` when the scene or the model's view
//!   of it has shifted;
//! - **camera health** ([`HealthMonitor`], [`DecodeErrorWatch`]): frozen,
//!   black and blown-out pictures and decode errors, raising `camera.anomaly`.
//!
//! Pure computation over plain values (detections, pixel buffers, counters):
//! no video or ONNX dependency, so it is cheap to test and to reuse. The
//! caller owns one monitor per stream, feeds it in frame order, and decides
//! where the returned [`MonitorEvent`]s go (logs, metrics, the event outbox).

mod drift;
mod health;
mod psi;

use std::time::SystemTime;

use serde::Serialize;

pub use drift::{Baseline, BaselineError, DriftMonitor, DriftParams, Feature, CONFIDENCE_BINS};
pub use health::{AnomalyKind, DecodeErrorWatch, HealthMonitor, HealthParams, Thumbnail};
pub use psi::{psi, PSI_EPSILON};

pub use vigil_core::EventType;

/// One alert, as plain data: the daemon logs it, counts it in
/// `vigil_events_total{type}`, and can later route it into the event outbox
/// (same `type`/`stream`/`at`/`pts_ms` fields as track events).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorEvent {
    /// [`EventType::DriftDetected`] or [`EventType::CameraAnomaly`].
    pub kind: EventType,
    pub stream: String,
    /// Wall-clock time of the frame (or sample) that raised it.
    pub at: SystemTime,
    /// Presentation time of that frame; `None` for decode errors, which are
    /// not tied to a decoded frame.
    pub pts_ms: Option<f64>,
    pub detail: Detail,
}

/// What an event is about; serialises to the event body's extra fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    Drift {
        feature: Feature,
        psi: f64,
        threshold: f64,
    },
    Camera {
        kind: AnomalyKind,
        /// How long the condition had lasted when reported (seconds of
        /// stream time); 0 for decode errors.
        duration_s: f64,
        /// The measured value: mean luma, thumbnail difference, or the
        /// decode-error count.
        value: f64,
    },
}
