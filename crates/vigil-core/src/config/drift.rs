use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[drift]`: model-drift monitoring per stream (Population Stability Index
/// of the class mix and of the confidence histogram, sliding window against
/// a baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    pub enabled: bool,
    /// Length of the sliding window, in minutes of stream time (pts). The
    /// first full window of a stream is its baseline unless a saved one exists.
    pub window_minutes: f64,
    /// PSI above this raises `drift.detected` (0.1 is commonly read as a
    /// moderate shift, 0.2 as a significant one).
    pub psi_alert: f64,
    /// Detections both the baseline and the window need before a PSI is
    /// reported: with a handful of samples PSI is mostly noise.
    pub min_detections: u64,
    /// Directory of saved baselines, `<dir>/<stream id>.json`
    /// (`POST /v1/streams/{id}/baseline` writes there). Unset:
    /// `storage.dir/baselines`.
    pub baseline_dir: Option<PathBuf>,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_minutes: 10.0,
            psi_alert: 0.2,
            min_detections: 200,
            baseline_dir: None,
        }
    }
}

impl DriftConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if !(self.window_minutes.is_finite()
            && self.window_minutes > 0.0
            && self.window_minutes <= 7.0 * 24.0 * 60.0)
        {
            e.push(InvalidValue::new(
                "drift.window_minutes",
                "must be a positive number of minutes, at most a week",
            ));
        }
        if !(self.psi_alert.is_finite() && self.psi_alert > 0.0) {
            e.push(InvalidValue::new(
                "drift.psi_alert",
                "must be a positive number",
            ));
        }
        if self.min_detections == 0 {
            e.push(InvalidValue::new(
                "drift.min_detections",
                "must be at least 1",
            ));
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn drift_parses_validates_and_overrides() {
        let c = Config::from_toml(
            "[drift]\nwindow_minutes = 2\nbaseline_dir = \"/b\"\n",
            "t.toml",
            vec![("VIGIL_DRIFT_PSI_ALERT".to_string(), "0.3".to_string())],
        )
        .unwrap();
        assert_eq!(c.drift.window_minutes, 2.0);
        assert_eq!(c.drift.psi_alert, 0.3);
        assert!(c.drift.enabled);
        let bad = Config::from_toml(
            "[drift]\nwindow_minutes = 0\npsi_alert = -1\n",
            "t",
            Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("drift.window_minutes") && bad.contains("drift.psi_alert"),
            "{bad}"
        );
        assert!(Config::from_toml("[drift]\nwindow = 3\n", "t", Vec::new()).is_err());
    }
}
