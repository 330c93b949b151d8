use serde::{Deserialize, Serialize};

use super::InvalidValue;
use crate::EventType;

/// One `[[webhooks]]` entry: where events are POSTed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` receiver.
    pub url: String,
    /// When set, bodies are signed: `X-Vigil-Signature: sha256=<hex HMAC>`.
    #[serde(default)]
    pub secret: Option<String>,
    /// Event types delivered (the wire names of [`EventType`]); empty = all.
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
            if let Err(err) = ev.parse::<EventType>() {
                e.push(InvalidValue::new(format!("{key}.events"), err.to_string()));
            }
        }
        e
    }

    /// The `events` filter as types (empty = all); names that do not parse
    /// were refused by [`Self::validate`] and are skipped here.
    pub fn event_types(&self) -> Vec<EventType> {
        super::event_types(&self.events)
    }
}
