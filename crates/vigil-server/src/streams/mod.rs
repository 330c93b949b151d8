//! Camera streams: configured at start-up or added at run time, each a
//! [`ReconnectingSource`] feeding the shared engine and a [`StreamSink`].
//!
//! The set of streams and their settings is durable state ([`Registry`]):
//! every add, edit and delete is committed to SQLite before it is applied.
//! Every add, edit and restore goes through one check ([`Streams::check`]).
//! Rule edits (zones, lines, filters, masks, events) swap the stream's
//! [`RulesCell`] and apply from the next frame without touching the decoder
//! or the tracker; any other change restarts just that stream.

mod live;
mod monitor;
mod patch;
mod registry;
mod rules;
mod sink;
mod source;
mod status;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::config::{is_network_url, MotionConfig, StreamConfig, TrackerConfig};
use vigil_core::{Detection, ImageBgr};
use vigil_pipeline::{Engine, Priority, SkipPolicy, StreamHandle, StreamOptions, StreamStats};
use vigil_video::mask_url;
use vigil_video::{VideoError, VideoSource};

use vigil_events::EventGenerator;

use crate::metrics::Metrics;
use crate::source_policy::{check_stream_source, CheckedSource, SourcePolicy, GENERIC_REFUSAL};
pub use live::{LiveFeed, LiveFrame};
pub use monitor::Monitoring;
use monitor::{SharedDrift, StreamMonitor};
pub use patch::{nested_null, null_refused};
pub use registry::{Origin, Registry, RegistryError};
use rules::{FilteredTracker, Rules, RulesCell};
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
    /// Frames decoded per second, over the last few seconds.
    pub fps_in: f64,
    /// Frames run through the detector per second, over the last few
    /// seconds.
    pub fps_processed: f64,
    /// Frames dropped from the ring because the pipeline was behind.
    pub frames_dropped: u64,
    pub frames_decoded: u64,
    pub frames_processed: u64,
    pub frames_skipped: u64,
    /// Frames the skip policy selected but motion gating left out because
    /// nothing moved (`vigil_frames_total{outcome="still"}`).
    pub frames_still: u64,
    /// The stream's `[streams.motion]` settings (`enabled` says whether
    /// motion gating is on); the same object a `PATCH` edits.
    #[schema(value_type = Object)]
    pub motion: MotionConfig,
    /// The scheduler class: cameras are always `live` (served before jobs).
    pub priority: &'static str,
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

/// The window rates are averaged over. A per-second rate of a camera run at
/// `fps = 0.5` alternates between 0 and 1 (and showed "0.0 fps" on the
/// console half the time); five seconds smooths that while still showing a
/// stall within seconds.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Counters at the previous sample, to turn totals into rates and metric
/// increments.
#[derive(Default, Clone, Copy)]
struct Sample {
    decoded: u64,
    processed: u64,
    skipped: u64,
    still: u64,
    dropped: u64,
}

/// Errors of the stream supervisor; the HTTP layer maps them to statuses.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A setting is invalid; the message names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("no stream {0:?}")]
    NotFound(String),
    #[error("stream {0:?} already exists")]
    Exists(String),
    /// `If-Match` named another revision than the stored one.
    #[error("stream {id:?} was changed since that ETag (now {current}); GET it again and reapply the change")]
    Stale { id: String, current: String },
    /// The request conflicts with the stream's state.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Internal(String),
}

/// One stream in full, as `GET`/`PATCH /v1/streams/{id}` answer, in one
/// flat object: its status (the fields of `GET /v1/streams`), where it came
/// from, its revision, and every setting of its configuration (the keys of
/// a `POST /v1/streams` body, defaults filled in, `url` masked) — the keys
/// a `PATCH` edits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamDetail {
    #[serde(flatten)]
    pub status: StreamView,
    /// `config` (a `[[streams]]` entry, perhaps edited since) or `api`.
    pub source: Origin,
    /// Changes with every stored edit; also the `ETag` header (quoted).
    pub revision: u64,
    /// The settings other than `id`, `url` and `motion` (which the status
    /// carries).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl StreamDetail {
    /// The `ETag` of this revision.
    pub fn etag(&self) -> String {
        etag(self.revision)
    }
}

fn etag(revision: u64) -> String {
    format!("\"{revision}\"")
}

/// What [`Streams::check`] proved and built: the stream's rules and tracker
/// settings, ready to run.
pub struct Checked {
    rules: Rules,
    tracker: TrackerConfig,
}

struct Entry {
    cfg: StreamConfig,
    origin: Origin,
    revision: u64,
    /// Swapped whole by rule edits; read once per frame by the sink and the
    /// tracker stage.
    rules: Arc<RulesCell>,
    status: Arc<StreamStatus>,
    stop: Arc<AtomicBool>,
    handle: Option<StreamHandle>,
    latest: Latest,
    prev: Sample,
    /// Samples of the last [`RATE_WINDOW`], oldest first, for the rates.
    window: std::collections::VecDeque<(Instant, Sample)>,
    /// Shared with the sink; the API saves its window as the baseline.
    drift: Option<SharedDrift>,
    /// Turns the decoder's error count into `decode_error` anomalies.
    decode_watch: Option<vigil_monitor::DecodeErrorWatch>,
    /// The console's live view of this stream (`None` for a failed one).
    live: Option<Arc<LiveFeed>>,
}

impl Entry {
    /// A stream with no pipeline (paused, or failed before it started).
    fn idle(stored: Stored, status: Arc<StreamStatus>, rules: Rules) -> Self {
        Entry {
            cfg: stored.cfg,
            origin: stored.origin,
            revision: stored.revision,
            rules: Arc::new(RulesCell::new(rules)),
            status,
            stop: Arc::new(AtomicBool::new(true)),
            handle: None,
            latest: Arc::default(),
            prev: Sample::default(),
            window: std::collections::VecDeque::new(),
            drift: None,
            decode_watch: None,
            live: None,
        }
    }

    fn stats(&self) -> Option<&Arc<StreamStats>> {
        self.handle.as_ref().map(StreamHandle::stats)
    }

    /// Stops the pipeline; its threads wind down in the background (a
    /// decoder may sit in a read for up to the stall timeout).
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.stop();
            let id = self.cfg.id.clone();
            let _ = std::thread::Builder::new()
                .name(format!("vigil-stop-{id}"))
                .spawn(move || drop(h.join()));
        }
    }
}

use registry::Stored;

pub struct Streams {
    engine: Arc<Engine>,
    tracker: TrackerConfig,
    metrics: Arc<Metrics>,
    out: EventOutputs,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// `[drift]`/`[health]`; set by `with_monitoring`, defaults otherwise.
    monitoring: Monitoring,
    registry: Registry,
    /// What API clients may open (`server.stream_*`, `server.media_root`).
    policy: Arc<SourcePolicy>,
    /// `server.max_streams`.
    max_streams: usize,
    /// `server.max_pixels`: larger camera frames fail the stream.
    max_pixels: u64,
    /// `server.ring_budget_mb` in bytes: a stream's ring holds at most this
    /// many bytes of frames (see [`ring_capacity`]).
    ring_budget: u64,
    /// Serialises adds, edits and deletes, so check → store → apply is one
    /// step and a stale `If-Match` is always caught.
    edits: Mutex<()>,
    /// Engine scheduler totals at the previous sample (live, interactive,
    /// background), for `vigil_scheduled_frames_total`.
    scheduled: Mutex<[u64; 3]>,
}

impl Streams {
    pub fn new(
        engine: Arc<Engine>,
        tracker: TrackerConfig,
        metrics: Arc<Metrics>,
        out: EventOutputs,
        registry: Registry,
    ) -> Self {
        Self {
            engine,
            tracker,
            metrics,
            out,
            entries: Mutex::new(BTreeMap::new()),
            monitoring: Monitoring::from_config(&vigil_core::config::Config::default()),
            registry,
            policy: Arc::new(SourcePolicy::default()),
            max_streams: usize::MAX,
            max_pixels: u64::MAX,
            ring_budget: u64::MAX,
            edits: Mutex::new(()),
            scheduled: Mutex::new([0; 3]),
        }
    }

    /// The source policy for API streams and the cap on streams (`[server]`).
    pub fn with_limits(mut self, server: &vigil_core::config::ServerConfig) -> Self {
        self.policy = Arc::new(SourcePolicy::from_config(server));
        self.max_streams = server.max_streams;
        self.max_pixels = server.max_pixels;
        self.ring_budget = server.ring_budget_mb.saturating_mul(1024 * 1024);
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
    pub fn save_baseline(&self, id: &str) -> Result<BaselineSaved, StreamError> {
        let drift = self
            .entries()
            .get(id)
            .ok_or_else(|| StreamError::NotFound(id.to_string()))?
            .drift
            .clone()
            .ok_or_else(|| {
                StreamError::Conflict("drift monitoring is disabled (drift.enabled)".into())
            })?;
        let window = drift
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .window()
            .clone();
        if window.detections == 0 {
            return Err(StreamError::Conflict(format!(
                "stream {id:?} has no detections in its drift window yet"
            )));
        }
        let path = self.monitoring.baseline_path(id);
        window
            .save(&path)
            .map_err(|e| StreamError::Internal(e.to_string()))?;
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

    fn edit_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.edits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The one check every add, edit and restore goes through: the fields,
    /// the rules, the tracker overrides and, for streams from the API, the
    /// source policy. Errors name the field (`streams[door].lines[0].a: …`).
    pub fn check(&self, cfg: &mut StreamConfig, origin: Origin) -> Result<Checked, StreamError> {
        let key = format!("streams[{}]", cfg.id);
        let mut problems = cfg.validate(&key);
        let rules = Rules::compile(cfg, &key)
            .map_err(|p| problems.extend(p))
            .ok();
        let tracker = cfg
            .tracker_config(&self.tracker, &key)
            .map_err(|p| problems.extend(p))
            .ok();
        if origin == Origin::Api {
            // The hardening issue's policy: what an API client may open.
            match check_stream_source(&cfg.url, &self.policy) {
                // Open exactly the file that was checked: a relative name is
                // resolved under media_root, never against the working directory.
                Ok(CheckedSource::File(canon)) => cfg.url = canon.to_string_lossy().into_owned(),
                Ok(CheckedSource::Network { .. }) => {}
                Err(e) => {
                    tracing::warn!(stream = %cfg.id, url = %mask_url(&cfg.url), reason = %e, "stream source refused");
                    problems.push(vigil_core::config::InvalidValue::new(
                        format!("{key}.url"),
                        e.client_message(),
                    ));
                }
            }
        }
        match (rules, tracker) {
            (Some(rules), Some(tracker)) if problems.is_empty() => Ok(Checked { rules, tracker }),
            _ => Err(StreamError::Invalid(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

    /// Starts the streams stored in the registry after merging the config
    /// file's `streams` into it (see [`registry`] for which wins). A stored
    /// stream that no longer passes the check is listed as `failed` with
    /// the reason, never started.
    pub fn restore(&self, config: &[StreamConfig]) -> Result<(), StreamError> {
        let _edit = self.edit_lock();
        for mut stored in self.registry.reconcile(config)? {
            let id = stored.cfg.id.clone();
            let entry = match self.check(&mut stored.cfg, stored.origin) {
                Ok(checked) => {
                    // Not strict: a missing file is listed as failed.
                    let first = self.open_first(&stored.cfg, false).unwrap_or_default();
                    self.launch(stored, checked, first)?
                }
                Err(e) => {
                    tracing::error!(stream = %id, error = %e, "stored stream is invalid; not started");
                    let status = self.new_status(&id);
                    status.set_state(StreamState::Failed, Some(&e.to_string()));
                    Entry::idle(stored, status, Rules::default())
                }
            };
            self.entries().insert(id, entry);
        }
        Ok(())
    }

    /// Adds a stream through the API: checked, stored, then started.
    /// Blocking: a file is opened here, so a bad path is a 400.
    pub fn add(&self, mut cfg: StreamConfig) -> Result<StreamDetail, StreamError> {
        let _edit = self.edit_lock();
        let checked = self.check(&mut cfg, Origin::Api)?;
        {
            let entries = self.entries();
            if entries.contains_key(&cfg.id) {
                return Err(StreamError::Exists(cfg.id));
            }
            if entries.len() >= self.max_streams {
                return Err(StreamError::Conflict(format!(
                    "server.max_streams ({}) streams are running; remove one first",
                    self.max_streams
                )));
            }
        }
        let first = self.open_first(&cfg, true)?;
        let revision = self.registry.insert_api(&cfg)?;
        let id = cfg.id.clone();
        let entry = self.launch(
            Stored {
                cfg,
                origin: Origin::Api,
                revision,
            },
            checked,
            first,
        )?;
        let detail = detail(&entry);
        self.entries().insert(id, entry);
        Ok(detail)
    }

    /// Applies an RFC 7396 merge patch to a stream's configuration. The
    /// result goes through the same check as an add; nothing changes unless
    /// it passes and is stored. `if_match` is the request's `If-Match`.
    pub fn patch(
        &self,
        id: &str,
        merge: &serde_json::Value,
        if_match: Option<&str>,
    ) -> Result<StreamDetail, StreamError> {
        let _edit = self.edit_lock();
        let (current, origin, revision) = {
            let entries = self.entries();
            let e = entries
                .get(id)
                .ok_or_else(|| StreamError::NotFound(id.to_string()))?;
            (e.cfg.clone(), e.origin, e.revision)
        };
        // A bad patch is a 400 whatever its If-Match says: it could never
        // succeed, so telling the client to re-read first would mislead.
        let mut next = patch::apply(&current, merge)?;
        let checked = self.check(&mut next, origin)?;
        if let Some(given) = if_match {
            if !patch::etag_matches(given, &etag(revision)) {
                return Err(StreamError::Stale {
                    id: id.to_string(),
                    current: etag(revision),
                });
            }
        }
        if next == current {
            return self.detail(id);
        }
        let restart = patch::needs_restart(&current, &next);
        let first = if restart {
            self.open_first(&next, true)?
        } else {
            None
        };
        let revision = self.registry.update(&next)?;
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(id) else {
            return Err(StreamError::NotFound(id.to_string()));
        };
        if restart {
            tracing::info!(stream = %id, "stream settings changed; restarting the stream");
            entry.stop();
            entry.status.set_state(StreamState::Stopped, None);
            let stored = Stored {
                cfg: next,
                origin,
                revision,
            };
            *entry = self.launch(stored, checked, first)?;
        } else {
            tracing::info!(stream = %id, "stream rules changed; applied from the next frame");
            entry.rules.store(checked.rules);
            entry.cfg = next;
            entry.revision = revision;
        }
        Ok(detail(entry))
    }

    /// Opens a file source up front (so a bad path is reported and the real
    /// frame rate is known); network sources connect on the decoder thread.
    /// With `strict` an error is returned, else logged (the stream then
    /// shows the error while it keeps retrying).
    fn open_first(
        &self,
        cfg: &StreamConfig,
        strict: bool,
    ) -> Result<Option<VideoSource>, StreamError> {
        if !cfg.enabled || is_network_url(&cfg.url) {
            return Ok(None);
        }
        match ReconnectingSource::open(cfg, strict, self.max_pixels) {
            Ok(s) => Ok(Some(s)),
            Err(e) if strict => {
                // The detail stays in the log: it would tell a client which
                // local files or ports exist. Same text as a policy refusal.
                tracing::warn!(stream = %cfg.id, reason = %e, "stream source cannot be opened");
                Err(StreamError::Invalid(format!(
                    "streams[{}].url: url: {GENERIC_REFUSAL}",
                    cfg.id
                )))
            }
            Err(e) => {
                tracing::error!(stream = %cfg.id, error = %e, "cannot open stream source");
                Ok(None)
            }
        }
    }

    fn new_status(&self, id: &str) -> Arc<StreamStatus> {
        self.metrics.add_stream(id);
        Arc::new(StreamStatus::new(id, Arc::clone(&self.metrics)))
    }

    /// Builds the running pipeline of a checked stream (or an idle entry
    /// for a paused one).
    fn launch(
        &self,
        stored: Stored,
        checked: Checked,
        first: Option<VideoSource>,
    ) -> Result<Entry, StreamError> {
        let cfg = stored.cfg.clone();
        let status = self.new_status(&cfg.id);
        if !cfg.enabled {
            status.set_state(StreamState::Stopped, Some("paused (enabled = false)"));
            tracing::info!(stream = %cfg.id, "stream paused");
            return Ok(Entry::idle(stored, status, checked.rules));
        }
        if first.is_none() && !is_network_url(&cfg.url) {
            // A file that could not be opened (restore, non-strict).
            return match ReconnectingSource::open(&cfg, false, self.max_pixels) {
                Ok(f) => self.launch(stored, checked, Some(f)),
                Err(e) => {
                    let msg = match e {
                        VideoError::FrameTooLarge { width, height, .. } => {
                            source::too_large_message(width, height, self.max_pixels)
                        }
                        e => e.to_string(),
                    };
                    status.set_state(StreamState::Failed, Some(&msg));
                    Ok(Entry::idle(stored, status, checked.rules))
                }
            };
        }
        let fps = first
            .as_ref()
            .map_or(source::ASSUMED_LIVE_FPS, |s| s.info().fps);
        // A file's frame size is known; a camera's is not until it answers,
        // so the largest it may send (`server.max_pixels`) is assumed.
        let frame_pixels = first.as_ref().map_or(self.max_pixels, |s| {
            u64::from(s.info().width) * u64::from(s.info().height)
        });
        let ring = ring_capacity(cfg.ring_capacity, frame_pixels, self.ring_budget);
        if ring < cfg.ring_capacity {
            tracing::info!(
                stream = %cfg.id,
                ring_capacity = cfg.ring_capacity,
                frames = ring,
                "ring shortened to fit server.ring_budget_mb"
            );
        }
        let inner = vigil_pipeline::tracker(&checked.tracker, fps)
            .map_err(|e| StreamError::Internal(e.to_string()))?;
        let generator = EventGenerator::new(
            vigil_core::StreamId(cfg.id.clone()),
            checked.rules.zones.clone(),
            checked.rules.lines.clone(),
        );
        let rules = Arc::new(RulesCell::new(checked.rules));
        let tracker = FilteredTracker::new(inner, Arc::clone(&rules), &cfg.id, &self.metrics);
        let stop = Arc::new(AtomicBool::new(false));
        let source =
            ReconnectingSource::new(cfg.clone(), first, Arc::clone(&status), Arc::clone(&stop))
                .with_policy((stored.origin == Origin::Api).then(|| Arc::clone(&self.policy)))
                .with_max_pixels(self.max_pixels);
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
        .with_rules(Arc::clone(&rules))
        .with_monitor(monitor);
        let live = Arc::new(LiveFeed::new(&cfg.id, Arc::clone(&self.metrics)));
        let sink = sink.with_live(Arc::clone(&live));
        let mut opts = StreamOptions::new(cfg.id.clone());
        opts.ring_capacity = ring;
        opts.skip = SkipPolicy::from_options(cfg.every, cfg.fps);
        opts.motion = Some(cfg.motion.clone());
        opts.priority = Some(Priority::Live);
        tracing::info!(stream = %cfg.id, url = %mask_url(&cfg.url), source = stored.origin.as_str(), "stream added");
        let handle = self.engine.add_stream(
            Box::new(source),
            Box::new(sink),
            Some(Box::new(tracker)),
            opts,
        );
        Ok(Entry {
            rules,
            stop,
            handle: Some(handle),
            latest,
            drift,
            decode_watch: self.monitoring.decode_watch(&cfg.id),
            live: Some(live),
            ..Entry::idle(stored, status, Rules::default())
        })
    }

    /// Stops and forgets a stream for good (also across restarts).
    pub fn remove(&self, id: &str) -> Result<(), StreamError> {
        let _edit = self.edit_lock();
        if !self.entries().contains_key(id) {
            return Err(StreamError::NotFound(id.to_string()));
        }
        self.registry.delete(id)?;
        let Some(mut entry) = self.entries().remove(id) else {
            return Err(StreamError::NotFound(id.to_string()));
        };
        entry.stop();
        entry.status.set_state(StreamState::Stopped, None);
        let entities = entry.rules.load().entities();
        for m in &self.out.mqtt {
            m.ha_remove(id, &entities);
        }
        self.metrics.remove_stream(id);
        tracing::info!(stream = %id, "stream removed");
        Ok(())
    }

    pub fn list(&self) -> Vec<StreamView> {
        self.entries().values().map(view).collect()
    }

    /// One stream in full, for `GET /v1/streams/{id}`.
    pub fn detail(&self, id: &str) -> Result<StreamDetail, StreamError> {
        self.entries()
            .get(id)
            .map(detail)
            .ok_or_else(|| StreamError::NotFound(id.to_string()))
    }

    /// The latest processed frame and its objects; `Ok(None)` before the first.
    #[allow(clippy::type_complexity)]
    pub fn latest(&self, id: &str) -> Result<Option<(Arc<ImageBgr>, Vec<Detection>)>, StreamError> {
        let entries = self.entries();
        let e = entries
            .get(id)
            .ok_or_else(|| StreamError::NotFound(id.to_string()))?;
        let slot = e.latest.lock().unwrap_or_else(|p| p.into_inner());
        Ok(slot.clone())
    }

    /// The stream's live feed and the zones and lines to draw over it.
    pub fn live(&self, id: &str) -> Result<(Arc<LiveFeed>, LiveRules), StreamError> {
        let entries = self.entries();
        let e = entries
            .get(id)
            .ok_or_else(|| StreamError::NotFound(id.to_string()))?;
        let feed = e.live.clone().ok_or_else(|| {
            StreamError::Conflict(format!(
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
        self.sample_scheduler();
        let mut entries = self.entries();
        for (id, e) in entries.iter_mut() {
            let Some(stats) = e.stats() else { continue };
            let now = Sample {
                decoded: stats.decoded.load(Ordering::Relaxed),
                processed: stats.processed.load(Ordering::Relaxed),
                skipped: stats.skipped.load(Ordering::Relaxed),
                still: stats.still.load(Ordering::Relaxed),
                dropped: stats.dropped(),
            };
            let d = |a: u64, b: u64| a.saturating_sub(b);
            for (outcome, n) in [
                ("decoded", d(now.decoded, e.prev.decoded)),
                ("processed", d(now.processed, e.prev.processed)),
                ("skipped", d(now.skipped, e.prev.skipped)),
                ("still", d(now.still, e.prev.still)),
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
            let at = Instant::now();
            while e
                .window
                .front()
                .is_some_and(|(t, _)| at.duration_since(*t) > RATE_WINDOW)
            {
                e.window.pop_front();
            }
            let (fps_in, fps_processed) = match e.window.front() {
                Some((t, old)) => {
                    let dt = at.duration_since(*t).as_secs_f64().max(1e-3);
                    (
                        d(now.decoded, old.decoded) as f64 / dt,
                        d(now.processed, old.processed) as f64 / dt,
                    )
                }
                None => (0.0, 0.0),
            };
            e.window.push_back((at, now));
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
        }
    }

    /// `vigil_scheduled_frames_total{priority}` from the engine's totals.
    fn sample_scheduler(&self) {
        let mut prev = self.scheduled.lock().unwrap_or_else(|p| p.into_inner());
        for (i, (p, n)) in self
            .engine
            .scheduler_stats()
            .totals()
            .into_iter()
            .enumerate()
        {
            let delta = n.saturating_sub(prev[i]);
            if delta > 0 {
                self.metrics
                    .scheduled_frames_total
                    .with_label_values(&[p.as_str()])
                    .inc_by(delta);
            }
            prev[i] = n;
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
    let (decoded, processed, skipped, still, dropped, last_ms) =
        e.stats().map_or((0, 0, 0, 0, 0, 0), |s| {
            (
                s.decoded.load(Ordering::Relaxed),
                s.processed.load(Ordering::Relaxed),
                s.skipped.load(Ordering::Relaxed),
                s.still.load(Ordering::Relaxed),
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
        frames_still: still,
        motion: e.cfg.motion.clone(),
        priority: Priority::Live.as_str(),
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

/// `vigil config check`'s view of one `[[streams]]` entry: its rules and
/// tracker overrides (the rest is checked by `vigil-core`).
pub fn check_config_stream(
    cfg: &StreamConfig,
    tracker: &TrackerConfig,
) -> Result<(), vigil_core::config::InvalidValues> {
    let key = format!("streams[{}]", cfg.id);
    Rules::compile(cfg, &key).map_err(vigil_core::config::InvalidValues)?;
    cfg.tracker_config(tracker, &key)
        .map_err(vigil_core::config::InvalidValues)?;
    Ok(())
}

fn detail(e: &Entry) -> StreamDetail {
    let mut settings = match serde_json::to_value(&e.cfg) {
        Ok(serde_json::Value::Object(m)) => m,
        // A config is always an object; an empty one only hides settings.
        _ => serde_json::Map::new(),
    };
    // The status carries these three; one key each in the flat object.
    settings.remove("id");
    settings.remove("url");
    settings.remove("motion");
    StreamDetail {
        status: view(e),
        source: e.origin,
        revision: e.revision,
        settings,
    }
}

/// Frames a stream's ring may hold: its `ring_capacity`, shortened so that
/// frames of `frame_pixels` (BGR, 3 bytes a pixel) fit in `budget` bytes,
/// and never below 1. So 1,024 4K frames (25 MB each) cannot be queued.
pub(crate) fn ring_capacity(configured: usize, frame_pixels: u64, budget: u64) -> usize {
    let frame_bytes = frame_pixels.saturating_mul(3).max(1);
    let fit = usize::try_from(budget / frame_bytes).unwrap_or(usize::MAX);
    configured.min(fit).max(1)
}

#[cfg(test)]
mod ring_tests {
    use super::ring_capacity;

    #[test]
    fn rings_are_shortened_to_the_byte_budget_never_below_one() {
        let mib = 1024 * 1024;
        // 1,024 4K frames would be 25 GB; 1 GiB holds 43 of them.
        assert_eq!(ring_capacity(1024, 3840 * 2160, 1024 * mib), 43);
        assert_eq!(ring_capacity(8, 1920 * 1080, 1024 * mib), 8);
        assert_eq!(ring_capacity(16, 7680 * 4320, 1024 * mib), 10);
        assert_eq!(ring_capacity(8, 7680 * 4320, mib), 1);
        assert_eq!(ring_capacity(8, 0, 1), 1);
    }
}
