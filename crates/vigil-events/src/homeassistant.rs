//! Home Assistant MQTT discovery: each stream becomes a device with an
//! occupancy binary sensor per zone, an in and an out counter per line and
//! an "objects now" sensor.
//!
//! Discovery configs and states are published retained (QoS 1), so Home
//! Assistant finds them after either side restarts. An entity that goes
//! away (a zone removed by a live edit, a stream deleted) gets an empty
//! retained config, which is how Home Assistant is told to delete it.
//!
//! Topics, with `<p>` = the `[[mqtt]]` `topic_prefix` and `<d>` =
//! `discovery_prefix` (`homeassistant`); ids are `<stream>`, `<zone>` and
//! `<line>` with `.` made `_`:
//!
//! | entity | config topic | state topic | states |
//! | --- | --- | --- | --- |
//! | zone | `<d>/binary_sensor/vigil_<stream>/zone_<zone>/config` | `<p>/<stream>/state/zones/<zone>` | `ON` / `OFF` |
//! | line | `<d>/sensor/vigil_<stream>/line_<line>_<in\|out>/config` | `<p>/<stream>/state/lines/<line>/<in\|out>` | crossings since the stream started |
//! | stream | `<d>/sensor/vigil_<stream>/objects/config` | `<p>/<stream>/state/objects` | confirmed objects in the latest processed frame |

use serde_json::json;

use crate::event::Direction;
use crate::mqtt::MqttTarget;

/// One state of a stream's entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State<'a> {
    /// Confirmed objects in the latest processed frame.
    Objects(usize),
    /// Whether the zone holds at least one object.
    Zone(&'a str, bool),
    /// Crossings of the line in one direction since the stream started.
    Line(&'a str, Direction, u64),
}

/// The named rules of one stream that become entities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entities {
    pub zones: Vec<String>,
    pub lines: Vec<String>,
}

/// A topic level made safe: no MQTT wildcards or separators.
fn level(s: &str) -> String {
    s.chars()
        .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
        .collect()
}

/// An id safe for Home Assistant object ids (`[a-zA-Z0-9_-]`).
fn object_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

impl MqttTarget {
    fn node(&self, stream: &str) -> String {
        format!("vigil_{}", object_id(stream))
    }

    pub fn objects_state_topic(&self, stream: &str) -> String {
        format!("{}/{}/state/objects", self.topic_prefix, level(stream))
    }

    pub fn zone_state_topic(&self, stream: &str, zone: &str) -> String {
        format!(
            "{}/{}/state/zones/{}",
            self.topic_prefix,
            level(stream),
            level(zone)
        )
    }

    pub fn line_state_topic(&self, stream: &str, line: &str, d: Direction) -> String {
        format!(
            "{}/{}/state/lines/{}/{}",
            self.topic_prefix,
            level(stream),
            level(line),
            dir_name(d)
        )
    }

    fn device(&self, stream: &str) -> serde_json::Value {
        json!({
            "identifiers": [self.node(stream)],
            "name": format!("vigil {stream}"),
            "manufacturer": "vigil",
            "model": "camera stream",
        })
    }

    /// Config topic and payload of every entity of `stream`.
    pub fn discovery(&self, stream: &str, e: &Entities) -> Vec<(String, String)> {
        let node = self.node(stream);
        let d = &self.discovery_prefix;
        let mut out = vec![(
            format!("{d}/sensor/{node}/objects/config"),
            json!({
                "name": "objects",
                "unique_id": format!("{node}_objects"),
                "state_topic": self.objects_state_topic(stream),
                "state_class": "measurement",
                "unit_of_measurement": "objects",
                "icon": "mdi:account-multiple",
                "device": self.device(stream),
            })
            .to_string(),
        )];
        for z in &e.zones {
            let oid = format!("zone_{}", object_id(z));
            out.push((
                format!("{d}/binary_sensor/{node}/{oid}/config"),
                json!({
                    "name": format!("{z} occupied"),
                    "unique_id": format!("{node}_{oid}"),
                    "state_topic": self.zone_state_topic(stream, z),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "device_class": "occupancy",
                    "device": self.device(stream),
                })
                .to_string(),
            ));
        }
        for l in &e.lines {
            for dir in [Direction::In, Direction::Out] {
                let oid = format!("line_{}_{}", object_id(l), dir_name(dir));
                out.push((
                    format!("{d}/sensor/{node}/{oid}/config"),
                    json!({
                        "name": format!("{l} {}", dir_name(dir)),
                        "unique_id": format!("{node}_{oid}"),
                        "state_topic": self.line_state_topic(stream, l, dir),
                        "state_class": "total_increasing",
                        "unit_of_measurement": "crossings",
                        "icon": "mdi:counter",
                        "device": self.device(stream),
                    })
                    .to_string(),
                ));
            }
        }
        out
    }

    /// Retained messages that delete `e`'s entities of `stream` (empty
    /// configs) and clear their retained states.
    pub fn removal(&self, stream: &str, e: &Entities) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .discovery(stream, e)
            .into_iter()
            .map(|(t, _)| (t, String::new()))
            .collect();
        out.push((self.objects_state_topic(stream), String::new()));
        for z in &e.zones {
            out.push((self.zone_state_topic(stream, z), String::new()));
        }
        for l in &e.lines {
            for dir in [Direction::In, Direction::Out] {
                out.push((self.line_state_topic(stream, l, dir), String::new()));
            }
        }
        out
    }
}

/// The entities of `old` that `new` no longer has.
pub fn diff(old: &Entities, new: &Entities) -> Entities {
    Entities {
        zones: old
            .zones
            .iter()
            .filter(|z| !new.zones.contains(z))
            .cloned()
            .collect(),
        lines: old
            .lines
            .iter()
            .filter(|l| !new.lines.contains(l))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_payloads() {
        let t = MqttTarget::new("h", 1883);
        let e = Entities {
            zones: vec!["lobby.1".into()],
            lines: vec!["gate".into()],
        };
        let msgs = t.discovery("door", &e);
        let topics: Vec<&str> = msgs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/sensor/vigil_door/objects/config",
                "homeassistant/binary_sensor/vigil_door/zone_lobby_1/config",
                "homeassistant/sensor/vigil_door/line_gate_in/config",
                "homeassistant/sensor/vigil_door/line_gate_out/config",
            ]
        );
        let zone: serde_json::Value = serde_json::from_str(&msgs[1].1).unwrap();
        assert_eq!(zone["state_topic"], "vigil/door/state/zones/lobby.1");
        assert_eq!(zone["device_class"], "occupancy");
        assert_eq!(zone["device"]["identifiers"][0], "vigil_door");
        let rm = t.removal("door", &e);
        assert!(rm.iter().all(|(_, p)| p.is_empty()));
        assert_eq!(rm.len(), 4 + 1 + 1 + 2);
        let gone = diff(
            &e,
            &Entities {
                zones: vec![],
                lines: vec!["gate".into()],
            },
        );
        assert_eq!(gone.zones, ["lobby.1"]);
        assert!(gone.lines.is_empty());
    }
}
