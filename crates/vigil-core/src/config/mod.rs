//! Configuration structs, one file per TOML section.
//!
//! Every section denies unknown keys so a typo is an error naming the key, not
//! a silently ignored setting.

mod batch;
mod drift; // [drift]: model-drift monitoring (vigil-monitor)
mod events;
mod health; // [health]: camera-health monitoring (vigil-monitor)
mod jobs;
mod load;
mod model;
mod motion; // [streams.motion]: motion gating (vigil-pipeline)
mod queue;
mod server;
mod shard; // [shard]: stream nodes sharing one camera list
mod storage;
mod streams;
mod tracker;
mod webhooks;

pub use batch::BatchConfig;
pub use drift::DriftConfig;
pub use events::{EventsConfig, MqttConfig};
pub use health::HealthConfig;
pub use jobs::{JobPriority, JobsConfig};
pub use load::ConfigError;
pub use model::{
    auto_intra_threads, auto_sessions, Count, Device, ModelConfig, Precision, UnknownDevice,
    UnknownPrecision,
};
pub use motion::MotionConfig;
pub use queue::{QueueBackend, QueueConfig};
pub use server::{
    parse_cidr, CidrError, ServerConfig, DEFAULT_STREAM_DENY, DEFAULT_STREAM_SCHEMES,
    KNOWN_STREAM_SCHEMES,
};
pub use shard::{ShardConfig, ShardIndexError};
pub use storage::StorageConfig;
pub use streams::{
    check_stream_id, is_network_url, MaskConfig, MaskTest, MaskUnits, ObjectFilter, StreamConfig,
    StreamEvents, StreamIdError, StreamTransport,
};
pub use tracker::TrackerConfig;
pub use webhooks::WebhookConfig;

use serde::{Deserialize, Serialize};

/// The whole `vigil.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub model: ModelConfig,
    pub batch: BatchConfig,
    pub tracker: TrackerConfig,
    pub queue: QueueConfig,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub jobs: JobsConfig,
    pub streams: Vec<StreamConfig>,
    pub webhooks: Vec<WebhookConfig>,
    pub events: EventsConfig,
    pub mqtt: Vec<MqttConfig>,
    pub drift: DriftConfig,
    pub health: HealthConfig,
    pub shard: ShardConfig,
}

/// A config value that parsed but makes no sense; names the key and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidValue {
    pub key: String,
    pub reason: String,
}

impl InvalidValue {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Several [`InvalidValue`]s at once, shown `key: reason; key: reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidValues(pub Vec<InvalidValue>);

impl Config {
    /// Checks every section and returns all problems at once, so a user fixes a
    /// config in one round rather than one error per run.
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut errs = Vec::new();
        errs.extend(self.model.validate());
        errs.extend(self.batch.validate());
        errs.extend(self.tracker.validate());
        errs.extend(self.queue.validate());
        errs.extend(self.server.validate());
        errs.extend(self.storage.validate());
        errs.extend(self.jobs.validate());
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.streams.iter().enumerate() {
            let key = format!("streams[{i}]");
            errs.extend(s.validate(&key));
            if !s.id.is_empty() && !seen.insert(s.id.as_str()) {
                errs.push(InvalidValue::new(
                    format!("{key}.id"),
                    format!("duplicate stream id {:?}", s.id),
                ));
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            errs.extend(w.validate(&format!("webhooks[{i}]")));
        }
        errs.extend(self.events.validate());
        errs.extend(self.drift.validate());
        errs.extend(self.health.validate());
        errs.extend(self.shard.validate());
        for (i, m) in self.mqtt.iter().enumerate() {
            errs.extend(m.validate(&format!("mqtt[{i}]")));
        }
        errs
    }
}

/// A config list of event type names as types, skipping names that do not
/// parse (validation refuses those before anything runs).
pub fn event_types(names: &[String]) -> Vec<crate::EventType> {
    names.iter().filter_map(|n| n.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::from_toml(text, "t.toml", Vec::new()).map_err(|e| e.to_string())
    }

    #[test]
    fn serve_sections_parse() {
        let c = parse(
            r#"
[server]
listen = "0.0.0.0:9000"
token = "s3cret"
[storage]
dir = "/tmp/v"
[jobs]
workers = 2
[queue]
backend = "local"
[[streams]]
id = "sample"
url = "data/video/vtest.avi"
loop = true
[[streams]]
id = "door"
url = "rtsp://u:p@cam/live"
fps = 5.0
transport = "udp"
zones = [{ name = "entry", polygon = [[0, 0], [1, 0], [1, 1]] }]
[[webhooks]]
url = "https://example.com/hook"
events = ["track.started"]
"#,
        )
        .unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.jobs.workers, 2);
        assert_eq!(c.jobs.queue_size, 16);
        assert_eq!(c.streams.len(), 2);
        assert!(c.streams[0].looping);
        assert_eq!(c.streams[1].transport, StreamTransport::Udp);
        assert_eq!(c.streams[1].zones.len(), 1);
    }

    #[test]
    fn serve_section_errors_name_the_key() {
        let e = parse("[[streams]]\nid = \"a\"\nurl = \"x.mp4\"\n[[streams]]\nid = \"a\"\nurl = \"y.mp4\"\nevery = 2\nfps = 3.0\n")
            .unwrap_err();
        assert!(e.contains("streams[1].id: duplicate"), "{e}");
        assert!(e.contains("streams[1].fps"), "{e}");
        let e = parse("[[streams]]\nid = \"a\"\nurl = \"x\"\nnope = 1\n").unwrap_err();
        assert!(e.contains("nope"), "{e}");
        let e = parse("[server]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(e.contains("server.listen"), "{e}");
        let e = parse("[queue]\nbackend = \"nats\"\n").unwrap_err();
        assert!(e.contains("queue.url"), "{e}");
        let e = parse("[[webhooks]]\nurl = \"ftp://x\"\nevents = [\"nope\"]\n").unwrap_err();
        assert!(
            e.contains("webhooks[0].url") && e.contains("webhooks[0].events"),
            "{e}"
        );
    }

    #[test]
    fn env_overrides_reach_serve_sections() {
        let c = Config::from_toml(
            "",
            "t",
            vec![
                (
                    "VIGIL_SERVER_LISTEN".to_string(),
                    "127.0.0.1:9999".to_string(),
                ),
                ("VIGIL_JOBS_WORKERS".to_string(), "3".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9999");
        assert_eq!(c.jobs.workers, 3);
    }
}
