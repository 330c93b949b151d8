//! The sink at the end of a camera stream: metrics, events into the durable
//! outbox, and the latest processed frame for `snapshot.jpg`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use vigil_core::{Detection, ImageBgr, TrackId};
use vigil_events::homeassistant::{self, Entities, State};
use vigil_events::{
    Direction, EventGenerator, EventType, FrameMeta, MqttSink, Outbox, SnapshotStore,
};
use vigil_pipeline::{FrameResult, FrameSink, StreamSummary};

use super::live::LiveFeed;
use super::monitor::StreamMonitor;
use super::rules::{Confirmation, Rules, RulesCell};
use super::status::{StreamState, StreamStatus};
use crate::metrics::Metrics;

/// The newest processed frame and what was found in it. Drawing and JPEG
/// encoding happen only when a snapshot is requested, not for every frame.
pub type Latest = Arc<Mutex<Option<(Arc<ImageBgr>, Vec<Detection>)>>>;

/// Where a stream's events go: the durable outbox (which delivers them to
/// every sink: webhooks, MQTT brokers, NATS), the annotated snapshot of each
/// event, and the MQTT connections for Home Assistant states.
#[derive(Clone)]
pub struct EventOutputs {
    pub outbox: Outbox,
    /// `None` when `events.snapshots = false`.
    pub snapshots: Option<SnapshotStore>,
    pub snapshot_quality: u8,
    /// Home Assistant discovery and states (events reach the brokers
    /// through the outbox).
    pub mqtt: Vec<MqttSink>,
    /// The NATS event sink (`queue.publish_events`), connected once NATS
    /// answers.
    pub nats: Option<Arc<vigil_queue::NatsEventSink>>,
    /// The free-space floor: snapshots pause while it is crossed.
    pub storage: Arc<crate::storage::StorageWatch>,
    /// `vigil_events_lost_total`.
    pub lost: prometheus::IntCounter,
}

impl EventOutputs {
    /// Commits events to the outbox, which delivers them to every sink. A
    /// failed write is logged and the stream goes on: losing the camera would
    /// be worse than losing events. True when stored.
    pub fn store(&self, stream: &str, events: &[vigil_events::Event]) -> bool {
        match self.outbox.append(events) {
            Ok(()) => true,
            Err(e) => {
                self.lost.inc_by(events.len() as u64);
                tracing::error!(stream, error = %e, lost = events.len(), "cannot write events to the outbox");
                false
            }
        }
    }
}

pub struct StreamSink {
    id: String,
    metrics: Arc<Metrics>,
    status: Arc<StreamStatus>,
    latest: Latest,
    events: EventGenerator,
    out: EventOutputs,
    /// Drift and camera-health checks; `None` when both are disabled.
    monitor: Option<StreamMonitor>,
    /// The console's live view; encodes only while watched.
    live: Option<Arc<LiveFeed>>,
    /// The stream's live rules and the version `events` was last given.
    rules: Arc<RulesCell>,
    applied: Arc<Rules>,
    confirm: Confirmation,
    /// Home Assistant states, published on change to brokers with discovery.
    ha: HaStates,
}

/// What Home Assistant shows of one stream.
#[derive(Default)]
struct HaStates {
    entities: Entities,
    /// Tracks inside each zone (from `zone.entered`/`zone.left`).
    occupied: HashMap<String, HashSet<TrackId>>,
    /// Crossings per line and direction since the stream started.
    counts: HashMap<(String, Direction), u64>,
    objects: Option<usize>,
}

impl StreamSink {
    pub fn new(
        id: &str,
        metrics: Arc<Metrics>,
        status: Arc<StreamStatus>,
        latest: Latest,
        events: EventGenerator,
        out: EventOutputs,
    ) -> Self {
        Self {
            id: id.to_string(),
            metrics,
            status,
            latest,
            events,
            out,
            monitor: None,
            live: None,
            rules: Arc::default(),
            applied: Arc::default(),
            confirm: Confirmation::default(),
            ha: HaStates::default(),
        }
    }

    /// The stream's rules; the generator must have been built from the
    /// rules the cell holds now.
    pub fn with_rules(mut self, rules: Arc<RulesCell>) -> Self {
        self.applied = rules.load();
        self.rules = rules;
        let current = Arc::clone(&self.applied);
        self.announce(&current);
        self
    }

    fn discovery(&self) -> impl Iterator<Item = &MqttSink> {
        self.out.mqtt.iter().filter(|m| m.discovery())
    }

    fn ha_state(&self, state: &State<'_>) {
        for m in self.discovery() {
            m.ha_state(state, &self.id);
        }
    }

    /// (Re)announces the stream's Home Assistant entities after a start or
    /// a rule edit: removed zones and lines are deleted, current ones get
    /// their configs and present states.
    fn announce(&mut self, rules: &Rules) {
        if self.discovery().next().is_none() {
            return;
        }
        let current = rules.entities();
        let gone = homeassistant::diff(&self.ha.entities, &current);
        for m in self.discovery() {
            m.ha_announce(&self.id, &current, &gone);
        }
        self.ha.occupied.retain(|z, _| current.zones.contains(z));
        self.ha.counts.retain(|(l, _), _| current.lines.contains(l));
        for z in &current.zones {
            let on = self.ha.occupied.get(z).is_some_and(|s| !s.is_empty());
            self.ha_state(&State::Zone(z, on));
        }
        for l in &current.lines {
            for d in [Direction::In, Direction::Out] {
                let n = self.ha.counts.get(&(l.clone(), d)).copied().unwrap_or(0);
                self.ha_state(&State::Line(l, d, n));
            }
        }
        self.ha_state(&State::Objects(self.ha.objects.unwrap_or(0)));
        self.ha.entities = current;
    }

    /// Publishes the Home Assistant states a processed frame changed.
    fn update_ha(&mut self, objects: usize, events: &[vigil_events::Event]) {
        if self.discovery().next().is_none() {
            return;
        }
        if self.ha.objects != Some(objects) {
            self.ha.objects = Some(objects);
            self.ha_state(&State::Objects(objects));
        }
        for e in events {
            match (e.kind, &e.zone, &e.line, e.direction, e.track_id) {
                (EventType::ZoneEntered | EventType::ZoneLeft, Some(z), _, _, Some(id)) => {
                    let set = self.ha.occupied.entry(z.clone()).or_default();
                    let was = !set.is_empty();
                    if e.kind == EventType::ZoneEntered {
                        set.insert(id);
                    } else {
                        set.remove(&id);
                    }
                    let now = !set.is_empty();
                    if was != now {
                        self.ha_state(&State::Zone(z, now));
                    }
                }
                (EventType::LineCrossed, _, Some(l), Some(d), _) => {
                    let n = self.ha.counts.entry((l.clone(), d)).or_insert(0);
                    *n += 1;
                    let n = *n;
                    self.ha_state(&State::Line(l, d, n));
                }
                _ => {}
            }
        }
    }

    pub fn with_live(mut self, live: Arc<LiveFeed>) -> Self {
        self.live = Some(live);
        self
    }

    pub fn with_monitor(mut self, monitor: Option<StreamMonitor>) -> Self {
        self.monitor = monitor;
        self
    }

    /// Encodes the annotated frame once and stores it for every event, then
    /// points each event's `snapshot_url` at it. Runs before the outbox write
    /// so a stored URL always had its file; a failure only loses the URL.
    fn snapshot(&self, r: &FrameResult, events: &mut [vigil_events::Event]) {
        let Some(store) = &self.out.snapshots else {
            return;
        };
        // Below the free-space floor the event is still recorded, without
        // its picture (`storage.low` said so).
        if self.out.storage.is_low() {
            return;
        }
        let mut img = (*r.frame.image).clone();
        vigil_video::draw_detections(&mut img, &r.objects);
        let saved = vigil_video::encode_jpeg(&img, self.out.snapshot_quality)
            .map_err(|e| e.to_string())
            .and_then(|jpeg| {
                let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
                store.save(&ids, &jpeg).map_err(|e| e.to_string())
            });
        match saved {
            Ok(()) => {
                for e in events.iter_mut() {
                    e.snapshot_url = Some(SnapshotStore::url(&e.id));
                }
            }
            Err(e) => {
                tracing::warn!(stream = %self.id, error = %e, "cannot save the event snapshot");
            }
        }
    }

    /// Turns a processed frame's confirmed tracks into events and commits them
    /// to the outbox before anything is sent. A failed write is logged and the
    /// stream goes on: losing the camera would be worse than losing events.
    fn emit(&mut self, r: &FrameResult) {
        let meta = FrameMeta {
            width: r.frame.image.width(),
            height: r.frame.image.height(),
            pts_ms: r.frame.pts.0,
            at: r.frame.captured_at,
        };
        // A live edit is picked up here, between two frames: same tracks,
        // new zones and lines.
        let rules = self.rules.load();
        if !Arc::ptr_eq(&rules, &self.applied) {
            self.events
                .set_rules(rules.zones.clone(), rules.lines.clone());
            self.applied = Arc::clone(&rules);
            self.announce(&rules);
        }
        let released = self.confirm.release(&rules, &r.objects, &r.ended_tracks);
        let mut events =
            self.events
                .on_objects(&meta, &released, &r.started_tracks, &r.ended_tracks);
        // Home Assistant follows every event, whatever `events.types` keeps.
        self.update_ha(released.len(), &events);
        events.retain(|e| rules.raises(e.kind));
        if events.is_empty() {
            return;
        }
        self.snapshot(r, &mut events);
        if self.out.store(&self.id, &events) {
            for e in &events {
                self.metrics
                    .events_total
                    .with_label_values(&[e.kind.as_str()])
                    .inc();
            }
        }
    }
}

impl FrameSink for StreamSink {
    fn on_frame(&mut self, r: FrameResult) -> Result<(), vigil_pipeline::PipelineError> {
        self.metrics.observe_frame(Some(&self.id), &r);
        if let Some(m) = &mut self.monitor {
            let alerts: Vec<_> = m
                .on_frame(&r)
                .iter()
                .map(super::monitor::to_event)
                .collect();
            if !alerts.is_empty() {
                // Already counted by the monitor's report.
                self.out.store(&self.id, &alerts);
            }
        }
        if r.processed {
            self.emit(&r);
            if let Some(live) = &self.live {
                live.offer(&r);
            }
            let mut slot = self.latest.lock().unwrap_or_else(|p| p.into_inner());
            *slot = Some((Arc::clone(&r.frame.image), r.objects));
        }
        Ok(())
    }

    fn finish(&mut self, summary: &StreamSummary) -> Result<(), vigil_pipeline::PipelineError> {
        match &summary.error {
            Some(e) => self.status.set_state(StreamState::Failed, Some(e)),
            None if self.status.state() != StreamState::Failed => {
                self.status.set_state(StreamState::Stopped, None);
            }
            None => {}
        }
        Ok(())
    }
}
