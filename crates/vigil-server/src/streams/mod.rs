//! Camera streams: configured at start-up or added at run time, each a
//! [`ReconnectingSource`] feeding the shared engine and a [`StreamSink`].

mod live;
mod monitor;
mod sink;
mod source;
mod status;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::config::{is_network_url, StreamConfig, TrackerConfig};
use vigil_core::{Detection, ImageBgr};
use vigil_pipeline::{Engine, SkipPolicy, StreamHandle, StreamOptions, StreamStats};
use vigil_video::mask_url;

use vigil_events::{lines_from_tables, zones_from_tables, EventGenerator};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::source_policy::{check_stream_source, CheckedSource, SourcePolicy, GENERIC_REFUSAL};
pub use live::{LiveFeed, LiveFrame};
pub use monitor::Monitoring;
use monitor::{SharedDrift, StreamMonitor};
pub use sink::EventOutputs;
use sink::{Latest, StreamSink};
pub use source::ReconnectingSource;
pub use status::{StreamState, StreamStatus};

/// One stream as `GET /v1/streams` reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamView {
    pub id: String,
    /// The source URL with credentials masked.
    pub url: String,
    pub state: StreamState,
    /// Frames decoded per second (last second).
    pub fps_in: f64,
    /// Frames run through the detector per second (last second).
    pub fps_processed: f64,
    /// Frames dropped from the ring because the pipeline was behind.
    pub frames_dropped: u64,
    pub frames_decoded: u64,
    pub frames_processed: u64,
    pub frames_skipped: u64,
    /// Reconnect attempts since the stream was added.
    pub reconnects: u64,
    /// RFC 3339 UTC time of the last decoded frame.
    pub last_frame_at: Option<String>,
    /// True while frames are being dropped because the pipeline is behind
    /// (not a camera problem: never triggers a reconnect).
    pub blocked: bool,
    /// Why the stream is reconnecting, stopped or failed (masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counters at the previous sample, to turn totals into rates and metric
/// increments.
#[derive(Default, Clone, Copy)]
struct Sample {
    decoded: u64,
    processed: u64,
    skipped: u64,
    dropped: u64,
}

struct Entry {
    cfg: StreamConfig,
    status: Arc<StreamStatus>,
    stop: Arc<AtomicBool>,
    handle: Option<StreamHandle>,
    latest: Latest,
    prev: Sample,
    prev_at: Instant,
    /// Shared with the sink; the API saves its window as the baseline.
    drift: Option<SharedDrift>,
    /// Turns the decoder's error count into `decode_error` anomalies.
    decode_watch: Option<vigil_monitor::DecodeErrorWatch>,
    /// The console's live view of this stream (`None` for a failed one).
    live: Option<Arc<LiveFeed>>,
}

impl Entry {
    /// A stream with no monitoring state and no snapshot yet.
    fn new(
        cfg: StreamConfig,
        status: Arc<StreamStatus>,
        stop: Arc<AtomicBool>,
        handle: Option<StreamHandle>,
    ) -> Self {
        Entry {
            cfg,
            status,
            stop,
            handle,
            latest: Arc::default(),
            prev: Sample::default(),
            prev_at: Instant::now(),
            drift: None,
            decode_watch: None,
            live: None,
        }
    }

    fn stats(&self) -> Option<&Arc<StreamStats>> {
        self.handle.as_ref().map(StreamHandle::stats)
    }
}

pub struct Streams {
    engine: Arc<Engine>,
    tracker: TrackerConfig,
    metrics: Arc<Metrics>,
    out: EventOutputs,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// `[drift]`/`[health]`; set by `with_monitoring`, defaults otherwise.
    monitoring: Monitoring,
    /// What API clients may open (`server.stream_*`, `server.media_root`).
    policy: Arc<SourcePolicy>,
    /// `server.max_streams`.
    max_streams: usize,
}

impl Streams {
    pub fn new(
        engine: Arc<Engine>,
        tracker: TrackerConfig,
        metrics: Arc<Metrics>,
        out: EventOutputs,
    ) -> Self {
        Self {
            engine,
            tracker,
            metrics,
            out,
            entries: Mutex::new(BTreeMap::new()),
            monitoring: Monitoring::from_config(&vigil_core::config::Config::default()),
            policy: Arc::new(SourcePolicy::default()),
            max_streams: usize::MAX,
        }
    }

    /// The source policy for API streams and the cap on streams (`[server]`).
    pub fn with_limits(mut self, server: &vigil_core::config::ServerConfig) -> Self {
        self.policy = Arc::new(SourcePolicy::from_config(server));
        self.max_streams = server.max_streams;
        self
    }

    /// Drift and camera-health settings for the streams added from now on.
    pub fn with_monitoring(mut self, monitoring: Monitoring) -> Self {
        self.monitoring = monitoring;
        self
    }

    /// Saves the stream's current drift window as its baseline
    /// (`<baseline_dir>/<id>.json`, loaded again at start-up) and compares
    /// against it from now on. For `POST /v1/streams/{id}/baseline`.
    pub fn save_baseline(&self, id: &str) -> Result<BaselineSaved, ApiError> {
        let drift = self
            .entries()
            .get(id)
            .ok_or_else(|| ApiError::NotFound(format!("no stream {id:?}")))?
            .drift
            .clone()
            .ok_or_else(|| {
                ApiError::Conflict("drift monitoring is disabled (drift.enabled)".into())
            })?;
        let window = drift
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .window()
            .clone();
        if window.detections == 0 {
            return Err(ApiError::Conflict(format!(
                "stream {id:?} has no detections in its drift window yet"
            )));
        }
        let path = self.monitoring.baseline_path(id);
        window.save(&path).map_err(ApiError::internal)?;
        drift
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_baseline(window.clone());
        tracing::info!(stream = %id, path = %path.display(), detections = window.detections, "drift baseline saved");
        Ok(BaselineSaved {
            stream: id.to_string(),
            path: path.display().to_string(),
            detections: window.detections,
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a stream. Blocking: a file is opened here, so a bad path is
    /// reported to the caller. With `strict` (the API) that is a 400; from
    /// the config the stream is listed as `failed` and the daemon runs on.
    pub fn add(&self, mut cfg: StreamConfig, strict: bool) -> Result<(), ApiError> {
        let problems = cfg.validate("stream");
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(ApiError::BadRequest(list.join("; ")));
        }
        let generator = event_generator(&cfg).map_err(ApiError::BadRequest)?;
        if strict {
            // API clients: only what `[server]` allows (see source_policy).
            match check_stream_source(&cfg.url, &self.policy) {
                Ok(CheckedSource::File(path)) => {
                    // Open what was checked, not the client's spelling.
                    cfg.url = path
                        .to_str()
                        .ok_or_else(|| ApiError::BadRequest(format!("url: {GENERIC_REFUSAL}")))?
                        .to_string();
                }
                Ok(CheckedSource::Network { .. }) => {}
                Err(e) => {
                    tracing::warn!(stream = %cfg.id, url = %mask_url(&cfg.url), reason = %e, "stream source refused");
                    return Err(ApiError::BadRequest(e.client_message()));
                }
            }
        }
        {
            let entries = self.entries();
            if entries.contains_key(&cfg.id) {
                return Err(exists(&cfg.id));
            }
            if entries.len() >= self.max_streams {
                return Err(ApiError::Conflict(format!(
                    "server.max_streams ({}) streams are running; remove one first",
                    self.max_streams
                )));
            }
        }
        let status = Arc::new(StreamStatus::new(&cfg.id, Arc::clone(&self.metrics)));
        self.metrics.add_stream(&cfg.id);
        let first = if is_network_url(&cfg.url) {
            None
        } else {
            match ReconnectingSource::open(&cfg, strict) {
                Ok(s) => Some(s),
                Err(e) if strict => {
                    self.metrics.remove_stream(&cfg.id);
                    tracing::warn!(stream = %cfg.id, reason = %e, "stream source cannot be opened");
                    return Err(ApiError::BadRequest(format!("url: {GENERIC_REFUSAL}")));
                }
                Err(e) => {
                    status.set_state(StreamState::Failed, Some(&e.to_string()));
                    let entry = Entry::new(cfg, status, Arc::new(AtomicBool::new(true)), None);
                    self.insert(entry).map_err(|e| exists(&e.cfg.id))?;
                    return Ok(());
                }
            }
        };
        let fps = first
            .as_ref()
            .map_or(source::ASSUMED_LIVE_FPS, |s| s.info().fps);
        let tracker = match vigil_pipeline::tracker(&self.tracker, fps) {
            Ok(t) => t,
            Err(e) => {
                self.metrics.remove_stream(&cfg.id);
                return Err(ApiError::internal(e));
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let source =
            ReconnectingSource::new(cfg.clone(), first, Arc::clone(&status), Arc::clone(&stop))
                .with_policy(strict.then(|| Arc::clone(&self.policy)));
        let latest: Latest = Arc::default();
        let drift = self.monitoring.drift_monitor(&cfg.id);
        let health = self.monitoring.health_monitor(&cfg.id);
        let monitor = (drift.is_some() || health.is_some())
            .then(|| StreamMonitor::new(&cfg.id, Arc::clone(&self.metrics), drift.clone(), health));
        let sink = StreamSink::new(
            &cfg.id,
            Arc::clone(&self.metrics),
            Arc::clone(&status),
            Arc::clone(&latest),
            generator,
            self.out.clone(),
        )
        .with_monitor(monitor);
        let live = Arc::new(LiveFeed::new(&cfg.id, Arc::clone(&self.metrics)));
        let sink = sink.with_live(Arc::clone(&live));
        let mut opts = StreamOptions::new(cfg.id.clone());
        opts.ring_capacity = cfg.ring_capacity;
        opts.skip = SkipPolicy::from_options(cfg.every, cfg.fps);
        tracing::info!(stream = %cfg.id, url = %mask_url(&cfg.url), "stream added");
        let handle = self
            .engine
            .add_stream(Box::new(source), Box::new(sink), Some(tracker), opts);
        let entry = Entry {
            latest,
            drift,
            decode_watch: self.monitoring.decode_watch(&cfg.id),
            live: Some(live),
            ..Entry::new(cfg, status, stop, Some(handle))
        };
        if let Err(lost) = self.insert(entry) {
            // Lost a race with a concurrent add of the same id.
            lost.stop.store(true, Ordering::SeqCst);
            if let Some(handle) = lost.handle {
                handle.stop();
                std::thread::spawn(move || drop(handle.join()));
            }
            return Err(exists(&lost.cfg.id));
        }
        Ok(())
    }

    /// Adds an entry unless its id is taken; then the entry comes back so
    /// the caller can stop what it started.
    fn insert(&self, entry: Entry) -> Result<(), Box<Entry>> {
        let mut entries = self.entries();
        if entries.contains_key(&entry.cfg.id) {
            return Err(Box::new(entry));
        }
        entries.insert(entry.cfg.id.clone(), entry);
        Ok(())
    }

    /// Stops and forgets a stream. Its threads wind down in the background
    /// (a decoder may sit in a read for up to the stall timeout).
    pub fn remove(&self, id: &str) -> Result<(), ApiError> {
        let entry = self
            .entries()
            .remove(id)
            .ok_or_else(|| ApiError::NotFound(format!("no stream {id:?}")))?;
        entry.stop.store(true, Ordering::SeqCst);
        if let Some(h) = entry.handle {
            h.stop();
            let _ = std::thread::Builder::new()
                .name(format!("vigil-stop-{id}"))
                .spawn(move || drop(h.join()));
        }
        entry.status.set_state(StreamState::Stopped, None);
        self.metrics.remove_stream(id);
        tracing::info!(stream = %id, "stream removed");
        Ok(())
    }

    pub fn list(&self) -> Vec<StreamView> {
        self.entries().values().map(view).collect()
    }

    pub fn get(&self, id: &str) -> Option<StreamView> {
        self.entries().get(id).map(view)
    }

    /// The latest processed frame and its objects; `Ok(None)` before the first.
    #[allow(clippy::type_complexity)]
    pub fn latest(&self, id: &str) -> Result<Option<(Arc<ImageBgr>, Vec<Detection>)>, ApiError> {
        let entries = self.entries();
        let e = entries
            .get(id)
            .ok_or_else(|| ApiError::NotFound(format!("no stream {id:?}")))?;
        let slot = e.latest.lock().unwrap_or_else(|p| p.into_inner());
        Ok(slot.clone())
    }

    /// The stream's live feed and the zones and lines to draw over it.
    pub fn live(&self, id: &str) -> Result<(Arc<LiveFeed>, LiveRules), ApiError> {
        let entries = self.entries();
        let e = entries
            .get(id)
            .ok_or_else(|| ApiError::NotFound(format!("no stream {id:?}")))?;
        let feed = e.live.clone().ok_or_else(|| {
            ApiError::Conflict(format!(
                "stream {id:?} is not running: {}",
                e.status.error().unwrap_or_else(|| "no source".into())
            ))
        })?;
        Ok((
            feed,
            LiveRules {
                zones: e.cfg.zones.clone(),
                lines: e.cfg.lines.clone(),
            },
        ))
    }

    /// Once a second: rates, the blocked flag, and `vigil_frames_total`
    /// (incremented here from the pipeline's counters, so no metric is
    /// touched in the decode or scheduler loops).
    pub fn sample(&self) {
        let mut entries = self.entries();
        for (id, e) in entries.iter_mut() {
            let Some(stats) = e.stats() else { continue };
            let now = Sample {
                decoded: stats.decoded.load(Ordering::Relaxed),
                processed: stats.processed.load(Ordering::Relaxed),
                skipped: stats.skipped.load(Ordering::Relaxed),
                dropped: stats.dropped(),
            };
            let dt = e.prev_at.elapsed().as_secs_f64().max(1e-3);
            let d = |a: u64, b: u64| a.saturating_sub(b);
            for (outcome, n) in [
                ("decoded", d(now.decoded, e.prev.decoded)),
                ("processed", d(now.processed, e.prev.processed)),
                ("skipped", d(now.skipped, e.prev.skipped)),
                ("dropped", d(now.dropped, e.prev.dropped)),
            ] {
                if n > 0 {
                    self.metrics
                        .frames_total
                        .with_label_values(&[id.as_str(), outcome])
                        .inc_by(n);
                }
            }
            let running = e.status.state() == StreamState::Running;
            let blocked = running && d(now.dropped, e.prev.dropped) > 0;
            if blocked != e.status.blocked() {
                tracing::info!(stream = %id, blocked, "pipeline backpressure on stream changed");
            }
            let (fps_in, fps_processed) = (
                d(now.decoded, e.prev.decoded) as f64 / dt,
                d(now.processed, e.prev.processed) as f64 / dt,
            );
            e.status.set_rates(fps_in, fps_processed, blocked);
            for (kind, v) in [("input", fps_in), ("processed", fps_processed)] {
                self.metrics
                    .stream_fps
                    .with_label_values(&[id.as_str(), kind])
                    .set(v);
            }
            if let Some(w) = &mut e.decode_watch {
                if let Some(alert) =
                    monitor::check_decode_errors(&self.metrics, w, e.status.decode_errors())
                {
                    self.out.store(id, &[monitor::to_event(&alert)]);
                }
            }
            e.prev = now;
            e.prev_at = Instant::now();
        }
    }

    /// Stops every stream and waits up to `deadline` for them to drain.
    pub fn shutdown(&self, deadline: Duration) {
        let handles: Vec<StreamHandle> = {
            let mut entries = self.entries();
            entries
                .values_mut()
                .filter_map(|e| {
                    e.stop.store(true, Ordering::SeqCst);
                    e.handle.take()
                })
                .collect()
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let n = handles.len();
        for h in handles {
            h.stop();
            let tx = tx.clone();
            let _ = std::thread::Builder::new()
                .name("vigil-stream-stop".into())
                .spawn(move || {
                    h.join();
                    let _ = tx.send(());
                });
        }
        let end = Instant::now() + deadline;
        for _ in 0..n {
            if rx.recv_deadline(end).is_err() {
                tracing::warn!("a stream did not stop in time (decoder blocked in a read)");
                break;
            }
        }
    }
}

fn view(e: &Entry) -> StreamView {
    let (decoded, processed, skipped, dropped, last_ms) = e.stats().map_or((0, 0, 0, 0, 0), |s| {
        (
            s.decoded.load(Ordering::Relaxed),
            s.processed.load(Ordering::Relaxed),
            s.skipped.load(Ordering::Relaxed),
            s.dropped(),
            s.last_frame_unix_ms.load(Ordering::Relaxed),
        )
    });
    let state = e.status.state();
    StreamView {
        id: e.cfg.id.clone(),
        url: mask_url(&e.cfg.url),
        state,
        fps_in: round2(e.status.fps_in()),
        fps_processed: round2(e.status.fps_processed()),
        frames_dropped: dropped,
        frames_decoded: decoded,
        frames_processed: processed,
        frames_skipped: skipped,
        reconnects: e.status.reconnects(),
        last_frame_at: (last_ms > 0).then(|| {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(last_ms))
                .to_string()
        }),
        blocked: e.status.blocked(),
        error: if state == StreamState::Running {
            None
        } else {
            e.status.error()
        },
    }
}

/// The overlays of a live view, as configured (`units` = `px` or `norm`).
#[derive(Debug, Clone, Serialize)]
pub struct LiveRules {
    pub zones: Vec<toml::Table>,
    pub lines: Vec<toml::Table>,
}

/// Answer of `POST /v1/streams/{id}/baseline`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BaselineSaved {
    pub stream: String,
    /// Where the baseline was written (loaded again when the daemon starts).
    pub path: String,
    /// Detections in the saved window.
    pub detections: u64,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The stream's zones and lines, checked, as an event generator; errors name
/// the key (`streams[door].zones[0].points: …`).
pub fn event_generator(cfg: &StreamConfig) -> Result<EventGenerator, String> {
    let key = format!("streams[{}]", cfg.id);
    let join = |v: Vec<vigil_core::config::InvalidValue>| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let zones = zones_from_tables(&key, &cfg.zones).map_err(join)?;
    let lines = lines_from_tables(&key, &cfg.lines).map_err(join)?;
    let problems = vigil_events::validate_all(&key, &zones, &lines);
    if !problems.is_empty() {
        return Err(join(problems));
    }
    Ok(EventGenerator::new(
        vigil_core::StreamId(cfg.id.clone()),
        zones,
        lines,
    ))
}

fn exists(id: &str) -> ApiError {
    ApiError::Conflict(format!("stream {id:?} already exists"))
}
