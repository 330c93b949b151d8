use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[streams.motion]`: motion gating of one stream.
///
/// Most cameras show an empty or unchanging scene most of the day. A cheap
/// change detector on a small grey copy of each selected frame decides
/// whether the detector runs at all; objects that stay put (a parked car, a
/// seated person) become *stationary* and are re-checked periodically
/// instead of on every frame, as NVR users expect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MotionConfig {
    /// Gate the detector on motion. On by default for camera streams
    /// (uploaded-video jobs never gate: every selected frame is detected).
    pub enabled: bool,
    /// Least change of a cell's mean luma (0–255), after the frame's
    /// overall brightness change is compensated, that counts as motion: the
    /// noise floor. Raised automatically on noisier pictures.
    pub threshold: f64,
    /// Least connected changed area, as a fraction of the frame (0.003 =
    /// 0.3 %), that counts as motion: smaller changes (a camera's own
    /// timestamp digits, rain drops) are ignored unless they touch a
    /// stationary object.
    pub min_area: f64,
    /// A tracked object whose box has not moved for this long is
    /// stationary: it no longer keeps the detector busy. Short on purpose:
    /// anything that moves again wakes the detector through the change
    /// detector, so this only decides how long a settled object is watched
    /// frame by frame.
    pub stationary_after_s: f64,
    /// While nothing moves, the detector still runs on one frame this often
    /// (check frames keep stationary tracks alive and catch what a change
    /// detector cannot see).
    pub check_every_s: f64,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 12.0,
            min_area: 0.003,
            stationary_after_s: 3.0,
            check_every_s: 5.0,
        }
    }
}

impl MotionConfig {
    /// `key` names the section in errors, e.g. `streams[0].motion`.
    pub fn validate(&self, key: &str) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        let bad = |field: &str, reason: String| InvalidValue::new(format!("{key}.{field}"), reason);
        if !(self.threshold.is_finite() && self.threshold > 0.0 && self.threshold <= 255.0) {
            e.push(bad(
                "threshold",
                format!(
                    "must be within (0, 255] luma levels, got {}",
                    self.threshold
                ),
            ));
        }
        if !(self.min_area.is_finite() && self.min_area > 0.0 && self.min_area <= 1.0) {
            e.push(bad(
                "min_area",
                format!(
                    "must be a fraction of the frame within (0, 1], got {}",
                    self.min_area
                ),
            ));
        }
        for (field, v) in [
            ("stationary_after_s", self.stationary_after_s),
            ("check_every_s", self.check_every_s),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                e.push(bad(
                    field,
                    format!("must be within (0, 86400] seconds, got {v}"),
                ));
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(MotionConfig::default().validate("m").is_empty());
        let m = MotionConfig {
            threshold: 0.0,
            min_area: 2.0,
            stationary_after_s: f64::NAN,
            check_every_s: -1.0,
            ..MotionConfig::default()
        };
        let keys: Vec<_> = m
            .validate("streams[1].motion")
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "streams[1].motion.threshold",
                "streams[1].motion.min_area",
                "streams[1].motion.stationary_after_s",
                "streams[1].motion.check_every_s"
            ]
        );
    }
}
