use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[health]`: camera-health checks on the decoded frames of each stream
/// (frozen picture, black or blown-out picture, decode errors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    pub enabled: bool,
    /// Seconds (of stream time) the picture must stay unchanged before it is
    /// reported frozen.
    pub frozen_s: f64,
    /// Mean absolute difference (grey levels, 0–255) between consecutive
    /// 32x18 grey thumbnails below which two frames count as identical.
    /// Averaging over a thumbnail removes sensor noise, so a live but quiet
    /// scene stays above a small threshold while a frozen encoder sits at 0.
    pub frozen_diff: f64,
    /// Mean luma (0–255) below which a frame is black.
    pub dark_luma: f64,
    /// Mean luma above which a frame is blown out.
    pub bright_luma: f64,
    /// Seconds a black or blown-out picture must last before it is reported
    /// (a passing headlight or a lights-off moment is not an anomaly); also
    /// the quiet time after which a new burst of decode errors is reported
    /// again.
    pub sustain_s: f64,
    /// Frames per second (by pts) the checks look at, at most; bounds their
    /// CPU cost on high-frame-rate cameras.
    pub max_fps: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            frozen_s: 10.0,
            frozen_diff: 0.5,
            dark_luma: 16.0,
            bright_luma: 240.0,
            sustain_s: 10.0,
            max_fps: 5.0,
        }
    }
}

impl HealthConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        let positive = |v: f64| v.is_finite() && v > 0.0;
        for (key, v) in [
            ("health.frozen_s", self.frozen_s),
            ("health.sustain_s", self.sustain_s),
            ("health.max_fps", self.max_fps),
        ] {
            if !positive(v) {
                e.push(InvalidValue::new(key, "must be a positive number"));
            }
        }
        if !(self.frozen_diff.is_finite() && (0.0..255.0).contains(&self.frozen_diff)) {
            e.push(InvalidValue::new("health.frozen_diff", "must be in 0..255"));
        }
        let luma = |v: f64| v.is_finite() && (0.0..=255.0).contains(&v);
        if !luma(self.dark_luma) || !luma(self.bright_luma) || self.dark_luma >= self.bright_luma {
            e.push(InvalidValue::new(
                "health.dark_luma",
                "dark_luma and bright_luma must be in 0..=255 with dark_luma < bright_luma",
            ));
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn health_parses_validates_and_overrides() {
        let c = Config::from_toml(
            "[health]\nsustain_s = 2\n",
            "t.toml",
            vec![("VIGIL_HEALTH_DARK_LUMA".to_string(), "20".to_string())],
        )
        .unwrap();
        assert_eq!(c.health.sustain_s, 2.0);
        assert_eq!(c.health.dark_luma, 20.0);
        assert_eq!(c.health.frozen_s, 10.0);
        let bad = Config::from_toml("[health]\nframes = 1\n", "t", Vec::new());
        assert!(bad.is_err());
        let bad = Config::from_toml("[health]\ndark_luma = 250\nfrozen_s = 0\n", "t", Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("health.dark_luma") && bad.contains("health.frozen_s"),
            "{bad}"
        );
    }
}
