//! Detection events on `vigil.events.<stream>.<type>` for downstream
//! consumers (stored in the `VIGIL_EVENTS` stream so a consumer that was
//! away can catch up within the retention).

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

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

/// A non-blocking handle: stream threads hand events over and go on; a
/// background task publishes them. The durable, at-least-once path for
/// events is the outbox and its webhooks; this is a feed, and when NATS is
/// away longer than the bounded queue lasts, events are dropped and logged.
#[derive(Clone)]
pub struct EventPublisher {
    tx: mpsc::Sender<(String, Bytes)>,
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
        Ok(EventPublisher { tx })
    }

    /// Queues one event (its JSON body). Never blocks.
    pub fn publish(&self, stream: &str, kind: &str, body: Vec<u8>) {
        let subject = event_subject(stream, kind);
        if let Err(e) = self.tx.try_send((subject, Bytes::from(body))) {
            tracing::warn!(stream = %stream, kind = %kind, error = %e, "NATS event queue full; event not published");
        }
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
