use serde::{Deserialize, Serialize};

use super::InvalidValue;

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
pub fn check_stream_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(format!(
            "must be 1-64 characters of A-Z a-z 0-9 _ . - (it appears in URLs and metric labels), got {id:?}"
        ));
    }
    Ok(())
}

impl StreamConfig {
    /// `key` is how the entry is named in errors, e.g. `streams[0]`.
    pub fn validate(&self, key: &str) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        let bad = |field: &str, reason: String| InvalidValue::new(format!("{key}.{field}"), reason);
        if let Err(reason) = check_stream_id(&self.id) {
            e.push(bad("id", reason));
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
