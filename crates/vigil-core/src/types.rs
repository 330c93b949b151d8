use serde::{Deserialize, Serialize};

use crate::BBox;

/// Index of a class in the model's label list (COCO-80 order by default).
pub type ClassId = u32;

/// A track id: positive, stable for the life of a track, never reused within a stream.
pub type TrackId = u64;

/// Zero-based index of a frame within its source, counting every decoded frame
/// (skipped ones included), so JSON lines can be matched back to the video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FrameIndex(pub u64);

/// Presentation time in milliseconds from the start of the source. A newtype so
/// it is never confused with a frame index or a wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct PtsMs(pub f64);

/// Identifies a stream (camera or job) in metrics, events and the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(pub String);

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One detected object, in the contract's JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub class_id: ClassId,
    pub label: String,
    pub score: f32,
    pub bbox: BBox,
    /// Present only when tracking is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<TrackId>,
}

/// A confirmed track as the tracker reports it after a frame.
///
/// `bbox` is the Kalman-smoothed box or the matched detection, depending on
/// `tracker.smooth`; `matched` tells whether a detection supported the track in
/// this very frame (false while the track coasts on prediction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub id: TrackId,
    pub class_id: ClassId,
    pub label: String,
    pub score: f32,
    pub bbox: BBox,
    pub matched: bool,
    /// Frames since the track was started.
    pub age: u64,
}

impl Track {
    /// The track as a contract detection object (with `track_id`).
    pub fn to_detection(&self) -> Detection {
        Detection {
            class_id: self.class_id,
            label: self.label.clone(),
            score: self.score,
            bbox: self.bbox,
            track_id: Some(self.id),
        }
    }
}

/// A decoded frame on its way through the pipeline.
///
/// The image is behind an `Arc` so the annotated-output writer and the
/// detector can hold the same pixels without copying them.
#[derive(Debug, Clone)]
pub struct Frame {
    pub stream: StreamId,
    pub index: FrameIndex,
    pub pts: PtsMs,
    /// Wall-clock time the decoder grabbed the frame (reported in events).
    pub captured_at: std::time::SystemTime,
    /// Monotonic twin of `captured_at`: the start of end-to-end latency.
    pub captured: std::time::Instant,
    pub image: std::sync::Arc<crate::ImageBgr>,
}
