//! The event body of the contract.

use serde::{Deserialize, Serialize};
use vigil_core::{BBox, StreamId, TrackId};

/// Event types this crate generates (the contract names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "track.started")]
    TrackStarted,
    #[serde(rename = "track.ended")]
    TrackEnded,
    #[serde(rename = "zone.entered")]
    ZoneEntered,
    #[serde(rename = "zone.left")]
    ZoneLeft,
    #[serde(rename = "line.crossed")]
    LineCrossed,
}

impl EventType {
    /// The wire name, also used as the `type` metric label and webhook filter.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TrackStarted => "track.started",
            EventType::TrackEnded => "track.ended",
            EventType::ZoneEntered => "zone.entered",
            EventType::ZoneLeft => "zone.left",
            EventType::LineCrossed => "line.crossed",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub track_id: TrackId,
    pub label: String,
    pub score: f32,
    pub bbox: BBox,
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
}
