use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[tracker]`: ByteTrack (Zhang et al., ECCV 2022) thresholds and options.
///
/// Defaults follow Ultralytics' `bytetrack.yaml`, not the paper's MOT17
/// settings, because vigil runs the same YOLO family Ultralytics tuned those
/// for: COCO-trained YOLO nano models score many true objects between 0.25 and
/// 0.5, so the reference's `track_thresh = 0.5` / `det_thresh = 0.6` (tuned for
/// a YOLOX-X trained on MOT17 pedestrians) would never start tracks for them.
///
/// Interaction with `[model] conf` (default 0.25): the detector drops every box
/// below `model.conf` before the tracker sees it, so ByteTrack's second
/// association (detections with `low_thresh < score <= high_thresh`) only has
/// input when `model.conf` is below `high_thresh`. With the defaults the low
/// band (0.1, 0.25] is empty; to get ByteTrack's "keep tracks alive through
/// low-confidence frames" behaviour, lower `model.conf` to about `low_thresh`
/// (e.g. `0.1`). Low-score boxes then feed only existing tracks: they never
/// start one (`new_track_thresh`) and are never output unless matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Detections scoring above this take part in the first association and
    /// may start tracks. Default 0.25 (Ultralytics `track_high_thresh`; the
    /// reference's `track_thresh` is 0.5, see the type's docs for why not).
    pub high_thresh: f32,
    /// Detections scoring above this (and at most `high_thresh`) are used only
    /// to extend existing tracks in the second association; below it they are
    /// ignored. Default 0.1 (the reference hard-codes 0.1; Ultralytics
    /// `track_low_thresh` 0.1).
    pub low_thresh: f32,
    /// Least score for an unmatched high detection to start a new track, so a
    /// flickering weak false positive never becomes one. Default 0.25
    /// (Ultralytics `new_track_thresh`; the reference uses
    /// `track_thresh + 0.1` = 0.6). Values below `high_thresh` act as
    /// `high_thresh`, since only high detections start tracks.
    pub new_track_thresh: f32,
    /// Largest assignment cost (1 − IoU, or 1 − IoU × score with
    /// `fuse_score`) accepted in the first association. Default 0.8 (paper,
    /// reference and Ultralytics agree): a match needs a fused similarity of at
    /// least 0.2.
    pub match_thresh: f32,
    /// Frames (at 30 fps; scaled by the stream's frame rate) a lost track is
    /// kept for re-identification before it is ended. Default 30 (reference,
    /// Ultralytics, supervision): one second, long enough to bridge a short
    /// occlusion, short enough that the constant-velocity prediction is still
    /// near the object.
    pub track_buffer: u32,
    /// Multiply IoU by the detection score in the high-score associations
    /// (the reference's `fuse_score`, on unless `mot20`), so a confident box
    /// wins over a weak one at equal overlap. Default true (reference,
    /// Ultralytics `fuse_score: True`).
    pub fuse_score: bool,
    /// Report the Kalman-filtered box instead of the raw matched detection:
    /// steadier boxes for drawing and zone/line events at the cost of a little
    /// lag. Default true. vigil's own choice (the reference outputs the
    /// filtered box too).
    pub smooth: bool,
    /// Only match tracks and detections of the same class. Default false
    /// (reference and Ultralytics are class-agnostic): detectors often flip
    /// between similar classes (car/truck) on one object, and class-agnostic
    /// matching keeps its id; the track's class is then a score-weighted
    /// majority vote over its matches.
    pub per_class: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            high_thresh: 0.25,
            low_thresh: 0.1,
            new_track_thresh: 0.25,
            match_thresh: 0.8,
            track_buffer: 30,
            fuse_score: true,
            smooth: true,
            per_class: false,
        }
    }
}

/// Longest lost-track buffer accepted. IoU-only re-identification after
/// minutes of constant-velocity prediction is meaningless, and the number of
/// lost tracks held grows with the buffer.
const MAX_TRACK_BUFFER: u32 = 10_000;

impl TrackerConfig {
    /// Checks ranges and the ordering of the thresholds, naming each bad key.
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        for (key, v) in [
            ("tracker.high_thresh", self.high_thresh),
            ("tracker.low_thresh", self.low_thresh),
            ("tracker.new_track_thresh", self.new_track_thresh),
            ("tracker.match_thresh", self.match_thresh),
        ] {
            if !(0.0..=1.0).contains(&v) {
                e.push(InvalidValue::new(
                    key,
                    format!("must be within 0..1, got {v}"),
                ));
            }
        }
        if self.low_thresh > self.high_thresh {
            e.push(InvalidValue::new(
                "tracker.low_thresh",
                format!(
                    "must not exceed tracker.high_thresh ({}), got {}",
                    self.high_thresh, self.low_thresh
                ),
            ));
        }
        if self.track_buffer > MAX_TRACK_BUFFER {
            e.push(InvalidValue::new(
                "tracker.track_buffer",
                format!(
                    "must be at most {MAX_TRACK_BUFFER} frames, got {}",
                    self.track_buffer
                ),
            ));
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(TrackerConfig::default().validate().is_empty());
    }

    #[test]
    fn bad_values_are_named() {
        let c = TrackerConfig {
            high_thresh: 0.2,
            low_thresh: 0.3,
            match_thresh: f32::NAN,
            track_buffer: 1_000_000,
            ..TrackerConfig::default()
        };
        let keys: Vec<_> = c.validate().into_iter().map(|e| e.key).collect();
        assert_eq!(
            keys,
            [
                "tracker.match_thresh",
                "tracker.low_thresh",
                "tracker.track_buffer"
            ]
        );
    }
}
