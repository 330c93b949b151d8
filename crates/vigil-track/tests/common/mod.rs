//! Helpers shared by the integration tests: detections and a tiny seeded PRNG
//! (so scenes are reproducible without a `rand` dependency).
#![allow(dead_code)]

use vigil_core::config::TrackerConfig;
use vigil_core::{BBox, Detection, Track};
use vigil_track::ByteTracker;

pub fn det(x: f32, y: f32, w: f32, h: f32, score: f32) -> Detection {
    det_class(0, x, y, w, h, score)
}

pub fn det_class(class_id: u32, x: f32, y: f32, w: f32, h: f32, score: f32) -> Detection {
    Detection {
        class_id,
        label: format!("class{class_id}"),
        score,
        bbox: BBox::from_xywh(x, y, w, h),
        track_id: None,
    }
}

pub fn tracker(cfg: TrackerConfig) -> ByteTracker {
    ByteTracker::new(cfg, 30.0).expect("valid config")
}

/// Config that lets low-score boxes reach the tracker, as a user who lowers
/// `model.conf` would; defaults otherwise.
pub fn raw_cfg() -> TrackerConfig {
    TrackerConfig {
        smooth: false,
        ..TrackerConfig::default()
    }
}

/// The output track whose box is exactly `d`'s (valid with `smooth = false`).
pub fn track_on<'a>(tracks: &'a [Track], d: &Detection) -> Option<&'a Track> {
    tracks.iter().find(|t| t.bbox == d.bbox)
}

/// SplitMix64: small, fast, good enough for test scenes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.range(0.0, 1.0) < p
    }
}
