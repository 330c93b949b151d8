//! One trait for every event output. Webhooks, MQTT brokers and NATS are
//! [`EventSink`]s: the [`crate::Outbox`] stores one delivery row per event
//! and sink that wants it, and one worker per sink sends them oldest first,
//! records each outcome, and retries with the shared
//! [`vigil_core::Backoff`], so every output gets the same at-least-once
//! delivery across outages and restarts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use vigil_core::EventType;

/// What kind of output a sink is: the `sink` label of
/// `vigil_event_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkKind {
    Webhook,
    Mqtt,
    Nats,
    /// Any other implementation (tests, embedders), with its own label.
    Other(&'static str),
}

impl SinkKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Mqtt => "mqtt",
            SinkKind::Nats => "nats",
            SinkKind::Other(s) => s,
        }
    }
}

/// One event due for one sink, as the outbox stored it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The outbox's sequence number: deliveries of one sink go in this order.
    pub seq: i64,
    pub event_id: String,
    pub kind: EventType,
    pub stream: String,
    /// The exact JSON bytes stored with the event: every sink sends these,
    /// so signatures and payloads are the same after a restart.
    pub body: Vec<u8>,
    /// Attempts already made (0 on the first).
    pub attempts: u32,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The receiver has it (2xx, PUBACK, JetStream ack).
    Delivered,
    /// Try again later: after `retry_after` when the receiver said so,
    /// else after the backoff. `pause_sink` when the receiver as a whole is
    /// unavailable (unreachable, rate limiting), so an outage costs one
    /// probe per backoff step rather than one per event.
    Retry {
        error: String,
        retry_after: Option<Duration>,
        pause_sink: bool,
    },
    /// The receiver refused these exact bytes and would again: dead now.
    Rejected(String),
}

impl Attempt {
    /// A retry that pauses the whole sink (the receiver is unreachable).
    pub fn unreachable(error: impl Into<String>) -> Self {
        Attempt::Retry {
            error: error.into(),
            retry_after: None,
            pause_sink: true,
        }
    }
}

/// The future of one send.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;

/// An event output fed by the outbox.
///
/// Implementations send one delivery and say how it went; they neither
/// store, retry nor count: the outbox does that the same way for all.
pub trait EventSink: Send + Sync + 'static {
    /// Stable identity of the sink, stored in each delivery row (so it must
    /// survive a restart and be unique per outbox), e.g. the webhook URL.
    /// Shown through [`vigil_core::mask_url`] only.
    fn key(&self) -> &str;

    /// The metric label.
    fn kind(&self) -> SinkKind;

    /// Whether events of `kind` go to this sink (its `events` filter).
    fn wants(&self, kind: EventType) -> bool;

    /// Attempts before a delivery is dead.
    fn max_attempts(&self) -> u32 {
        10
    }

    /// Sends one delivery. Must finish (bounded by the sink's own timeout)
    /// and never panic on anything the receiver does.
    fn send<'a>(&'a self, delivery: &'a Delivery) -> SendFuture<'a>;
}

/// Whether `kind` passes an `events` filter (empty = every type).
pub fn filter_wants(filter: &[EventType], kind: EventType) -> bool {
    filter.is_empty() || filter.contains(&kind)
}
