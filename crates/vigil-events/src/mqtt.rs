//! MQTT event sink: every event is published as its JSON body on
//! `<prefix>/<stream>/<type>` (e.g. `vigil/door/zone.entered`), QoS 1, not
//! retained — what Home Assistant and Frigate setups subscribe to.
//!
//! # Never blocking the stream
//! [`MqttSink::publish`] is called from a stream's post-processing thread after
//! the event is committed to the outbox. It only puts the message into a
//! bounded queue (`capacity`, default 1024 messages) drained by a tokio task
//! that owns the connection; when the queue is full — the broker is down or
//! slower than the cameras — the message is **dropped and counted**
//! ([`MqttSink::dropped`], and a warning is logged) rather than waiting.
//! MQTT is a live feed: the durable, at-least-once path is the outbox and its
//! webhooks, and `GET /v1/events` has everything that happened.
//!
//! # Reconnection
//! The connection task reconnects on any error with exponential backoff
//! (0.5 s doubling to 30 s, reset on a successful CONNACK). Messages queued
//! while disconnected are sent once the broker is back (as long as they fit
//! in the queue); QoS 1 messages in flight when a connection drops are resent
//! by the client, so a subscriber may see a duplicate (deduplicate on `id`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, ClientError, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;

use vigil_core::{Backoff, EventType};

use crate::Event;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

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
        let stream: String = e
            .stream
            .0
            .chars()
            .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
            .collect();
        format!("{}/{}/{}", self.topic_prefix, stream, e.kind.as_str())
    }
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    acked: AtomicU64,
}

/// A connection to one broker. Cheap to clone; the connection lives until
/// [`MqttSink::shutdown`] or the runtime ends.
#[derive(Clone)]
pub struct MqttSink {
    target: Arc<MqttTarget>,
    client: AsyncClient,
    counters: Arc<Counters>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
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
        let broker = format!("{}:{}", target.host, target.port);
        let task = tokio::spawn(async move {
            let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
            let mut connected = false;
            loop {
                match eventloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!(broker = %broker, "MQTT connected");
                        connected = true;
                        backoff.reset();
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                        c.acked.fetch_add(1, Ordering::Relaxed);
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
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        });
        Self {
            target: Arc::new(target),
            client,
            counters,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        }
    }

    /// Queues `events` (those the target wants) without blocking; a full
    /// queue drops the message and counts it.
    pub fn publish(&self, events: &[Event]) {
        for e in events {
            if !self.target.events.is_empty() && !self.target.events.contains(&e.kind) {
                continue;
            }
            let Ok(body) = serde_json::to_vec(e) else {
                continue;
            };
            match self
                .client
                .try_publish(self.target.topic(e), QoS::AtLeastOnce, false, body)
            {
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
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, true, payload.into_bytes())
        {
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
