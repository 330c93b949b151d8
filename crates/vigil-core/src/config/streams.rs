use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{InvalidValue, MotionConfig};

/// How RTP travels for `rtsp://` streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamTransport {
    /// Interleaved in the RTSP connection: works through NAT, no packet loss.
    #[default]
    Tcp,
    /// Separate UDP ports: lowest latency on a clean LAN.
    Udp,
}

/// One `[[streams]]` entry (also the body of `POST /v1/streams`): a camera
/// the daemon watches for as long as it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Unique name; used in API paths and as the metrics label, so it is
    /// restricted to `[A-Za-z0-9_.-]` (URLs never appear in labels).
    pub id: String,
    /// `rtsp://…` (or another FFmpeg network URL) or a file path.
    pub url: String,
    /// Run the detector on every Nth frame (exclusive with `fps`).
    pub every: Option<u32>,
    /// Run the detector at this many frames per second (exclusive with `every`).
    pub fps: Option<f64>,
    /// Files only: start again at the end, paced at the file's frame rate, so
    /// a file behaves like a live camera (used by the default config).
    #[serde(rename = "loop")]
    pub looping: bool,
    /// Decoded frames buffered before the oldest is dropped.
    pub ring_capacity: usize,
    /// No frame for this long → the stream is reconnected. Also the open and
    /// read timeouts handed to FFmpeg, so a silent camera is noticed in time.
    pub stall_timeout_s: f64,
    /// First reconnect delay; doubles (with jitter) up to `reconnect_max_s`.
    pub reconnect_initial_s: f64,
    pub reconnect_max_s: f64,
    /// RTSP transport: `tcp` or `udp`.
    pub transport: StreamTransport,
    /// Zones for zone events. Kept as tables here because their types live
    /// in `vigil-events` (which depends on this crate); `vigil config check`
    /// and the daemon validate them there, naming the key.
    pub zones: Vec<toml::Table>,
    /// Counting lines for line events (validated like `zones`).
    pub lines: Vec<toml::Table>,
    /// `false` pauses the stream (decoder closed, tracks dropped) without
    /// forgetting it or its rules; `true` resumes it.
    pub enabled: bool,
    /// Object filters by class label, `"*"` for every class; a class's own
    /// entry overrides `"*"` field by field. Detections that fail a filter
    /// never reach the tracker: they start no track and raise no event.
    pub filters: BTreeMap<String, ObjectFilter>,
    /// Polygons where detections are ignored (trees, a burned-in clock, the
    /// road outside the fence); applied with the filters.
    pub masks: Vec<MaskConfig>,
    /// Which events this stream raises.
    pub events: StreamEvents,
    /// Overrides of `[tracker]` keys for this stream only (e.g.
    /// `{ track_buffer = 60 }`); checked against `[tracker]`'s own rules.
    pub tracker: Option<toml::Table>,
    /// `[streams.motion]`: run the detector only when something moves.
    pub motion: MotionConfig,
}

/// One entry of a stream's `filters` table. Every field is optional, so a
/// class entry can override a single threshold of `"*"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectFilter {
    /// Least detector score (on top of `model.conf`, which applies first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    /// Least box area: pixels when above 1, else a fraction of the frame
    /// (so `0.01` is 1 % of the picture whatever the resolution).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_area: Option<f64>,
    /// Largest box area, in the units of `min_area`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_area: Option<f64>,
    /// Least width / height of the box (a standing person is about 0.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ratio: Option<f64>,
    /// Largest width / height of the box.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ratio: Option<f64>,
    /// Processed frames a confirmed track must be seen in before it raises
    /// any event (`track.started` included), so a one-second false positive
    /// stays silent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_frames: Option<u32>,
}

impl ObjectFilter {
    /// `self`'s fields where set, else `base`'s: a class entry over `"*"`.
    pub fn over(&self, base: &ObjectFilter) -> ObjectFilter {
        ObjectFilter {
            min_score: self.min_score.or(base.min_score),
            min_area: self.min_area.or(base.min_area),
            max_area: self.max_area.or(base.max_area),
            min_ratio: self.min_ratio.or(base.min_ratio),
            max_ratio: self.max_ratio.or(base.max_ratio),
            min_frames: self.min_frames.or(base.min_frames),
        }
    }

    fn validate(&self, key: &str, e: &mut Vec<InvalidValue>) {
        let bad = |field: &str, reason: String| InvalidValue::new(format!("{key}.{field}"), reason);
        if let Some(s) = self.min_score {
            if !(s.is_finite() && (0.0..=1.0).contains(&s)) {
                e.push(bad("min_score", format!("must be within [0, 1], got {s}")));
            }
        }
        for (field, v) in [
            ("min_area", self.min_area),
            ("max_area", self.max_area),
            ("min_ratio", self.min_ratio),
            ("max_ratio", self.max_ratio),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && (0.0..=1e9).contains(&v)) {
                    e.push(bad(field, format!("must be a number >= 0, got {v}")));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_ratio, self.max_ratio) {
            if hi < lo {
                e.push(bad(
                    "max_ratio",
                    format!("must be at least min_ratio ({lo}), got {hi}"),
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_area, self.max_area) {
            // Only comparable in the same units.
            if (lo > 1.0) == (hi > 1.0) && hi < lo {
                e.push(bad(
                    "max_area",
                    format!("must be at least min_area ({lo}), got {hi}"),
                ));
            }
        }
        if let Some(n) = self.min_frames {
            if n > 10_000 {
                e.push(bad("min_frames", format!("must be at most 10000, got {n}")));
            }
        }
    }
}

/// Coordinates of a mask's points (as for zones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskUnits {
    /// Source-frame pixels.
    #[default]
    Px,
    /// Fractions (0–1) of the frame's width and height.
    Norm,
}

/// How a mask decides that a detection lies in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskTest {
    /// The box's bottom-centre (where a person or car touches the ground) is
    /// inside the polygon. The default, and what zones use.
    #[default]
    BottomCenter,
    /// At least `min_overlap` of the box's area is inside the polygon: for
    /// masks over things in the air (a flag, a tree crown, a clock overlay).
    Overlap,
}

/// One `masks` entry: detections in this polygon are dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    /// Optional label for logs and editors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Polygon vertices (at least 3), in `units`.
    pub points: Vec<[f32; 2]>,
    #[serde(default)]
    pub units: MaskUnits,
    #[serde(default)]
    pub test: MaskTest,
    /// With `test = "overlap"`: the fraction of the box that must be inside.
    #[serde(default = "default_min_overlap")]
    pub min_overlap: f32,
    /// Labels the mask applies to; empty = every label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

fn default_min_overlap() -> f32 {
    0.5
}

impl MaskConfig {
    fn validate(&self, key: &str, e: &mut Vec<InvalidValue>) {
        let bad = |field: &str, reason: String| InvalidValue::new(format!("{key}.{field}"), reason);
        if self.points.len() < 3 || self.points.len() > 1000 {
            e.push(bad(
                "points",
                format!("needs 3 to 1000 points, got {}", self.points.len()),
            ));
        }
        if let Some(p) = self
            .points
            .iter()
            .find(|p| !p.iter().all(|v| v.is_finite()))
        {
            e.push(bad("points", format!("must be finite numbers, got {p:?}")));
        } else if self.units == MaskUnits::Norm {
            if let Some(p) = self
                .points
                .iter()
                .find(|p| p.iter().any(|v| !(0.0..=1.0).contains(v)))
            {
                e.push(bad(
                    "points",
                    format!("units = \"norm\" needs values within [0, 1], got {p:?}"),
                ));
            }
        }
        if !(self.min_overlap.is_finite() && self.min_overlap > 0.0 && self.min_overlap <= 1.0) {
            e.push(bad(
                "min_overlap",
                format!("must be within (0, 1], got {}", self.min_overlap),
            ));
        }
    }
}

/// A stream's `events` settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamEvents {
    /// Event types this stream raises (`track.started`, `zone.entered`, …);
    /// empty = all of them.
    pub types: Vec<String>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            url: String::new(),
            every: None,
            fps: None,
            looping: false,
            ring_capacity: 8,
            stall_timeout_s: 10.0,
            reconnect_initial_s: 1.0,
            reconnect_max_s: 30.0,
            transport: StreamTransport::Tcp,
            zones: Vec::new(),
            lines: Vec::new(),
            enabled: true,
            filters: BTreeMap::new(),
            masks: Vec::new(),
            events: StreamEvents::default(),
            tracker: None,
            motion: MotionConfig::default(),
        }
    }
}

/// True for URLs FFmpeg treats as network streams (never loopable files).
pub fn is_network_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme != "file")
}

/// Stream ids appear in URLs, metric labels and file names (saved drift
/// baselines), so they are restricted to a safe alphabet.
pub fn check_stream_id(id: &str) -> Result<(), StreamIdError> {
    if id.is_empty() {
        return Err(StreamIdError::Empty);
    }
    if id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(StreamIdError::Alphabet(id.to_string()));
    }
    Ok(())
}

/// Why a stream id is refused (see [`check_stream_id`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("must not be empty")]
    Empty,
    #[error(
        "must be 1-64 characters of A-Z a-z 0-9 _ . - (it appears in URLs and metric labels), got {0:?}"
    )]
    Alphabet(String),
}

impl StreamConfig {
    /// `[tracker]` with this stream's `tracker` overrides applied and checked;
    /// errors name the key (`{key}.tracker.track_buffer: …`).
    pub fn tracker_config(
        &self,
        global: &super::TrackerConfig,
        key: &str,
    ) -> Result<super::TrackerConfig, Vec<InvalidValue>> {
        let Some(over) = &self.tracker else {
            return Ok(global.clone());
        };
        let bad = |reason: String| vec![InvalidValue::new(format!("{key}.tracker"), reason)];
        let mut merged = toml::Table::try_from(global).map_err(|e| bad(e.to_string()))?;
        for (k, v) in over {
            merged.insert(k.clone(), v.clone());
        }
        let cfg: super::TrackerConfig = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        let problems: Vec<InvalidValue> = cfg
            .validate()
            .into_iter()
            .map(|p| InvalidValue::new(format!("{key}.{}", p.key), p.reason))
            .collect();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    /// `key` is how the entry is named in errors, e.g. `streams[0]`.
    pub fn validate(&self, key: &str) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        let bad = |field: &str, reason: String| InvalidValue::new(format!("{key}.{field}"), reason);
        if let Err(reason) = check_stream_id(&self.id) {
            e.push(bad("id", reason.to_string()));
        }
        if self.url.trim().is_empty() {
            e.push(bad("url", "must not be empty".into()));
        }
        if self.every.is_some() && self.fps.is_some() {
            e.push(bad(
                "fps",
                "every and fps are mutually exclusive; set one".into(),
            ));
        }
        if self.every == Some(0) {
            e.push(bad("every", "must be at least 1".into()));
        }
        if let Some(f) = self.fps {
            if !(f.is_finite() && f > 0.0 && f <= 1000.0) {
                e.push(bad("fps", format!("must be within (0, 1000], got {f}")));
            }
        }
        if self.looping && is_network_url(&self.url) {
            e.push(bad(
                "loop",
                "only files can loop; network streams are reconnected instead".into(),
            ));
        }
        if self.ring_capacity == 0 || self.ring_capacity > 1024 {
            e.push(bad(
                "ring_capacity",
                format!("must be between 1 and 1024, got {}", self.ring_capacity),
            ));
        }
        for (field, v) in [
            ("stall_timeout_s", self.stall_timeout_s),
            ("reconnect_initial_s", self.reconnect_initial_s),
            ("reconnect_max_s", self.reconnect_max_s),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 3600.0) {
                e.push(bad(
                    field,
                    format!("must be within (0, 3600] seconds, got {v}"),
                ));
            }
        }
        if self.reconnect_max_s < self.reconnect_initial_s {
            e.push(bad(
                "reconnect_max_s",
                format!(
                    "must be at least reconnect_initial_s ({}), got {}",
                    self.reconnect_initial_s, self.reconnect_max_s
                ),
            ));
        }
        for (class, f) in &self.filters {
            if class.is_empty() || class.len() > 64 {
                e.push(bad(
                    "filters",
                    format!("class names must be 1-64 characters (or \"*\"), got {class:?}"),
                ));
            }
            f.validate(&format!("{key}.filters.{class}"), &mut e);
        }
        if self.masks.len() > 64 {
            e.push(bad(
                "masks",
                format!("at most 64 masks, got {}", self.masks.len()),
            ));
        }
        for (i, m) in self.masks.iter().enumerate() {
            m.validate(&format!("{key}.masks[{i}]"), &mut e);
        }
        for t in &self.events.types {
            if let Err(err) = t.parse::<crate::EventType>() {
                e.push(bad("events.types", err.to_string()));
            }
        }
        e.extend(self.motion.validate(&format!("{key}.motion")));
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(id: &str, url: &str) -> StreamConfig {
        StreamConfig {
            id: id.into(),
            url: url.into(),
            ..StreamConfig::default()
        }
    }

    #[test]
    fn valid_stream_passes() {
        assert!(stream("cam-1", "rtsp://h/s")
            .validate("streams[0]")
            .is_empty());
    }

    #[test]
    fn bad_fields_are_named() {
        let mut s = stream("", "");
        s.every = Some(2);
        s.fps = Some(5.0);
        let keys: Vec<_> = s
            .validate("streams[3]")
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["streams[3].id", "streams[3].url", "streams[3].fps"]);
        let mut s = stream("a b", "rtsp://h/s");
        s.looping = true;
        s.reconnect_max_s = 0.5;
        let keys: Vec<_> = s.validate("s").into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["s.id", "s.loop", "s.reconnect_max_s"]);
    }

    #[test]
    fn network_urls_are_recognised() {
        assert!(is_network_url("rtsp://h/s"));
        assert!(!is_network_url("file:///a.mp4"));
        assert!(!is_network_url("data/video/vtest.avi"));
    }
}
