//! The event body of the contract.

use serde::{Deserialize, Serialize};
pub use vigil_core::EventType;
use vigil_core::{BBox, StreamId, TrackId};

/// Which way a line was crossed; see [`crate::LineConfig`] for the convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the left of a→b to its right (image coordinates).
    In,
    /// From the right of a→b to its left.
    Out,
}

/// One event, exactly as it is POSTed and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// UUID v4; receivers deduplicate on it (delivery is at-least-once).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub stream: StreamId,
    /// Wall-clock capture time of the frame, RFC 3339 UTC.
    pub at: String,
    pub pts_ms: f64,
    /// The track the event is about; absent for stream-level events
    /// (`drift.detected`, `camera.anomaly`), as are `label`, `score`, `bbox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<TrackId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BBox>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// `/v1/events/<id>/snapshot.jpg`: the annotated frame of the event, kept
    /// for `events.snapshot_retention_hours` (absent when snapshots are off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_url: Option<String>,
    /// Fields of stream-level events (e.g. `feature`, `psi`, `threshold` for
    /// drift; `anomaly`, `duration_s`, `value` for camera anomalies), at the
    /// top level of the body.
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// A new event about a stream (or the daemon) rather than a track: no
    /// track fields, `extra` at the top level of the body, a fresh UUID, and
    /// `at` as RFC 3339 UTC with milliseconds.
    pub fn stream_level(
        kind: EventType,
        stream: &str,
        at: std::time::SystemTime,
        pts_ms: f64,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            stream: StreamId(stream.to_string()),
            at: humantime::format_rfc3339_millis(at).to_string(),
            pts_ms,
            track_id: None,
            label: None,
            score: None,
            bbox: None,
            zone: None,
            line: None,
            direction: None,
            snapshot_url: None,
            extra,
        }
    }
}
