//! Tracks in, events out, delivered reliably.
//!
//! * [`EventGenerator`]: per stream, turns confirmed tracks into
//!   `track.started`, `track.ended`, `zone.entered`, `zone.left` and
//!   `line.crossed` events (debounced, with hysteresis; see [`generator`]).
//! * [`Outbox`]: a durable SQLite outbox; events are committed before any
//!   delivery is attempted (see [`outbox`] for the durability choices).
//! * [`Outbox::start_delivery`]: tokio workers POSTing each event to each
//!   matching [`WebhookTarget`], signed, retried with backoff, dead-lettered
//!   after `max_attempts` (see [`delivery`] for the retry policy).
//! * [`MqttSink`]: publishes each event as JSON on `<prefix>/<stream>/<type>`
//!   (QoS 1) through a bounded, never-blocking queue (see [`mqtt`]).
//! * [`SnapshotStore`]: the annotated JPEG of each event, served as the
//!   event's `snapshot_url` and deleted after a retention (see [`snapshots`]).
//!
//! The crate does no decoding or inference; the daemon feeds it each processed
//! frame's tracker output and serves [`Outbox::recent`] as `GET /v1/events`.

pub mod config;
pub mod delivery;
pub mod event;
pub mod generator;
mod geometry;
pub mod homeassistant;
pub mod mqtt;
pub mod outbox;
pub mod snapshots;

pub use config::{
    lines_from_tables, validate_all, zones_from_tables, Anchor, LineConfig, Units, ZoneConfig,
};
pub use delivery::{signature, DeliveryHandle};
pub use event::{Direction, Event, EventType};
pub use generator::{EventGenerator, FrameMeta, Observation};
pub use mqtt::{MqttSink, MqttTarget};
pub use outbox::{
    DeliveryRecord, EventRecord, Outbox, OutboxConfig, OutboxError, OutboxStats, PromMetrics,
    Status, WebhookTarget,
};
pub use snapshots::SnapshotStore;
