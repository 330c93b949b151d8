//! The Prometheus metrics named by the contract, in one registry.
//!
//! Label values are stage names, stream ids, class labels and HTTP route
//! templates: all bounded sets. URLs, track ids and raw paths never become
//! labels (cardinality, and URLs may carry credentials).

// Process RSS/CPU, read from /proc at scrape time (see process.rs).
mod process;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use vigil_pipeline::FrameResult;

/// Stages of `vigil_stage_seconds`.
pub const STAGES: &[&str] = &[
    "decode",
    "preprocess",
    "queue",
    "inference",
    "postprocess",
    "track",
    "end_to_end",
];

/// Outcomes of `vigil_frames_total`.
pub const FRAME_OUTCOMES: &[&str] = &["decoded", "processed", "skipped", "still", "dropped"];

/// Buckets from 1 ms to 10 s, roughly ×2.5 apart: per-stage times span
/// sub-millisecond tracking to multi-second end-to-end latency on a
/// saturated CPU.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    pub stage_seconds: HistogramVec,
    pub frames_total: IntCounterVec,
    pub batch_size: Histogram,
    pub detections_total: IntCounterVec,
    pub stream_up: IntGaugeVec,
    pub stream_reconnects_total: IntCounterVec,
    pub events_total: IntCounterVec,
    pub webhook_deliveries_total: IntCounterVec,
    /// `vigil_event_deliveries_total{sink,outcome}`: every event sink.
    pub event_deliveries_total: IntCounterVec,
    pub outbox_pending: IntGauge,
    /// `vigil_storage_low`: 1 while free space under `storage.dir` is below
    /// `storage.min_free_mb` (snapshots paused).
    pub storage_low: IntGauge,
    /// `vigil_events_lost_total`: events that could not be written to the
    /// outbox (disk full, database error); each is also logged.
    pub events_lost_total: prometheus::IntCounter,
    pub jobs: IntGaugeVec,
    pub http_request_seconds: HistogramVec,
    // --- Monitoring (vigil-monitor) and per-stream rates; beyond the contract.
    /// `vigil_drift_psi{stream,feature}`: PSI against the drift baseline.
    pub drift_psi: GaugeVec,
    /// `vigil_camera_anomalies_total{stream,kind}`: camera-health onsets.
    pub camera_anomalies_total: IntCounterVec,
    /// `vigil_camera_anomaly_active{stream,kind}`: 1 while a picture
    /// anomaly lasts (the health *state*; the counter above counts onsets).
    pub camera_anomaly_active: IntGaugeVec,
    /// `vigil_stream_fps{stream,kind}`: decoded (`input`) and detected
    /// (`processed`) frames per second over the last sampler tick.
    pub stream_fps: GaugeVec,
    /// `vigil_model_info{backend,device,precision}` = 1: how inference runs,
    /// every `auto` resolved (one series once the model is loaded).
    pub model_info: IntGaugeVec,
    // --- The console's live view (streams/live.rs).
    /// `vigil_live_frames_encoded_total{stream}`: live JPEGs encoded; one
    /// per processed frame while watched, whatever the number of viewers.
    pub live_frames_encoded: IntCounterVec,
    /// `vigil_live_frames_skipped_total{stream}`: frames a slow viewer did
    /// not get because a newer one replaced them.
    pub live_frames_skipped: IntCounterVec,
    /// `vigil_live_viewers{stream}`: open live views.
    pub live_viewers: IntGaugeVec,
    /// `vigil_live_latency_seconds`: processed frame → its bytes written to
    /// a viewer's socket (encode, hand-off and send).
    pub live_latency_seconds: Histogram,
    /// Streams whose series may exist, with the detection labels each has
    /// produced. Per-stream series are touched only under this lock and only
    /// for a listed stream, so a stream that is refused or removed leaves no
    /// series behind, even when its threads wind down after the removal.
    live: Mutex<HashMap<String, BTreeSet<String>>>,
    /// `vigil_detections_filtered_total{stream,reason}`: detections dropped
    /// by a stream's filters and masks before tracking (reasons in
    /// [`FILTER_REASONS`]).
    pub detections_filtered_total: IntCounterVec,
    /// `vigil_scheduled_frames_total{priority}`: frames sent to the
    /// detector per scheduler class (`live`, `interactive`, `background`).
    pub scheduled_frames_total: IntCounterVec,
}

/// Reasons of `vigil_detections_filtered_total`.
pub const FILTER_REASONS: &[&str] = &["score", "area", "ratio", "mask"];

impl Metrics {
    /// Publishes `vigil_model_info` for the loaded model.
    pub fn set_model_info(&self, backend: &str, device: &str, precision: &str) {
        self.model_info.reset();
        self.model_info
            .with_label_values(&[backend, device, precision])
            .set(1);
    }

    /// Builds and registers every metric. Registration only fails on a
    /// duplicate or malformed name, i.e. a programming error caught by tests.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let model_info = IntGaugeVec::new(
            Opts::new(
                "vigil_model_info",
                "1 for how inference runs: ONNX Runtime version, device and precision (auto resolved).",
            ),
            &["backend", "device", "precision"],
        )?;
        registry.register(Box::new(model_info.clone()))?;
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(
                "vigil_stage_seconds",
                "Time a frame spent in each pipeline stage (end_to_end: captured to sink).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let frames_total = IntCounterVec::new(
            Opts::new(
                "vigil_frames_total",
                "Frames per stream by outcome (decoded, processed, skipped, still = gated out by motion gating, dropped).",
            ),
            &["stream", "outcome"],
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("vigil_batch_size", "Frames per inference call.")
                .buckets(vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0]),
        )?;
        let detections_total = IntCounterVec::new(
            Opts::new(
                "vigil_detections_total",
                "Objects reported per stream and class label.",
            ),
            &["stream", "label"],
        )?;
        let stream_up = IntGaugeVec::new(
            Opts::new("vigil_stream_up", "1 while the stream delivers frames."),
            &["stream"],
        )?;
        let stream_reconnects_total = IntCounterVec::new(
            Opts::new(
                "vigil_stream_reconnects_total",
                "Reconnect attempts per stream.",
            ),
            &["stream"],
        )?;
        let events_total = IntCounterVec::new(
            Opts::new("vigil_events_total", "Events emitted by type."),
            &["type"],
        )?;
        let webhook_deliveries_total = IntCounterVec::new(
            Opts::new(
                "vigil_webhook_deliveries_total",
                "Webhook delivery attempts by outcome (ok, retry, failed).",
            ),
            &["outcome"],
        )?;
        let event_deliveries_total = IntCounterVec::new(
            Opts::new(
                "vigil_event_deliveries_total",
                "Event delivery attempts by sink (webhook, mqtt, nats) and outcome (ok, retry, failed).",
            ),
            &["sink", "outcome"],
        )?;
        let outbox_pending = IntGauge::new(
            "vigil_outbox_pending",
            "Events in the outbox not yet delivered.",
        )?;
        let storage_low = IntGauge::new(
            "vigil_storage_low",
            "1 while free space under storage.dir is below storage.min_free_mb (snapshots paused).",
        )?;
        let events_lost_total = prometheus::IntCounter::new(
            "vigil_events_lost_total",
            "Events that could not be written to the outbox (disk full, database error).",
        )?;
        let jobs = IntGaugeVec::new(Opts::new("vigil_jobs", "Jobs by status."), &["status"])?;
        let http_request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "vigil_http_request_seconds",
                "HTTP request latency by route template and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "status"],
        )?;
        let drift_psi = GaugeVec::new(
            Opts::new(
                "vigil_drift_psi",
                "Population Stability Index of the stream's detections against its drift baseline (feature: class mix or confidence histogram).",
            ),
            &["stream", "feature"],
        )?;
        let camera_anomalies_total = IntCounterVec::new(
            Opts::new(
                "vigil_camera_anomalies_total",
                "Camera-health anomalies by kind (frozen, black, overexposed, decode_error), counted at onset.",
            ),
            &["stream", "kind"],
        )?;
        let camera_anomaly_active = IntGaugeVec::new(
            Opts::new(
                "vigil_camera_anomaly_active",
                "1 while a camera-health anomaly (frozen, black, overexposed) lasts on a stream, else 0.",
            ),
            &["stream", "kind"],
        )?;
        let detections_filtered_total = IntCounterVec::new(
            Opts::new(
                "vigil_detections_filtered_total",
                "Detections dropped by a stream's object filters and masks before tracking, by reason (score, area, ratio, mask).",
            ),
            &["stream", "reason"],
        )?;
        let stream_fps = GaugeVec::new(
            Opts::new(
                "vigil_stream_fps",
                "Frames per second per stream: decoded (kind=input) and run through the detector (kind=processed).",
            ),
            &["stream", "kind"],
        )?;
        let live_frames_encoded = IntCounterVec::new(
            Opts::new(
                "vigil_live_frames_encoded_total",
                "Live-view JPEGs encoded per stream: one per processed frame while anyone watches, however many viewers.",
            ),
            &["stream"],
        )?;
        let live_frames_skipped = IntCounterVec::new(
            Opts::new(
                "vigil_live_frames_skipped_total",
                "Live-view frames a slow viewer skipped (a newer frame replaced them before it could be sent).",
            ),
            &["stream"],
        )?;
        let live_viewers = IntGaugeVec::new(
            Opts::new("vigil_live_viewers", "Open live views per stream."),
            &["stream"],
        )?;
        let live_latency_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "vigil_live_latency_seconds",
                "Live view: time from a processed frame to its bytes written to a viewer's socket.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(live_frames_encoded.clone()))?;
        registry.register(Box::new(live_frames_skipped.clone()))?;
        registry.register(Box::new(live_viewers.clone()))?;
        registry.register(Box::new(live_latency_seconds.clone()))?;
        let scheduled_frames_total = IntCounterVec::new(
            Opts::new(
                "vigil_scheduled_frames_total",
                "Frames sent to the detector by scheduler priority (live = cameras, interactive = /v1/detect, background = jobs).",
            ),
            &["priority"],
        )?;
        registry.register(Box::new(scheduled_frames_total.clone()))?;
        for p in ["live", "interactive", "background"] {
            scheduled_frames_total.with_label_values(&[p]);
        }
        registry.register(Box::new(drift_psi.clone()))?;
        registry.register(Box::new(camera_anomalies_total.clone()))?;
        registry.register(Box::new(camera_anomaly_active.clone()))?;
        registry.register(Box::new(stream_fps.clone()))?;
        registry.register(Box::new(detections_filtered_total.clone()))?;
        registry.register(Box::new(process::ProcessCollector::new()?))?;
        registry.register(Box::new(stage_seconds.clone()))?;
        registry.register(Box::new(frames_total.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(detections_total.clone()))?;
        registry.register(Box::new(stream_up.clone()))?;
        registry.register(Box::new(stream_reconnects_total.clone()))?;
        registry.register(Box::new(events_total.clone()))?;
        registry.register(Box::new(webhook_deliveries_total.clone()))?;
        registry.register(Box::new(event_deliveries_total.clone()))?;
        registry.register(Box::new(outbox_pending.clone()))?;
        registry.register(Box::new(storage_low.clone()))?;
        registry.register(Box::new(events_lost_total.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(http_request_seconds.clone()))?;
        // Families without children are not exposed at all; create the
        // fixed label sets up front so every contract name is always
        // scrapeable (and rate() sees a 0 before the first increment).
        for s in STAGES {
            stage_seconds.with_label_values(&[*s]);
        }
        for t in vigil_core::EventType::ALL {
            events_total.with_label_values(&[t.as_str()]);
        }
        for o in ["ok", "retry", "failed"] {
            webhook_deliveries_total.with_label_values(&[o]);
            for sink in ["webhook", "mqtt", "nats"] {
                event_deliveries_total.with_label_values(&[sink, o]);
            }
        }
        for s in vigil_jobs::JobStatus::ALL {
            jobs.with_label_values(&[s.as_str()]);
        }
        Ok(Self {
            model_info,
            registry,
            stage_seconds,
            frames_total,
            batch_size,
            detections_total,
            stream_up,
            stream_reconnects_total,
            events_total,
            webhook_deliveries_total,
            event_deliveries_total,
            outbox_pending,
            storage_low,
            events_lost_total,
            jobs,
            http_request_seconds,
            drift_psi,
            camera_anomalies_total,
            camera_anomaly_active,
            stream_fps,
            live_frames_encoded,
            live_frames_skipped,
            live_viewers,
            live_latency_seconds,
            live: Mutex::new(HashMap::new()),
            detections_filtered_total,
            scheduled_frames_total,
        })
    }

    /// Registers a stream's series at zero so dashboards see it before its
    /// first frame.
    pub fn add_stream(&self, stream: &str) {
        let mut live = self.live();
        live.entry(stream.to_string()).or_default();
        for o in FRAME_OUTCOMES {
            self.frames_total.with_label_values(&[stream, o]);
        }
        self.stream_up.with_label_values(&[stream]).set(0);
        self.stream_reconnects_total.with_label_values(&[stream]);
        for k in vigil_monitor::AnomalyKind::ALL {
            self.camera_anomalies_total
                .with_label_values(&[stream, k.as_str()]);
        }
        for k in vigil_monitor::AnomalyKind::PICTURE {
            self.camera_anomaly_active
                .with_label_values(&[stream, k.as_str()])
                .set(0);
        }
        for k in ["input", "processed"] {
            self.stream_fps.with_label_values(&[stream, k]).set(0.0);
        }
        self.live_frames_encoded.with_label_values(&[stream]);
        self.live_frames_skipped.with_label_values(&[stream]);
        self.live_viewers.with_label_values(&[stream]).set(0);
        for r in FILTER_REASONS {
            self.detections_filtered_total
                .with_label_values(&[stream, r]);
        }
    }

    /// Drops a removed stream's series so ids of deleted streams do not
    /// accumulate.
    pub fn remove_stream(&self, stream: &str) {
        let mut live = self.live();
        let labels = live.remove(stream).unwrap_or_default();
        for label in &labels {
            let _ = self
                .detections_total
                .remove_label_values(&[stream, label.as_str()]);
        }
        for o in FRAME_OUTCOMES {
            let _ = self.frames_total.remove_label_values(&[stream, o]);
        }
        let _ = self.stream_up.remove_label_values(&[stream]);
        let _ = self.stream_reconnects_total.remove_label_values(&[stream]);
        for k in vigil_monitor::AnomalyKind::ALL {
            let _ = self
                .camera_anomalies_total
                .remove_label_values(&[stream, k.as_str()]);
        }
        for k in vigil_monitor::AnomalyKind::PICTURE {
            let _ = self
                .camera_anomaly_active
                .remove_label_values(&[stream, k.as_str()]);
        }
        for k in ["input", "processed"] {
            let _ = self.stream_fps.remove_label_values(&[stream, k]);
        }
        for f in vigil_monitor::Feature::ALL {
            let _ = self.drift_psi.remove_label_values(&[stream, f.as_str()]);
        }
        let _ = self.live_frames_encoded.remove_label_values(&[stream]);
        let _ = self.live_frames_skipped.remove_label_values(&[stream]);
        let _ = self.live_viewers.remove_label_values(&[stream]);
        for r in FILTER_REASONS {
            let _ = self
                .detections_filtered_total
                .remove_label_values(&[stream, r]);
        }
    }

    /// The registry's current values, for the console's system page.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// Per-frame observation from a sink: one histogram observe per stage.
    /// `stream` is `None` for jobs (uploads are not a bounded label set).
    pub fn observe_frame(&self, stream: Option<&str>, r: &FrameResult) {
        let t = &r.timings;
        // Only frames the detector ran on: a skipped frame passes the
        // pipeline in microseconds, and counting it would pull end_to_end
        // below the stages it never went through (every observed frame then
        // has end_to_end ≥ the sum of its stages, so the means compare).
        if !r.processed {
            return;
        }
        let e2e = r.frame.captured.elapsed();
        self.stage_seconds
            .with_label_values(&["end_to_end"])
            .observe(e2e.as_secs_f64());
        for (stage, d) in [
            ("decode", t.decode),
            ("preprocess", t.preprocess),
            ("queue", t.queue),
            ("inference", t.inference),
            ("postprocess", t.postprocess),
            ("track", t.track),
        ] {
            self.stage_seconds
                .with_label_values(&[stage])
                .observe(d.as_secs_f64());
        }
        // Each frame of a batch reports the batch's size; observing 1/n per
        // frame would need fractions, so the histogram counts frames by the
        // size of the batch they rode in.
        if t.batch_size > 0 {
            self.batch_size.observe(t.batch_size as f64);
        }
        if let Some(stream) = stream {
            let mut live = self.live();
            if let Some(labels) = live.get_mut(stream) {
                for d in &r.objects {
                    if !labels.contains(&d.label) {
                        labels.insert(d.label.clone());
                    }
                    self.detections_total
                        .with_label_values(&[stream, d.label.as_str()])
                        .inc();
                }
            }
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeSet<String>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` (which touches `stream`'s series) only while the stream is
    /// registered, under the lock [`Metrics::remove_stream`] takes: a late
    /// update from a stream being torn down cannot re-create its series.
    pub fn for_stream(&self, stream: &str, f: impl FnOnce(&Metrics)) {
        let live = self.live();
        if live.contains_key(stream) {
            f(self);
        }
    }

    /// Streams with series in the registry (tests and diagnostics).
    #[cfg(test)]
    pub fn stream_count(&self) -> usize {
        self.live().len()
    }

    /// The text exposition format.
    /// `vigil_jobs{status}`; counts beyond i64 are clamped.
    pub fn set_job_count(&self, status: vigil_jobs::JobStatus, n: u64) {
        self.jobs
            .with_label_values(&[status.as_str()])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// `vigil_jobs{status}` += `by` (a shared queue's worker counts what it
    /// runs and finishes; the queue itself knows only what is waiting).
    pub fn add_job_count(&self, status: vigil_jobs::JobStatus, by: i64) {
        self.jobs.with_label_values(&[status.as_str()]).add(by);
    }

    /// Every state a queue reports, as `vigil_jobs{status}`.
    pub fn show_job_counts(&self, counts: &vigil_jobs::JobCounts) {
        for (status, n) in counts.by_status() {
            self.set_job_count(status, n);
        }
    }

    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_name_is_exposed_before_any_traffic() {
        let m = Metrics::new().unwrap();
        m.add_stream("cam");
        m.http_request_seconds
            .with_label_values(&["/healthz", "200"])
            .observe(0.001);
        m.detections_total
            .with_label_values(&["cam", "person"])
            .inc();
        m.batch_size.observe(1.0);
        let text = m.render().unwrap();
        for name in [
            "vigil_stage_seconds",
            "vigil_frames_total",
            "vigil_batch_size",
            "vigil_detections_total",
            "vigil_stream_up",
            "vigil_stream_reconnects_total",
            "vigil_events_total",
            "vigil_webhook_deliveries_total",
            "vigil_event_deliveries_total",
            "vigil_outbox_pending",
            "vigil_jobs",
            "vigil_http_request_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
        }
        // Monitoring and process series exist from the stream's start.
        for line in [
            "vigil_camera_anomalies_total{kind=\"frozen\",stream=\"cam\"} 0",
            "vigil_stream_fps{kind=\"input\",stream=\"cam\"} 0",
            "# TYPE process_resident_memory_bytes gauge",
            "# TYPE process_cpu_seconds_total counter",
        ] {
            assert!(text.contains(line), "{line} missing");
        }
        m.remove_stream("cam");
        let text = m.render().unwrap();
        assert!(
            !text.contains("vigil_camera_anomalies_total{") && !text.contains("vigil_stream_fps{")
        );
    }
}
