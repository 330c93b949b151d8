//! The event type: one enum from the generator to the config filters, the
//! monitors, the sinks and the API; its wire names appear only at the
//! serde, SQL, topic/subject and metric-label edges.

use serde::{Deserialize, Serialize};

/// Every event type vigil raises (the contract names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// The model's output distribution moved away from its baseline
    /// (raised by the drift monitor; no track fields).
    #[serde(rename = "drift.detected")]
    DriftDetected,
    /// Frozen, black or blown-out video, or decode errors (no track fields).
    #[serde(rename = "camera.anomaly")]
    CameraAnomaly,
    /// Free space under `storage.dir` fell below `storage.min_free_mb`:
    /// snapshots pause (daemon-level: `stream` is `_system`, no track fields).
    #[serde(rename = "storage.low")]
    StorageLow,
    /// Free space is back above the floor (with a margin): snapshots resume.
    #[serde(rename = "storage.ok")]
    StorageOk,
}

impl EventType {
    /// Every type, in the contract's order (filters list them in errors,
    /// metrics pre-create one series each).
    pub const ALL: [EventType; 9] = [
        EventType::TrackStarted,
        EventType::TrackEnded,
        EventType::ZoneEntered,
        EventType::ZoneLeft,
        EventType::LineCrossed,
        EventType::DriftDetected,
        EventType::CameraAnomaly,
        EventType::StorageLow,
        EventType::StorageOk,
    ];

    /// The wire name, also the `type` metric label, the MQTT topic's and
    /// NATS subject's last level, and what config filters list.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TrackStarted => "track.started",
            EventType::TrackEnded => "track.ended",
            EventType::ZoneEntered => "zone.entered",
            EventType::ZoneLeft => "zone.left",
            EventType::LineCrossed => "line.crossed",
            EventType::DriftDetected => "drift.detected",
            EventType::CameraAnomaly => "camera.anomaly",
            EventType::StorageLow => "storage.low",
            EventType::StorageOk => "storage.ok",
        }
    }

    /// The wire names joined for an error message.
    pub fn names() -> String {
        Self::ALL.map(EventType::as_str).join(", ")
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an event type; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?} (expected one of {names})", names = EventType::names())]
pub struct UnknownEventType(pub String);

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for t in EventType::ALL {
            let json = serde_json::to_string(&t).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
        }
        let err = "zone.exited"
            .parse::<EventType>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown event type \"zone.exited\" (expected one of track.started, track.ended, zone.entered, zone.left, line.crossed, drift.detected, camera.anomaly, storage.low, storage.ok)")
        );
    }
}
