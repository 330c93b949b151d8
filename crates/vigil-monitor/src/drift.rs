//! Model drift: has the stream's class mix or confidence profile moved away
//! from what it was?
//!
//! A detector that silently degrades (new lighting, a moved camera, a model
//! swap, a scene the model was not trained on) keeps producing detections;
//! only their distribution changes. Comparing the recent distribution with a
//! baseline through the Population Stability Index catches that without
//! labels.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use vigil_core::config::DriftConfig;
use vigil_core::{ClassId, Detection};

use crate::{psi, Detail, EventType, MonitorEvent};

/// Bins of the confidence histogram: ten equal bins over 0–1.
pub const CONFIDENCE_BINS: usize = 10;

/// What a PSI is computed over (the `feature` label of `vigil_drift_psi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    Class,
    Confidence,
}

impl Feature {
    pub const ALL: [Feature; 2] = [Feature::Class, Feature::Confidence];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Class => "class",
            Feature::Confidence => "confidence",
        }
    }
}

/// Tunables, in the units the monitor works in (stream milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftParams {
    /// Sliding-window length in pts milliseconds.
    pub window_ms: f64,
    pub psi_alert: f64,
    pub min_detections: u64,
}

impl DriftParams {
    pub fn from_config(c: &DriftConfig) -> Self {
        Self {
            window_ms: c.window_minutes * 60_000.0,
            psi_alert: c.psi_alert,
            min_detections: c.min_detections,
        }
    }
}

fn confidence_bin(score: f32) -> usize {
    if !score.is_finite() {
        return 0;
    }
    ((score.clamp(0.0, 1.0) * CONFIDENCE_BINS as f32) as usize).min(CONFIDENCE_BINS - 1)
}

/// The distributions a PSI compares: detections per class and per
/// confidence bin. Also the saved baseline file (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Detections counted.
    pub detections: u64,
    /// Detections per class id.
    pub classes: BTreeMap<ClassId, u64>,
    /// Detections per confidence bin (`CONFIDENCE_BINS` bins over 0–1).
    pub confidence: Vec<u64>,
}

impl Default for Baseline {
    fn default() -> Self {
        Self {
            detections: 0,
            classes: BTreeMap::new(),
            confidence: vec![0; CONFIDENCE_BINS],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a drift baseline: {reason}")]
    Format { path: String, reason: String },
}

impl Baseline {
    fn add(&mut self, class: ClassId, bin: usize) {
        self.detections += 1;
        *self.classes.entry(class).or_insert(0) += 1;
        self.confidence[bin] += 1;
    }

    fn remove(&mut self, class: ClassId, bin: usize) {
        self.detections = self.detections.saturating_sub(1);
        if let Some(n) = self.classes.get_mut(&class) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.classes.remove(&class);
            }
        }
        self.confidence[bin] = self.confidence[bin].saturating_sub(1);
    }

    /// Counts a frame's detections, as the drift window does; builds a
    /// baseline offline from a reference video (`vigil baseline save`).
    pub fn record(&mut self, detections: &[Detection]) {
        for d in detections {
            self.add(d.class_id, confidence_bin(d.score));
        }
    }

    /// PSI of `actual` against `self` for one feature. Classes are compared
    /// over the union of both sides, so a class new in `actual` counts.
    pub fn psi_against(&self, actual: &Baseline, feature: Feature) -> Option<f64> {
        match feature {
            Feature::Confidence => {
                let e: Vec<f64> = self.confidence.iter().map(|&n| n as f64).collect();
                let a: Vec<f64> = actual.confidence.iter().map(|&n| n as f64).collect();
                (e.len() == a.len()).then(|| psi(&e, &a)).flatten()
            }
            Feature::Class => {
                let keys: std::collections::BTreeSet<ClassId> = self
                    .classes
                    .keys()
                    .chain(actual.classes.keys())
                    .copied()
                    .collect();
                let count = |m: &BTreeMap<ClassId, u64>, k| m.get(k).copied().unwrap_or(0) as f64;
                let e: Vec<f64> = keys.iter().map(|k| count(&self.classes, k)).collect();
                let a: Vec<f64> = keys.iter().map(|k| count(&actual.classes, k)).collect();
                psi(&e, &a)
            }
        }
    }

    /// Reads a baseline written by [`Baseline::save`].
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io {
            path: name.clone(),
            source,
        })?;
        let b: Baseline = serde_json::from_str(&text).map_err(|e| BaselineError::Format {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        if b.confidence.len() != CONFIDENCE_BINS {
            return Err(BaselineError::Format {
                path: name,
                reason: format!("expected {CONFIDENCE_BINS} confidence bins"),
            });
        }
        Ok(b)
    }

    /// Writes the baseline as JSON, through a temporary file and a rename so
    /// a crash never leaves a half-written baseline to be loaded next start.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let io = |source| BaselineError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        vigil_core::fsutil::rename_durable(&tmp, path).map_err(io)
    }
}

/// Per-stream drift monitor. Feed every processed frame's detections in
/// order with [`DriftMonitor::observe`].
///
/// The window slides by pts (stream time), not by frame count, so skipped
/// or dropped frames do not stretch it. Without a saved baseline the first
/// full window holding at least `min_detections` detections becomes the
/// baseline. Memory: about 16 bytes per detection in the window.
///
/// Alerting is edge-triggered per feature: one `drift.detected` when the
/// PSI crosses above `psi_alert`, re-armed once it falls back to or below
/// it, so a drifted stream raises one event, not one per frame.
pub struct DriftMonitor {
    stream: String,
    params: DriftParams,
    baseline: Option<Baseline>,
    /// pts of the first frame seen: the start of the first (baseline) window.
    first_pts: Option<f64>,
    /// (pts, class, confidence bin) of each detection in the window.
    window: VecDeque<(f64, ClassId, u8)>,
    current: Baseline,
    alerted: [bool; 2],
    last_psi: [Option<f64>; 2],
}

impl DriftMonitor {
    pub fn new(stream: &str, params: DriftParams, baseline: Option<Baseline>) -> Self {
        Self {
            stream: stream.to_string(),
            params,
            baseline,
            first_pts: None,
            window: VecDeque::new(),
            current: Baseline::default(),
            alerted: [false; 2],
            last_psi: [None; 2],
        }
    }

    /// Adds a processed frame's detections; returns the alerts it raised.
    pub fn observe(
        &mut self,
        pts_ms: f64,
        at: SystemTime,
        detections: &[Detection],
    ) -> Vec<MonitorEvent> {
        for d in detections {
            let bin = confidence_bin(d.score);
            self.current.add(d.class_id, bin);
            self.window.push_back((pts_ms, d.class_id, bin as u8));
        }
        let horizon = pts_ms - self.params.window_ms;
        while let Some(&(t, class, bin)) = self.window.front() {
            if t > horizon {
                break;
            }
            self.current.remove(class, bin as usize);
            self.window.pop_front();
        }
        let first = *self.first_pts.get_or_insert(pts_ms);
        if self.baseline.is_none()
            && pts_ms - first >= self.params.window_ms
            && self.current.detections >= self.params.min_detections
        {
            self.baseline = Some(self.current.clone());
        }
        let mut events = Vec::new();
        let Some(base) = &self.baseline else {
            return events;
        };
        let enough = base.detections >= self.params.min_detections
            && self.current.detections >= self.params.min_detections;
        for (i, f) in Feature::ALL.into_iter().enumerate() {
            let v = if enough {
                base.psi_against(&self.current, f)
            } else {
                None
            };
            self.last_psi[i] = v;
            let Some(v) = v else { continue };
            if v > self.params.psi_alert {
                if !self.alerted[i] {
                    self.alerted[i] = true;
                    events.push(MonitorEvent {
                        kind: EventType::DriftDetected,
                        stream: self.stream.clone(),
                        at,
                        pts_ms: Some(pts_ms),
                        detail: Detail::Drift {
                            feature: f,
                            psi: v,
                            threshold: self.params.psi_alert,
                        },
                    });
                }
            } else {
                self.alerted[i] = false;
            }
        }
        events
    }

    /// The latest PSI of a feature; `None` until there is a baseline and
    /// enough detections on both sides.
    pub fn psi(&self, feature: Feature) -> Option<f64> {
        self.last_psi[feature as usize]
    }

    pub fn has_baseline(&self) -> bool {
        self.baseline.is_some()
    }

    /// The current window's distributions, to save as a baseline.
    pub fn window(&self) -> &Baseline {
        &self.current
    }

    /// Replaces the baseline (e.g. after saving the current window as the
    /// new normal); alerts re-arm.
    pub fn set_baseline(&mut self, b: Baseline) {
        self.baseline = Some(b);
        self.alerted = [false; 2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::BBox;

    fn det(class_id: ClassId, score: f32) -> Detection {
        Detection {
            class_id,
            label: format!("c{class_id}"),
            score,
            bbox: BBox::new(0.0, 0.0, 1.0, 1.0),
            track_id: None,
        }
    }

    fn params() -> DriftParams {
        DriftParams {
            window_ms: 10_000.0,
            psi_alert: 0.2,
            min_detections: 20,
        }
    }

    #[test]
    fn confidence_bins_cover_zero_to_one() {
        assert_eq!(confidence_bin(0.0), 0);
        assert_eq!(confidence_bin(0.05), 0);
        assert_eq!(confidence_bin(0.95), 9);
        assert_eq!(confidence_bin(1.0), 9);
        assert_eq!(confidence_bin(f32::NAN), 0);
    }

    /// A steady scene (same class mix, same confidences) never alerts; a
    /// switch to a different mix alerts once per feature and re-arms when
    /// the mix returns.
    #[test]
    fn first_window_baseline_then_one_alert_per_crossing() {
        let mut m = DriftMonitor::new("cam", params(), None);
        let at = SystemTime::UNIX_EPOCH;
        let steady = [det(0, 0.85), det(0, 0.75), det(2, 0.55)];
        let mut t = 0.0;
        for _ in 0..400 {
            assert!(
                m.observe(t, at, &steady).is_empty(),
                "steady stream alerted at {t}"
            );
            t += 100.0;
        }
        assert!(m.has_baseline());
        assert!(m.psi(Feature::Class).unwrap() < 1e-9);
        // Now mostly low-confidence bicycles (class 1).
        let shifted = [det(1, 0.3), det(1, 0.35), det(0, 0.32)];
        let mut raised = Vec::new();
        for _ in 0..200 {
            raised.extend(m.observe(t, at, &shifted));
            t += 100.0;
        }
        let feats: Vec<_> = raised
            .iter()
            .map(|e| match e.detail {
                Detail::Drift { feature, psi, .. } => {
                    assert!(psi > 0.2);
                    feature
                }
                _ => panic!("not a drift event"),
            })
            .collect();
        assert_eq!(feats.len(), 2, "{raised:?}");
        assert!(feats.contains(&Feature::Class) && feats.contains(&Feature::Confidence));
        assert!(raised
            .iter()
            .all(|e| e.kind == EventType::DriftDetected && e.stream == "cam"));
        // Back to normal: quiet, and re-armed for the next crossing.
        for _ in 0..200 {
            assert!(m.observe(t, at, &steady).is_empty());
            t += 100.0;
        }
        assert!(m.psi(Feature::Class).unwrap() < 0.2);
        let mut again = 0;
        for _ in 0..200 {
            again += m.observe(t, at, &shifted).len();
            t += 100.0;
        }
        assert_eq!(again, 2);
    }

    #[test]
    fn too_few_detections_give_no_psi() {
        let mut m = DriftMonitor::new("cam", params(), None);
        let at = SystemTime::UNIX_EPOCH;
        for i in 0..300 {
            // One detection every 2 s: 5 per window, below min_detections.
            let d = if i % 20 == 0 {
                vec![det(0, 0.9)]
            } else {
                vec![]
            };
            assert!(m.observe(f64::from(i) * 100.0, at, &d).is_empty());
        }
        assert!(!m.has_baseline());
        assert_eq!(m.psi(Feature::Class), None);
    }

    #[test]
    fn baseline_round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::default();
        b.add(3, 7);
        b.add(3, 8);
        let p = dir.path().join("sub/cam.json");
        b.save(&p).unwrap();
        assert_eq!(Baseline::load(&p).unwrap(), b);
        std::fs::write(&p, "{}").unwrap();
        assert!(matches!(
            Baseline::load(&p),
            Err(BaselineError::Format { .. })
        ));
        assert!(matches!(
            Baseline::load(&dir.path().join("none.json")),
            Err(BaselineError::Io { .. })
        ));
    }
}
