//! Drift and camera-health monitoring of a stream (vigil-monitor), as the
//! stream sink and the 1 s sampler drive it.
//!
//! Alerts are logged (one warn line per onset, structured fields), counted
//! in `vigil_events_total{type}` and `vigil_camera_anomalies_total{stream,kind}`,
//! and returned so the caller puts them in the event outbox like any other
//! event ([`to_event`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use vigil_core::config::{DriftConfig, HealthConfig};
use vigil_monitor::{
    Baseline, DecodeErrorWatch, Detail, DriftMonitor, DriftParams, Feature, HealthMonitor,
    HealthParams, MonitorEvent,
};
use vigil_pipeline::FrameResult;

use crate::metrics::Metrics;

/// The `[drift]` and `[health]` settings plus where baselines live.
#[derive(Debug, Clone, Default)]
pub struct Monitoring {
    pub drift: DriftConfig,
    pub health: HealthConfig,
    /// `drift.baseline_dir`, or `storage.dir/baselines`.
    pub baseline_dir: PathBuf,
}

impl Monitoring {
    pub fn from_config(cfg: &vigil_core::config::Config) -> Self {
        Self {
            drift: cfg.drift.clone(),
            health: cfg.health.clone(),
            baseline_dir: cfg
                .drift
                .baseline_dir
                .clone()
                .unwrap_or_else(|| cfg.storage.dir.join("baselines")),
        }
    }

    /// Where a stream's saved baseline is (stream ids are validated to be
    /// safe file names).
    pub fn baseline_path(&self, stream: &str) -> PathBuf {
        self.baseline_dir.join(format!("{stream}.json"))
    }

    /// A stream's drift monitor, seeded with its saved baseline when there
    /// is one; a baseline that cannot be read is logged and relearned.
    pub fn drift_monitor(&self, stream: &str) -> Option<SharedDrift> {
        if !self.drift.enabled {
            return None;
        }
        let path = self.baseline_path(stream);
        let baseline = if path.exists() {
            match Baseline::load(&path) {
                Ok(b) => {
                    tracing::info!(stream, path = %path.display(), detections = b.detections, "drift baseline loaded");
                    Some(b)
                }
                Err(e) => {
                    tracing::warn!(stream, error = %e, "ignoring the saved drift baseline; learning a new one from the first window");
                    None
                }
            }
        } else {
            None
        };
        Some(Arc::new(Mutex::new(DriftMonitor::new(
            stream,
            DriftParams::from_config(&self.drift),
            baseline,
        ))))
    }

    pub fn health_monitor(&self, stream: &str) -> Option<HealthMonitor> {
        self.health
            .enabled
            .then(|| HealthMonitor::new(stream, HealthParams::from_config(&self.health)))
    }

    pub fn decode_watch(&self, stream: &str) -> Option<DecodeErrorWatch> {
        self.health.enabled.then(|| {
            DecodeErrorWatch::new(
                stream,
                Duration::try_from_secs_f64(self.health.sustain_s)
                    .unwrap_or(Duration::from_secs(10)),
            )
        })
    }
}

/// Shared between the stream's sink (which feeds it) and the API (which
/// saves its window as the baseline).
pub type SharedDrift = Arc<Mutex<DriftMonitor>>;

/// What a stream sink runs per frame.
pub struct StreamMonitor {
    id: String,
    metrics: Arc<Metrics>,
    drift: Option<SharedDrift>,
    health: Option<HealthMonitor>,
}

impl StreamMonitor {
    pub fn new(
        id: &str,
        metrics: Arc<Metrics>,
        drift: Option<SharedDrift>,
        health: Option<HealthMonitor>,
    ) -> Self {
        Self {
            id: id.to_string(),
            metrics,
            drift,
            health,
        }
    }

    /// Health on every frame that reaches the sink (the monitor itself
    /// thins them to `health.max_fps`); drift on processed frames' raw
    /// detections, which show the model's output before tracking filters it.
    pub fn on_frame(&mut self, r: &FrameResult) -> Vec<MonitorEvent> {
        let pts = r.frame.pts.0;
        let at = r.frame.captured_at;
        let mut events = Vec::new();
        if let Some(h) = &mut self.health {
            events.extend(h.observe(pts, at, &r.frame.image));
            self.metrics.for_stream(&self.id, |m| {
                for (kind, on) in h.active() {
                    m.camera_anomaly_active
                        .with_label_values(&[self.id.as_str(), kind.as_str()])
                        .set(i64::from(on));
                }
            });
        }
        if r.processed {
            if let Some(d) = &self.drift {
                let mut d = d.lock().unwrap_or_else(|p| p.into_inner());
                events.extend(d.observe(pts, at, &r.detections));
                for f in Feature::ALL {
                    if let Some(v) = d.psi(f) {
                        self.metrics.for_stream(&self.id, |m| {
                            m.drift_psi
                                .with_label_values(&[self.id.as_str(), f.as_str()])
                                .set(v);
                        });
                    }
                }
            }
        }
        for e in &events {
            report(&self.metrics, e);
        }
        events
    }
}

/// Logs and counts one alert.
pub fn report(metrics: &Metrics, e: &MonitorEvent) {
    metrics
        .events_total
        .with_label_values(&[e.kind.as_str()])
        .inc();
    let at = humantime::format_rfc3339_millis(e.at).to_string();
    match &e.detail {
        Detail::Drift {
            feature,
            psi,
            threshold,
        } => tracing::warn!(
            event = e.kind.as_str(),
            stream = %e.stream,
            at = %at,
            pts_ms = e.pts_ms.unwrap_or(0.0),
            feature = feature.as_str(),
            psi = *psi,
            threshold = *threshold,
            "model drift detected"
        ),
        Detail::Camera {
            kind,
            duration_s,
            value,
        } => {
            metrics.for_stream(&e.stream, |m| {
                m.camera_anomalies_total
                    .with_label_values(&[e.stream.as_str(), kind.as_str()])
                    .inc();
            });
            tracing::warn!(
                event = e.kind.as_str(),
                stream = %e.stream,
                at = %at,
                pts_ms = e.pts_ms.unwrap_or(0.0),
                kind = kind.as_str(),
                duration_s = *duration_s,
                value = *value,
                "camera anomaly"
            );
        }
    }
}

/// Checks a stream's decode-error total (from the 1 s sampler).
pub fn check_decode_errors(
    metrics: &Metrics,
    watch: &mut DecodeErrorWatch,
    total: u64,
) -> Option<MonitorEvent> {
    let e = watch.observe(total, Instant::now(), SystemTime::now())?;
    report(metrics, &e);
    Some(e)
}

/// A monitor alert as a contract event: no track fields; the alert's own
/// fields (`feature`, `psi`, `threshold` or `anomaly`, `duration_s`, `value`)
/// at the top level of the body.
pub fn to_event(e: &MonitorEvent) -> vigil_events::Event {
    let mut extra = match serde_json::to_value(&e.detail) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    // `kind` would read like the event's own type; name it for what it is.
    if let Some(k) = extra.remove("kind") {
        extra.insert("anomaly".into(), k);
    }
    vigil_events::Event::stream_level(e.kind, &e.stream, e.at, e.pts_ms.unwrap_or(0.0), extra)
}
