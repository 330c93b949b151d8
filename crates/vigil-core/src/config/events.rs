use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[events]`: what is kept alongside each event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Save the annotated frame of each event as a JPEG under
    /// `storage.dir/snapshots/` and give the event a `snapshot_url`.
    pub snapshots: bool,
    /// Snapshots older than this many hours are deleted (and their URLs 404).
    pub snapshot_retention_hours: f64,
    /// JPEG quality of event snapshots, 1–100.
    pub snapshot_quality: u8,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            snapshots: true,
            snapshot_retention_hours: 24.0,
            snapshot_quality: 80,
        }
    }
}

impl EventsConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        // Bounded above too: the daemon turns it into a Duration, and
        // 1e300 hours once passed `config check` and panicked `serve`.
        if !(self.snapshot_retention_hours.is_finite()
            && self.snapshot_retention_hours > 0.0
            && self.snapshot_retention_hours <= 87_600.0)
        {
            e.push(InvalidValue::new(
                "events.snapshot_retention_hours",
                format!(
                    "must be a positive number of hours, at most 87600 (ten years), got {}",
                    self.snapshot_retention_hours
                ),
            ));
        }
        if !(1..=100).contains(&self.snapshot_quality) {
            e.push(InvalidValue::new(
                "events.snapshot_quality",
                "must be between 1 and 100",
            ));
        }
        e
    }
}

/// One `[[mqtt]]` entry: a broker every event is published to, as JSON, on
/// `<topic_prefix>/<stream>/<type>` with QoS 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port (plain MQTT).
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// MQTT client id; default `vigil-<pid>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// First topic level.
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Event types published (the wire names of `EventType`); empty = all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Publish Home Assistant MQTT discovery (retained) for each stream: an
    /// occupancy binary sensor per zone, in/out counters per line and an
    /// "objects now" sensor, kept up to date and removed with the stream.
    #[serde(default = "default_discovery")]
    pub discovery: bool,
    /// Home Assistant's discovery prefix.
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
}

fn default_discovery() -> bool {
    true
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

fn default_mqtt_port() -> u16 {
    1883
}

fn default_topic_prefix() -> String {
    "vigil".into()
}

impl MqttConfig {
    /// `key` is how the entry is named in errors, e.g. `mqtt[0]`.
    pub fn validate(&self, key: &str) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if self.host.trim().is_empty() {
            e.push(InvalidValue::new(
                format!("{key}.host"),
                "must not be empty",
            ));
        }
        if self.port == 0 {
            e.push(InvalidValue::new(format!("{key}.port"), "must not be 0"));
        }
        if self.topic_prefix.is_empty()
            || self.topic_prefix.contains(['#', '+'])
            || self.topic_prefix.ends_with('/')
        {
            e.push(InvalidValue::new(
                format!("{key}.topic_prefix"),
                "must be non-empty, without '#', '+' or a trailing '/'",
            ));
        }
        if self.discovery_prefix.is_empty()
            || self.discovery_prefix.contains(['#', '+'])
            || self.discovery_prefix.ends_with('/')
        {
            e.push(InvalidValue::new(
                format!("{key}.discovery_prefix"),
                "must be non-empty, without '#', '+' or a trailing '/'",
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            e.push(InvalidValue::new(
                format!("{key}.password"),
                "needs a username",
            ));
        }
        for ev in &self.events {
            if let Err(err) = ev.parse::<crate::EventType>() {
                e.push(InvalidValue::new(format!("{key}.events"), err.to_string()));
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn events_and_mqtt_parse_validate_and_override() {
        let c = Config::from_toml(
            "[events]\nsnapshot_retention_hours = 2\n\n[[mqtt]]\nhost = \"broker\"\nevents = [\"zone.entered\"]\n",
            "t.toml",
            vec![("VIGIL_EVENTS_SNAPSHOTS".to_string(), "false".to_string())],
        )
        .unwrap();
        assert!(!c.events.snapshots);
        assert_eq!(c.events.snapshot_retention_hours, 2.0);
        assert_eq!(c.mqtt[0].port, 1883);
        assert_eq!(c.mqtt[0].topic_prefix, "vigil");
        let bad = Config::from_toml(
            "[events]\nsnapshot_quality = 0\n\n[[mqtt]]\nhost = \"\"\ntopic_prefix = \"a/#\"\nevents = [\"nope\"]\n",
            "t.toml",
            Vec::new(),
        )
        .unwrap_err()
        .to_string();
        for key in [
            "events.snapshot_quality",
            "mqtt[0].host",
            "mqtt[0].topic_prefix",
            "mqtt[0].events",
        ] {
            assert!(bad.contains(key), "{key} missing in {bad}");
        }
        assert!(
            Config::from_toml("[[mqtt]]\nhost = \"h\"\nqos = 2\n", "t.toml", Vec::new()).is_err()
        );
    }
}
