//! Detection events on `vigil.events.<stream>.<type>` for downstream
//! consumers (stored in the `VIGIL_EVENTS` stream so a consumer that was
//! away can catch up within the retention).

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use vigil_core::EventType;
use vigil_events::{Attempt, Delivery, EventSink, SendFuture, SinkKind};

use crate::{ctx, QueueError};

pub(crate) const EVENTS_STREAM: &str = "VIGIL_EVENTS";
const QUEUE: usize = 1024;

/// The subject of one event. Stream ids may hold characters NATS gives a
/// meaning (`.`, `*`, `>`, whitespace); they become `_` so one stream is
/// always one subject token. The type keeps its dots (`track.started`), so
/// `vigil.events.door.>` is every event of camera `door`.
pub fn event_subject(stream: &str, kind: &str) -> String {
    let token: String = stream
        .chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let token = if token.is_empty() { "_".into() } else { token };
    format!("vigil.events.{token}.{kind}")
}

/// A handle on the events stream: [`Self::send`] publishes one event and
/// waits for JetStream's ack (what the daemon's [`NatsEventSink`] uses, fed
/// by the outbox); [`Self::publish`] hands an event to a background task and
/// goes on (a feed: when NATS is away longer than the bounded queue lasts,
/// events are dropped and logged).
#[derive(Clone)]
pub struct EventPublisher {
    tx: mpsc::Sender<(String, Bytes)>,
    js: async_nats::jetstream::Context,
}

impl EventPublisher {
    /// Ensures the events stream exists and starts the publishing task on
    /// the current tokio runtime.
    pub async fn start(
        js: &async_nats::jetstream::Context,
        retention: Duration,
    ) -> Result<EventPublisher, QueueError> {
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: EVENTS_STREAM.into(),
            subjects: vec!["vigil.events.>".into()],
            max_age: retention,
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(ctx("create stream VIGIL_EVENTS"))?;
        let (tx, mut rx) = mpsc::channel::<(String, Bytes)>(QUEUE);
        let publisher = EventPublisher { tx, js: js.clone() };
        let js = js.clone();
        tokio::spawn(async move {
            while let Some((subject, body)) = rx.recv().await {
                let res = match js.publish(subject.clone(), body).await {
                    Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = res {
                    tracing::warn!(subject = %subject, error = %e, "cannot publish event to NATS");
                }
            }
        });
        Ok(publisher)
    }

    /// Publishes one event (its JSON body) and waits for the stream's ack,
    /// so a `Ok` means JetStream stored it.
    pub async fn send(&self, stream: &str, kind: &str, body: Vec<u8>) -> Result<(), QueueError> {
        let subject = event_subject(stream, kind);
        let ack = self
            .js
            .publish(subject, Bytes::from(body))
            .await
            .map_err(ctx("publish event"))?;
        ack.await.map_err(ctx("event ack"))?;
        Ok(())
    }

    /// Queues one event (its JSON body). Never blocks.
    pub fn publish(&self, stream: &str, kind: &str, body: Vec<u8>) {
        let subject = event_subject(stream, kind);
        if let Err(e) = self.tx.try_send((subject, Bytes::from(body))) {
            tracing::warn!(stream = %stream, kind = %kind, error = %e, "NATS event queue full; event not published");
        }
    }
}

/// NATS as an [`EventSink`] fed by the outbox, with the same durability as
/// webhooks and MQTT. The outbox opens before NATS is reached (the daemon
/// connects in the background), so the sink is created empty and
/// [`NatsEventSink::connect`]ed later; until then each attempt is a retry.
#[derive(Default)]
pub struct NatsEventSink {
    publisher: std::sync::OnceLock<EventPublisher>,
}

/// How long one publish may wait for its ack before it is retried.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

impl NatsEventSink {
    /// The outbox key of the NATS sink (one per daemon).
    pub const KEY: &'static str = "nats:vigil.events";

    pub fn new() -> Self {
        Self::default()
    }

    /// Hands over the connection; deliveries waiting for it go out on the
    /// sink's next attempt. Later calls are ignored.
    pub fn connect(&self, publisher: EventPublisher) {
        let _ = self.publisher.set(publisher);
    }

    async fn deliver(&self, d: &Delivery) -> Attempt {
        let Some(p) = self.publisher.get() else {
            return Attempt::unreachable("NATS not connected yet");
        };
        let sent = p.send(&d.stream, d.kind.as_str(), d.body.clone());
        match tokio::time::timeout(SEND_TIMEOUT, sent).await {
            Ok(Ok(())) => Attempt::Delivered,
            Ok(Err(e)) => Attempt::unreachable(e.to_string()),
            Err(_) => Attempt::unreachable(format!(
                "no JetStream ack within {} s",
                SEND_TIMEOUT.as_secs()
            )),
        }
    }
}

impl EventSink for NatsEventSink {
    fn key(&self) -> &str {
        Self::KEY
    }

    fn kind(&self) -> SinkKind {
        SinkKind::Nats
    }

    fn wants(&self, _kind: EventType) -> bool {
        true
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(self.deliver(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_one_token_per_stream() {
        assert_eq!(
            event_subject("door", "track.started"),
            "vigil.events.door.track.started"
        );
        assert_eq!(
            event_subject("lobby.cam 2>*", "zone.entered"),
            "vigil.events.lobby_cam_2__.zone.entered"
        );
        assert_eq!(
            event_subject("", "line.crossed"),
            "vigil.events._.line.crossed"
        );
    }
}
