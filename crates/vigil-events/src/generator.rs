//! Per-stream event generation from confirmed tracks.
//!
//! # Rules
//!
//! Only what the caller passes counts: pass **confirmed** tracks matched in
//! this processed frame (`TrackOutput::tracks`, or `FrameResult::objects` of a
//! processed frame with tracking on). Unconfirmed tentative tracks never reach
//! the generator, so they never produce events. Skipped frames (predicted
//! boxes) must not be passed: debounce counts observations, not predictions.
//!
//! * `track.started`: for each id in `started`, once it is seen in `tracks`.
//! * `track.ended`: for each id in `ended`, with the last observed box, label
//!   and score; the track's per-zone and per-line state is then dropped, so
//!   memory is bounded by the number of live tracks. A track that ends inside a
//!   zone first gets `zone.left`, so `entered - left` is always the occupancy.
//! * Zones: the anchor point is tested against the polygon. A track starts
//!   "outside"; the state flips (and `zone.entered` / `zone.left` is emitted)
//!   after `min_frames` consecutive observations on the other side. Frames in
//!   which the track is not passed neither advance nor reset that count.
//! * Lines, with hysteresis `d = min_distance` (default 2 % of the frame
//!   diagonal): the anchor is on a side only when at least `d` px from the
//!   line; inside the band nothing changes. When the side differs from the
//!   last committed side and the movement from the last position on the
//!   committed side to now passes within the segment's extent, `line.crossed`
//!   is emitted with the direction, and the new side is committed. A crossing
//!   in the opposite direction within `cooldown_frames` processed frames of a
//!   counted one is held back (the committed side stays); if the track is
//!   still on that side once the cooldown has passed, it is counted then. A
//!   track jittering on a line therefore counts at most once per cooldown.
//! * Class and score filters: a track whose label is not in `classes` is
//!   ignored by that zone/line; an observation with score below `min_score`
//!   is ignored (as if the track were not passed in that frame).
//!
//! Order within a frame: `track.started`, then zone and line events per track
//! in input order, then for ended tracks `zone.left` and `track.ended`.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use vigil_core::{BBox, Detection, StreamId, Track, TrackId};

use crate::config::{LineConfig, Units, ZoneConfig};
use crate::event::{Direction, Event, EventType};
use crate::geometry::{crosses_segment, point_in_polygon, signed_distance};

/// Tracks unseen for this many processed frames are forgotten even without
/// an `ended` id, a safety net so a tracker bug cannot grow memory forever.
const STALE_FRAMES: u64 = 100_000;

/// The frame an update belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameMeta {
    /// Source frame size in pixels; normalised zones and lines are scaled by it.
    pub width: u32,
    pub height: u32,
    pub pts_ms: f64,
    /// Wall-clock capture time (`Frame::captured_at`), reported as `at`.
    pub at: SystemTime,
}

/// One confirmed track's observation, whatever type carried it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub id: TrackId,
    pub label: &'a str,
    pub score: f32,
    pub bbox: BBox,
}

impl<'a> From<&'a Track> for Observation<'a> {
    fn from(t: &'a Track) -> Self {
        Observation {
            id: t.id,
            label: &t.label,
            score: t.score,
            bbox: t.bbox,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

#[derive(Debug, Default, Clone)]
struct ZoneState {
    inside: bool,
    streak: u32,
}

#[derive(Debug, Default, Clone)]
struct LineState {
    committed: Option<Side>,
    last_pos: [f32; 2],
    last_count: Option<(u64, Direction)>,
}

#[derive(Debug, Clone)]
struct TrackState {
    label: String,
    score: f32,
    bbox: BBox,
    last_seen: u64,
    zones: Vec<ZoneState>,
    lines: Vec<LineState>,
}

/// Turns a stream's confirmed tracks into events; one per stream, owned by
/// the stream's sink thread (no locking, no I/O).
#[derive(Debug)]
pub struct EventGenerator {
    stream: StreamId,
    zones: Vec<ZoneConfig>,
    lines: Vec<LineConfig>,
    tracks: HashMap<TrackId, TrackState>,
    /// Started ids not yet observed (started but unmatched in that frame).
    pending_start: HashSet<TrackId>,
    frame_no: u64,
}

fn scale(p: [f32; 2], units: Units, w: f32, h: f32) -> [f32; 2] {
    match units {
        Units::Px => p,
        Units::Norm => [p[0] * w, p[1] * h],
    }
}

/// Whether two lines judge sides the same way (names and filters aside).
fn same_geometry(a: &LineConfig, b: &LineConfig) -> bool {
    a.a == b.a
        && a.b == b.b
        && a.units == b.units
        && a.anchor == b.anchor
        && a.min_distance == b.min_distance
}

fn class_ok(classes: &[String], label: &str) -> bool {
    classes.is_empty() || classes.iter().any(|c| c == label)
}

impl EventGenerator {
    /// `zones` and `lines` should have passed [`crate::validate_all`]; invalid
    /// geometry is not rejected here, it simply never matches.
    pub fn new(stream: StreamId, zones: Vec<ZoneConfig>, lines: Vec<LineConfig>) -> Self {
        Self {
            stream,
            zones,
            lines,
            tracks: HashMap::new(),
            pending_start: HashSet::new(),
            frame_no: 0,
        }
    }

    /// Replaces the zones and lines while tracks go on (a live edit). State
    /// follows each rule by name: a zone keeps every track's inside/outside
    /// state (moving a zone then raises the `zone.left`/`zone.entered` the
    /// new shape implies, after `min_frames`); a line whose geometry changed
    /// forgets which side tracks were on, so the next crossing is judged by
    /// the new line alone and moving a line never counts a crossing by
    /// itself. New rules start from scratch; removed ones drop their state.
    pub fn set_rules(&mut self, zones: Vec<ZoneConfig>, lines: Vec<LineConfig>) {
        let zone_map: Vec<Option<usize>> = zones
            .iter()
            .map(|z| self.zones.iter().position(|o| o.name == z.name))
            .collect();
        let line_map: Vec<Option<usize>> = lines
            .iter()
            .map(|l| {
                self.lines
                    .iter()
                    .position(|o| o.name == l.name && same_geometry(o, l))
            })
            .collect();
        for st in self.tracks.values_mut() {
            st.zones = zone_map
                .iter()
                .map(|m| m.and_then(|i| st.zones.get(i).cloned()).unwrap_or_default())
                .collect();
            st.lines = line_map
                .iter()
                .map(|m| m.and_then(|i| st.lines.get(i).cloned()).unwrap_or_default())
                .collect();
        }
        self.zones = zones;
        self.lines = lines;
    }

    /// Live tracks with state (bounded by the tracker's live tracks).
    pub fn tracked(&self) -> usize {
        self.tracks.len()
    }

    /// One processed frame: `tracks` are the confirmed tracks matched in it,
    /// `started` / `ended` the ids the tracker reported for this update.
    pub fn on_frame(
        &mut self,
        frame: &FrameMeta,
        tracks: &[Track],
        started: &[TrackId],
        ended: &[TrackId],
    ) -> Vec<Event> {
        let obs: Vec<Observation<'_>> = tracks.iter().map(Observation::from).collect();
        self.on_observations(frame, &obs, started, ended)
    }

    /// Same as [`Self::on_frame`] for `FrameResult::objects` (detections with
    /// `track_id`); detections without a track id are ignored.
    pub fn on_objects(
        &mut self,
        frame: &FrameMeta,
        objects: &[Detection],
        started: &[TrackId],
        ended: &[TrackId],
    ) -> Vec<Event> {
        let obs: Vec<Observation<'_>> = objects
            .iter()
            .filter_map(|d| {
                d.track_id.map(|id| Observation {
                    id,
                    label: &d.label,
                    score: d.score,
                    bbox: d.bbox,
                })
            })
            .collect();
        self.on_observations(frame, &obs, started, ended)
    }

    /// The general form the other two delegate to.
    pub fn on_observations(
        &mut self,
        frame: &FrameMeta,
        obs: &[Observation<'_>],
        started: &[TrackId],
        ended: &[TrackId],
    ) -> Vec<Event> {
        self.frame_no += 1;
        let n = self.frame_no;
        let (w, h) = (frame.width as f32, frame.height as f32);
        let diag = (w * w + h * h).sqrt();
        let at = humantime::format_rfc3339_millis(frame.at).to_string();
        let mut out = Vec::new();
        self.pending_start.extend(started.iter().copied());
        let mk = |kind: EventType, o: &Observation<'_>| Event {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            stream: self.stream.clone(),
            at: at.clone(),
            pts_ms: frame.pts_ms,
            track_id: Some(o.id),
            label: Some(o.label.to_string()),
            score: Some(o.score),
            bbox: Some(o.bbox),
            zone: None,
            line: None,
            direction: None,
            snapshot_url: None,
            extra: serde_json::Map::new(),
        };

        for o in obs {
            if self.pending_start.remove(&o.id) {
                out.push(mk(EventType::TrackStarted, o));
            }
            let st = self.tracks.entry(o.id).or_insert_with(|| TrackState {
                label: o.label.to_string(),
                score: o.score,
                bbox: o.bbox,
                last_seen: n,
                zones: vec![ZoneState::default(); self.zones.len()],
                lines: vec![LineState::default(); self.lines.len()],
            });
            st.label.clear();
            st.label.push_str(o.label);
            st.score = o.score;
            st.bbox = o.bbox;
            st.last_seen = n;

            for (zc, zs) in self.zones.iter().zip(st.zones.iter_mut()) {
                if !class_ok(&zc.classes, o.label) || o.score < zc.min_score {
                    continue;
                }
                let poly: Vec<[f32; 2]> = zc
                    .points
                    .iter()
                    .map(|p| scale(*p, zc.units, w, h))
                    .collect();
                let inside = point_in_polygon(zc.anchor.point(&o.bbox), &poly);
                if inside == zs.inside {
                    zs.streak = 0;
                    continue;
                }
                zs.streak += 1;
                if zs.streak >= zc.min_frames.max(1) {
                    zs.inside = inside;
                    zs.streak = 0;
                    let kind = if inside {
                        EventType::ZoneEntered
                    } else {
                        EventType::ZoneLeft
                    };
                    let mut e = mk(kind, o);
                    e.zone = Some(zc.name.clone());
                    out.push(e);
                }
            }

            for (lc, ls) in self.lines.iter().zip(st.lines.iter_mut()) {
                if !class_ok(&lc.classes, o.label) || o.score < lc.min_score {
                    continue;
                }
                let a = scale(lc.a, lc.units, w, h);
                let b = scale(lc.b, lc.units, w, h);
                let band = lc.min_distance.unwrap_or(0.02 * diag).max(0.0);
                let p = lc.anchor.point(&o.bbox);
                let s = signed_distance(a, b, p);
                let side = if s >= band && s > 0.0 {
                    Side::Right
                } else if s <= -band && s < 0.0 {
                    Side::Left
                } else {
                    continue;
                };
                let Some(committed) = ls.committed else {
                    ls.committed = Some(side);
                    ls.last_pos = p;
                    continue;
                };
                if side == committed {
                    ls.last_pos = p;
                    continue;
                }
                let dir = if side == Side::Right {
                    Direction::In
                } else {
                    Direction::Out
                };
                if let Some((at_frame, prev)) = ls.last_count {
                    if prev != dir && n - at_frame < u64::from(lc.cooldown_frames) {
                        continue;
                    }
                }
                if crosses_segment(a, b, ls.last_pos, p) {
                    ls.last_count = Some((n, dir));
                    let mut e = mk(EventType::LineCrossed, o);
                    e.line = Some(lc.name.clone());
                    e.direction = Some(dir);
                    out.push(e);
                }
                ls.committed = Some(side);
                ls.last_pos = p;
            }
        }

        for id in ended {
            self.pending_start.remove(id);
            let Some(st) = self.tracks.remove(id) else {
                tracing::debug!(stream = %self.stream, track_id = id, "ended track was never observed; no event");
                continue;
            };
            let o = Observation {
                id: *id,
                label: &st.label,
                score: st.score,
                bbox: st.bbox,
            };
            for (zc, zs) in self.zones.iter().zip(&st.zones) {
                if zs.inside {
                    let mut e = mk(EventType::ZoneLeft, &o);
                    e.zone = Some(zc.name.clone());
                    out.push(e);
                }
            }
            out.push(mk(EventType::TrackEnded, &o));
        }

        if n % 1024 == 0 {
            let before = self.tracks.len();
            self.tracks
                .retain(|_, st| n.saturating_sub(st.last_seen) < STALE_FRAMES);
            let dropped = before - self.tracks.len();
            if dropped > 0 {
                tracing::warn!(stream = %self.stream, dropped, "forgot tracks never reported as ended");
            }
            // Bound the start set the same way: a started id never observed
            // for that long will not be.
            if self.pending_start.len() > 10_000 {
                self.pending_start.clear();
            }
        }
        out
    }
}
