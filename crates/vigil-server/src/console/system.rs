//! `GET /v1/system`: what the System page shows, read from the same
//! Prometheus registry `/metrics` exposes (so the two never disagree).

use std::collections::BTreeMap;

use prometheus::proto::{Metric, MetricFamily};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::{AppState, Ready};

#[derive(Serialize, ToSchema)]
pub struct SystemView {
    /// What inference runs on (`auto` resolved).
    device: String,
    /// `fp32`, `bf16`, `fp16` or `int8` (`auto` resolved).
    precision: String,
    /// The inference library, e.g. `onnxruntime-1.32.0`.
    backend: String,
    model: String,
    batch_max_size: usize,
    batch_max_wait_ms: u64,
    /// Inference sessions sharing the batcher, as configured (`auto` or N).
    sessions: String,
    /// Mean frames per inference call since start.
    batch_mean: Option<f64>,
    /// Per pipeline stage, since start.
    stages: Vec<Quantiles>,
    /// Live view: processed frame → viewer's socket.
    live_latency: Quantiles,
    streams: Vec<StreamHealth>,
}

/// P50/P95 estimated from a histogram's buckets (linear within a bucket,
/// as PromQL's `histogram_quantile`), in milliseconds.
#[derive(Serialize, ToSchema)]
pub struct Quantiles {
    name: String,
    count: u64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct StreamHealth {
    id: String,
    state: crate::streams::StreamState,
    blocked: bool,
    fps_processed: f64,
    /// PSI per drift feature (absent until a baseline exists).
    drift_psi: BTreeMap<String, f64>,
    /// Camera-health anomalies since start, by kind.
    anomalies: BTreeMap<String, u64>,
    /// Picture anomalies in progress (`frozen`, `black`, `overexposed`);
    /// empty while the picture is healthy.
    health: Vec<String>,
    /// Open live views.
    viewers: i64,
}

pub fn build(st: &AppState, ready: &Ready) -> SystemView {
    let families = st.metrics.gather();
    let family = |name: &str| families.iter().find(|f| f.name() == name);
    let label = |m: &Metric, key: &str| {
        m.get_label()
            .iter()
            .find(|l| l.name() == key)
            .map(|l| l.value().to_string())
    };
    let stages = family("vigil_stage_seconds")
        .map(|f| {
            f.get_metric()
                .iter()
                .map(|m| quantiles(label(m, "stage").unwrap_or_default(), m))
                .collect()
        })
        .unwrap_or_default();
    let live_latency = family("vigil_live_latency_seconds")
        .and_then(|f| f.get_metric().first())
        .map_or_else(
            || Quantiles {
                name: "live".into(),
                count: 0,
                p50_ms: None,
                p95_ms: None,
            },
            |m| quantiles("live".into(), m),
        );
    let batch_mean = family("vigil_batch_size")
        .and_then(|f| f.get_metric().first())
        .and_then(|m| {
            let h = m.get_histogram();
            (h.get_sample_count() > 0).then(|| h.get_sample_sum() / h.get_sample_count() as f64)
        });
    let per_stream = |fam: Option<&MetricFamily>, key: &str, id: &str| -> Vec<(String, f64)> {
        fam.map(|f| {
            f.get_metric()
                .iter()
                .filter(|m| label(m, "stream").as_deref() == Some(id))
                .map(|m| {
                    let v = if f.get_field_type() == prometheus::proto::MetricType::GAUGE {
                        m.get_gauge().get_value()
                    } else {
                        m.get_counter().get_value()
                    };
                    (label(m, key).unwrap_or_default(), v)
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let streams = ready
        .streams
        .list()
        .into_iter()
        .map(|s| StreamHealth {
            drift_psi: per_stream(family("vigil_drift_psi"), "feature", &s.id)
                .into_iter()
                .collect(),
            anomalies: per_stream(family("vigil_camera_anomalies_total"), "kind", &s.id)
                .into_iter()
                .map(|(k, v)| (k, v as u64))
                .collect(),
            health: per_stream(family("vigil_camera_anomaly_active"), "kind", &s.id)
                .into_iter()
                .filter_map(|(k, v)| (v > 0.0).then_some(k))
                .collect(),
            viewers: st
                .metrics
                .live_viewers
                .with_label_values(&[s.id.as_str()])
                .get(),
            id: s.id,
            state: s.state,
            blocked: s.blocked,
            fps_processed: s.fps_processed,
        })
        .collect();
    SystemView {
        device: ready.device.clone(),
        precision: ready.precision.clone(),
        backend: ready.backend.clone(),
        model: ready.model.clone(),
        batch_max_size: st.cfg.batch.max_size,
        batch_max_wait_ms: st.cfg.batch.max_wait_ms,
        sessions: match st.cfg.model.sessions {
            vigil_core::config::Count::Auto => "auto".into(),
            vigil_core::config::Count::Fixed(n) => n.to_string(),
        },
        batch_mean,
        stages,
        live_latency,
        streams,
    }
}

fn quantiles(name: String, m: &Metric) -> Quantiles {
    let h = m.get_histogram();
    let buckets: Vec<(f64, u64)> = h
        .get_bucket()
        .iter()
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .collect();
    let count = h.get_sample_count();
    let q = |p: f64| quantile(&buckets, count, p).map(|s| (s * 1e5).round() / 100.0);
    Quantiles {
        name,
        count,
        p50_ms: q(0.5),
        p95_ms: q(0.95),
    }
}

/// The `p` quantile in seconds from cumulative buckets; `None` without
/// samples. Above the last finite bucket the answer is that bound.
fn quantile(buckets: &[(f64, u64)], count: u64, p: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = p * count as f64;
    let mut prev = (0.0, 0u64);
    for &(upper, cum) in buckets {
        if cum as f64 >= rank {
            let in_bucket = (cum - prev.1) as f64;
            let frac = if in_bucket > 0.0 {
                (rank - prev.1 as f64) / in_bucket
            } else {
                1.0
            };
            return Some(prev.0 + (upper - prev.0) * frac);
        }
        prev = (upper, cum);
    }
    buckets.last().map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        // 10 samples: 4 at or below 10 ms, 10 at or below 20 ms.
        let b = [(0.01, 4), (0.02, 10), (0.05, 10)];
        assert_eq!(quantile(&b, 0, 0.5), None);
        let p50 = quantile(&b, 10, 0.5).unwrap();
        assert!((p50 - (0.01 + 0.01 * (1.0 / 6.0))).abs() < 1e-9, "{p50}");
        let p95 = quantile(&b, 10, 0.95).unwrap();
        assert!(p95 > 0.019 && p95 <= 0.02, "{p95}");
        // Beyond the last bucket: its bound.
        assert_eq!(quantile(&[(0.01, 1)], 5, 0.95), Some(0.01));
    }
}
