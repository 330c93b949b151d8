//! Tracks in, events out, delivered reliably.
//!
//! * [`EventGenerator`]: per stream, turns confirmed tracks into
//!   `track.started`, `track.ended`, `zone.entered`, `zone.left` and
//!   `line.crossed` events (debounced, with hysteresis; see [`generator`]).
//! * [`Outbox`]: a durable SQLite outbox; events are committed before any
//!   delivery is attempted, with one delivery row per event and
//!   [`EventSink`] (see [`outbox`] for the durability choices).
//! * [`Outbox::start_delivery`]: one tokio worker per sink sending oldest
//!   first, retried with the shared backoff, dead-lettered after the sink's
//!   `max_attempts` (see [`delivery`]).
//! * The sinks: [`WebhookSink`] (signed POSTs, see [`webhook`]),
//!   [`MqttSink`] (QoS 1 on `<prefix>/<stream>/<type>`, delivered on its
//!   PUBACK, see [`mqtt`]); NATS is `vigil_queue::NatsEventSink`.
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
pub mod sink;
pub mod snapshots;
pub mod webhook;

pub use config::{
    lines_from_tables, validate_all, zones_from_tables, Anchor, LineConfig, Units, ZoneConfig,
};
pub use delivery::DeliveryHandle;
pub use event::{Direction, Event, EventType};
pub use generator::{EventGenerator, FrameMeta, Observation};
pub use mqtt::{MqttSink, MqttTarget};
pub use outbox::{
    DeliveryRecord, EventRecord, Outbox, OutboxConfig, OutboxError, OutboxStats, PromMetrics,
    Status, UnknownStatus,
};
pub use sink::{Attempt, Delivery, EventSink, SendFuture, SinkKind};
pub use snapshots::SnapshotStore;
pub use webhook::{signature, WebhookSink, WebhookTarget};
