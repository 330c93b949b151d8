use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Where jobs are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackend {
    /// SQLite + local disk under `storage.dir`; one daemon does everything.
    #[default]
    Local,
    /// NATS JetStream, shared by `vigil serve` and `vigil worker` (scale-out).
    Nats,
}

/// `[queue]`: the job queue backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub backend: QueueBackend,
    /// `nats://host:port`; required for the `nats` backend.
    pub url: Option<String>,
}

impl QueueConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        match (&self.backend, self.url.as_deref()) {
            (QueueBackend::Nats, None) => e.push(InvalidValue::new(
                "queue.url",
                "required when queue.backend = \"nats\" (e.g. nats://127.0.0.1:4222)",
            )),
            (_, Some(u)) if !u.starts_with("nats://") => e.push(InvalidValue::new(
                "queue.url",
                format!("must be a nats://host:port URL, got {u:?}"),
            )),
            _ => {}
        }
        e
    }
}
