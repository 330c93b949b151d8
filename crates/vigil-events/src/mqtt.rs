//! MQTT event sink: every event is published as its JSON body on
//! `<prefix>/<stream>/<type>` (e.g. `vigil/door/zone.entered`), QoS 1, not
//! retained — what Home Assistant and Frigate setups subscribe to.
//!
//! # Durable delivery
//! In the daemon an [`MqttSink`] is an [`EventSink`] fed by the outbox: each
//! event has a delivery row for the broker, is published at QoS 1 and counts
//! as delivered only when the broker's PUBACK for that very message arrives
//! (packet ids are matched to the publishes that produced them). No PUBACK
//! within [`ACK_TIMEOUT`], or a broker that is down at send time, is a retry
//! with the outbox's backoff, so events survive a broker outage and a daemon
//! restart like webhook deliveries do (at-least-once: deduplicate on `id`).
//!
//! [`MqttSink::publish`] remains as a live feed for embedders: it only puts
//! messages into a bounded queue (`capacity`, default 1024) and drops and
//! counts them ([`MqttSink::dropped`]) when it is full, never blocking.
//! Home Assistant discovery and states go that way (they are re-announced on
//! every start and edit).
//!
//! # Reconnection
//! The connection task reconnects on any error with the shared
//! [`Backoff`] (0.5 s doubling to 30 s, reset on a successful CONNACK). Messages queued
//! while disconnected are sent once the broker is back (as long as they fit
//! in the queue); QoS 1 messages in flight when a connection drops are resent
//! by the client, so a subscriber may see a duplicate (deduplicate on `id`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, ClientError, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use vigil_core::{Backoff, EventType};

use crate::sink::{filter_wants, Attempt, Delivery, EventSink, SendFuture, SinkKind};
use crate::Event;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a durable publish waits for its PUBACK before it is retried.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct MqttTarget {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// First topic level, default `vigil`.
    pub topic_prefix: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Event types published; empty = all.
    pub events: Vec<EventType>,
    /// Messages that may wait for the broker before new ones are dropped.
    pub capacity: usize,
    /// Publish Home Assistant discovery and states (see `homeassistant`).
    pub discovery: bool,
    /// Home Assistant's discovery prefix, default `homeassistant`.
    pub discovery_prefix: String,
}

impl MqttTarget {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            client_id: format!("vigil-{}", std::process::id()),
            topic_prefix: "vigil".into(),
            username: None,
            password: None,
            events: Vec::new(),
            capacity: 1024,
            discovery: false,
            discovery_prefix: "homeassistant".into(),
        }
    }

    /// The topic of `e`: `<prefix>/<stream>/<type>`; MQTT wildcards and level
    /// separators in the stream id are replaced by `_`.
    pub fn topic(&self, e: &Event) -> String {
        self.topic_for(&e.stream.0, e.kind)
    }

    /// [`Self::topic`] from the stream id and type.
    pub fn topic_for(&self, stream: &str, kind: EventType) -> String {
        let stream: String = stream
            .chars()
            .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
            .collect();
        format!("{}/{}/{}", self.topic_prefix, stream, kind.as_str())
    }

    /// The outbox key of this broker: `mqtt://host:port/<prefix>` (stable
    /// across restarts, unique per broker and prefix).
    pub fn key(&self) -> String {
        format!("mqtt://{}:{}/{}", self.host, self.port, self.topic_prefix)
    }
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    acked: AtomicU64,
    /// Between a CONNACK and the next connection error.
    connected: AtomicBool,
}

/// Matches PUBACKs to the publishes waiting for them. The client's request
/// channel is FIFO, so QoS 1 publishes leave in the order they were queued:
/// each new packet id the connection task sees takes the next waiter from
/// `queued`; a packet id already in flight is the client resending after a
/// reconnect, not a new message.
#[derive(Debug, Default)]
struct Acks {
    queued: VecDeque<Option<oneshot::Sender<()>>>,
    in_flight: HashMap<u16, Option<oneshot::Sender<()>>>,
}

impl Acks {
    fn sent(&mut self, pkid: u16) {
        if pkid == 0 || self.in_flight.contains_key(&pkid) {
            return;
        }
        let waiter = self.queued.pop_front().flatten();
        self.in_flight.insert(pkid, waiter);
    }

    fn acked(&mut self, pkid: u16) {
        if let Some(Some(tx)) = self.in_flight.remove(&pkid) {
            // The waiter may have timed out and gone; nothing to tell then.
            let _ = tx.send(());
        }
    }
}

/// A connection to one broker. Cheap to clone; the connection lives until
/// [`MqttSink::shutdown`] or the runtime ends.
#[derive(Clone)]
pub struct MqttSink {
    target: Arc<MqttTarget>,
    client: AsyncClient,
    counters: Arc<Counters>,
    acks: Arc<Mutex<Acks>>,
    /// [`MqttTarget::key`], computed once.
    key: Arc<str>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl MqttSink {
    /// Starts the connection task; must be called inside a tokio runtime.
    /// Does not wait for the broker: an unreachable one is retried forever.
    pub fn start(target: MqttTarget) -> Self {
        let mut opts = MqttOptions::new(&target.client_id, &target.host, target.port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(true);
        if let Some(u) = &target.username {
            opts.set_credentials(u, target.password.clone().unwrap_or_default());
        }
        let (client, mut eventloop) = AsyncClient::new(opts, target.capacity.max(1));
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        let acks = Arc::new(Mutex::new(Acks::default()));
        let a = Arc::clone(&acks);
        let broker = format!("{}:{}", target.host, target.port);
        let task = tokio::spawn(async move {
            let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
            let mut connected = false;
            loop {
                match eventloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!(broker = %broker, "MQTT connected");
                        connected = true;
                        c.connected.store(true, Ordering::Relaxed);
                        backoff.reset();
                    }
                    Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Publish(pkid))) => {
                        a.lock().unwrap_or_else(|p| p.into_inner()).sent(pkid);
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(ack))) => {
                        c.acked.fetch_add(1, Ordering::Relaxed);
                        a.lock().unwrap_or_else(|p| p.into_inner()).acked(ack.pkid);
                    }
                    Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        // Let the DISCONNECT reach the broker, then stop.
                        let _ = eventloop.poll().await;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if connected {
                            tracing::warn!(broker = %broker, error = %e, "MQTT connection lost; reconnecting");
                        } else {
                            tracing::debug!(broker = %broker, error = %e, "MQTT broker unreachable");
                        }
                        connected = false;
                        c.connected.store(false, Ordering::Relaxed);
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        });
        Self {
            key: target.key().into(),
            target: Arc::new(target),
            client,
            counters,
            acks,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Queues one QoS 1 message without blocking; `waiter` hears of its
    /// PUBACK. The waiter is queued under the same lock as the request so
    /// both queues keep one order.
    fn enqueue(
        &self,
        topic: String,
        retain: bool,
        payload: Vec<u8>,
        waiter: Option<oneshot::Sender<()>>,
    ) -> Result<(), ClientError> {
        let mut acks = self.acks.lock().unwrap_or_else(|p| p.into_inner());
        acks.queued.push_back(waiter);
        let res = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload);
        if res.is_err() {
            acks.queued.pop_back();
        }
        res
    }

    /// One durable delivery: published, then delivered once its PUBACK is in.
    async fn deliver(&self, d: &Delivery) -> Attempt {
        let broker = format!("{}:{}", self.target.host, self.target.port);
        if !self.counters.connected.load(Ordering::Relaxed) {
            return Attempt::unreachable(format!("MQTT broker {broker} not connected"));
        }
        let (tx, rx) = oneshot::channel();
        let topic = self.target.topic_for(&d.stream, d.kind);
        if let Err(e) = self.enqueue(topic, false, d.body.clone(), Some(tx)) {
            let why = match e {
                ClientError::TryRequest(_) => "client queue full",
                _ => "client closed",
            };
            return Attempt::unreachable(format!("MQTT broker {broker}: {why}"));
        }
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(ACK_TIMEOUT, rx).await {
            Ok(Ok(())) => Attempt::Delivered,
            Ok(Err(_)) => Attempt::unreachable(format!("MQTT broker {broker}: connection closed")),
            Err(_) => Attempt::unreachable(format!(
                "MQTT broker {broker}: no PUBACK within {} s",
                ACK_TIMEOUT.as_secs()
            )),
        }
    }

    /// Queues `events` (those the target wants) without blocking; a full
    /// queue drops the message and counts it.
    pub fn publish(&self, events: &[Event]) {
        for e in events {
            if !filter_wants(&self.target.events, e.kind) {
                continue;
            }
            let Ok(body) = serde_json::to_vec(e) else {
                continue;
            };
            match self.enqueue(self.target.topic(e), false, body, None) {
                Ok(()) => {
                    self.counters.queued.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) => {
                    let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    // One warning per power of two keeps a long outage quiet.
                    if n.is_power_of_two() {
                        let why = match err {
                            ClientError::TryRequest(_) => "queue full",
                            _ => "client closed",
                        };
                        tracing::warn!(host = %self.target.host, dropped = n, reason = why, "MQTT events dropped");
                    }
                }
            }
        }
    }

    /// Queues one retained QoS 1 message without blocking (dropped and
    /// counted when the queue is full, like events).
    fn publish_retained(&self, topic: String, payload: String) {
        match self.enqueue(topic, true, payload.into_bytes(), None) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(host = %self.target.host, dropped = n, "MQTT discovery/state messages dropped");
                }
            }
        }
    }

    /// Whether this broker gets Home Assistant discovery.
    pub fn discovery(&self) -> bool {
        self.target.discovery
    }

    /// Announces `stream`'s entities (retained configs), deletes those of
    /// `gone`, and publishes `states` (`(topic, payload)` from the target's
    /// state-topic helpers) so Home Assistant starts from the current values.
    pub fn ha_announce(
        &self,
        stream: &str,
        current: &crate::homeassistant::Entities,
        gone: &crate::homeassistant::Entities,
    ) {
        if !self.target.discovery {
            return;
        }
        for (t, p) in self.target.removal(stream, gone) {
            self.publish_retained(t, p);
        }
        for (t, p) in self.target.discovery(stream, current) {
            self.publish_retained(t, p);
        }
    }

    /// Deletes every entity of a removed stream.
    pub fn ha_remove(&self, stream: &str, entities: &crate::homeassistant::Entities) {
        if !self.target.discovery {
            return;
        }
        for (t, p) in self.target.removal(stream, entities) {
            self.publish_retained(t, p);
        }
    }

    /// Publishes one Home Assistant state.
    pub fn ha_state(&self, state: &crate::homeassistant::State<'_>, stream: &str) {
        if !self.target.discovery {
            return;
        }
        use crate::homeassistant::State;
        let (topic, payload) = match *state {
            State::Objects(n) => (self.target.objects_state_topic(stream), n.to_string()),
            State::Zone(z, on) => (
                self.target.zone_state_topic(stream, z),
                if on { "ON" } else { "OFF" }.to_string(),
            ),
            State::Line(l, d, n) => (self.target.line_state_topic(stream, l, d), n.to_string()),
        };
        self.publish_retained(topic, payload);
    }

    /// Messages accepted into the queue so far.
    pub fn queued(&self) -> u64 {
        self.counters.queued.load(Ordering::Relaxed)
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// QoS 1 acknowledgements received from the broker.
    pub fn acked(&self) -> u64 {
        self.counters.acked.load(Ordering::Relaxed)
    }

    /// Sends DISCONNECT after what is queued and stops the connection task
    /// within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut task) = task else { return };
        let _ = self.client.try_disconnect();
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

impl EventSink for MqttSink {
    fn key(&self) -> &str {
        &self.key
    }

    fn kind(&self) -> SinkKind {
        SinkKind::Mqtt
    }

    fn wants(&self, kind: EventType) -> bool {
        filter_wants(&self.target.events, kind)
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(self.deliver(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_reach_the_publish_that_caused_them_and_resends_take_no_waiter() {
        let mut acks = Acks::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx3, mut rx3) = oneshot::channel();
        acks.queued.extend([Some(tx1), None, Some(tx3)]);
        acks.sent(7);
        acks.sent(8);
        // A resend of 7 after a reconnect is not a new message.
        acks.sent(7);
        acks.sent(9);
        assert!(acks.queued.is_empty());
        acks.acked(9);
        assert_eq!(rx3.try_recv(), Ok(()));
        assert!(rx1.try_recv().is_err(), "7 is not acknowledged yet");
        acks.acked(8);
        acks.acked(7);
        assert_eq!(rx1.try_recv(), Ok(()));
        assert!(acks.in_flight.is_empty());
        // QoS 0 packets (id 0) never take a waiter.
        acks.queued.push_back(None);
        acks.sent(0);
        assert_eq!(acks.queued.len(), 1);
    }
}
