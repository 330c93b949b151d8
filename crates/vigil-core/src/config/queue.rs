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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub backend: QueueBackend,
    /// `nats://host:port`; required for the `nats` backend.
    pub url: Option<String>,
    /// How long a worker may go without reporting progress before its job
    /// is handed to another worker. Workers report every second, so this
    /// only has to cover a stalled or dead worker; shorter means faster
    /// recovery, longer tolerates longer network hiccups.
    pub ack_wait_s: f64,
    /// Deliveries of one job before it is marked failed: a video that
    /// crashes every worker that touches it must not circle forever.
    pub max_deliver: u32,
    /// Also publish every event to `vigil.events.<stream>.<type>` (JetStream
    /// stream `VIGIL_EVENTS`) for downstream consumers.
    pub publish_events: bool,
    /// Hours events stay in `VIGIL_EVENTS` for consumers that were away.
    pub events_retention_hours: f64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            backend: QueueBackend::Local,
            url: None,
            ack_wait_s: 30.0,
            max_deliver: 5,
            publish_events: true,
            events_retention_hours: 24.0,
        }
    }
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
                format!(
                    "must be a nats://host:port URL, got {:?}",
                    crate::url::mask_url(u)
                ),
            )),
            _ => {}
        }
        if !(self.ack_wait_s.is_finite() && (1.0..=3600.0).contains(&self.ack_wait_s)) {
            e.push(InvalidValue::new(
                "queue.ack_wait_s",
                format!(
                    "must be between 1 and 3600 seconds, got {}",
                    self.ack_wait_s
                ),
            ));
        }
        if !(1..=100).contains(&self.max_deliver) {
            e.push(InvalidValue::new(
                "queue.max_deliver",
                format!("must be between 1 and 100, got {}", self.max_deliver),
            ));
        }
        if !(self.events_retention_hours.is_finite()
            && self.events_retention_hours > 0.0
            && self.events_retention_hours <= 24.0 * 365.0)
        {
            e.push(InvalidValue::new(
                "queue.events_retention_hours",
                format!(
                    "must be above 0 and at most 8760 (a year), got {}",
                    self.events_retention_hours
                ),
            ));
        }
        e
    }
}
