use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Event types a webhook may subscribe to (the contract's list).
pub const EVENT_TYPES: &[&str] = &[
    "track.started",
    "track.ended",
    "zone.entered",
    "zone.left",
    "line.crossed",
    "drift.detected",
    "camera.anomaly",
];

/// One `[[webhooks]]` entry: where events are POSTed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` receiver.
    pub url: String,
    /// When set, bodies are signed: `X-Vigil-Signature: sha256=<hex HMAC>`.
    #[serde(default)]
    pub secret: Option<String>,
    /// Event types delivered (see [`EVENT_TYPES`]); empty = all.
    #[serde(default)]
    pub events: Vec<String>,
}

impl WebhookConfig {
    /// `key` is how the entry is named in errors, e.g. `webhooks[0]`.
    pub fn validate(&self, key: &str) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        let lower = self.url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || lower.len() < 10 {
            e.push(InvalidValue::new(
                format!("{key}.url"),
                format!("must be an http:// or https:// URL, got {:?}", self.url),
            ));
        }
        if self.secret.as_deref().is_some_and(str::is_empty) {
            e.push(InvalidValue::new(
                format!("{key}.secret"),
                "must not be empty (remove the key to send unsigned)",
            ));
        }
        for ev in &self.events {
            if !EVENT_TYPES.contains(&ev.as_str()) {
                e.push(InvalidValue::new(
                    format!("{key}.events"),
                    format!(
                        "unknown event type {ev:?} (expected one of {})",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        }
        e
    }
}
