//! The outbox and its dispatcher against fake [`EventSink`]s: one delivery
//! row per event and sink, retries with backoff, oldest first, the same
//! durability across a restart for every kind of sink. Fast (no network);
//! the real receivers are in `delivery.rs` (HTTP) and `mqtt.rs` (mosquitto).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{event, wait_until};
use vigil_events::{
    Attempt, Delivery, EventSink, EventType, Outbox, OutboxConfig, SendFuture, SinkKind, Status,
};

fn fast() -> OutboxConfig {
    OutboxConfig {
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        ..OutboxConfig::default()
    }
}

/// What a fake answers to send number `n` (0-based, all events together).
type Script = Box<dyn Fn(usize, &Delivery) -> Attempt + Send + Sync>;

/// Answers each send from its script and records what it saw.
struct Fake {
    key: String,
    only: Vec<EventType>,
    script: Script,
    seen: Mutex<Vec<(String, u32)>>,
}

impl Fake {
    fn new(
        key: &str,
        script: impl Fn(usize, &Delivery) -> Attempt + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            key: key.into(),
            only: Vec::new(),
            script: Box::new(script),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<(String, u32)> {
        self.seen.lock().unwrap().clone()
    }

    fn delivered_ids(&self, outbox: &Outbox) -> Vec<String> {
        let mut ids: Vec<(String, Status)> = outbox
            .recent(1000, None)
            .unwrap()
            .into_iter()
            .flat_map(|r| {
                r.deliveries
                    .into_iter()
                    .filter(|d| d.webhook == self.key)
                    .map(move |d| (r.event.id.clone(), d.status))
            })
            .collect();
        ids.retain(|(_, s)| *s == Status::Delivered);
        ids.into_iter().map(|(id, _)| id).collect()
    }
}

impl EventSink for Fake {
    fn key(&self) -> &str {
        &self.key
    }
    fn kind(&self) -> SinkKind {
        SinkKind::Other("fake")
    }
    fn wants(&self, kind: EventType) -> bool {
        self.only.is_empty() || self.only.contains(&kind)
    }
    fn max_attempts(&self) -> u32 {
        5
    }
    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        let n = {
            let mut seen = self.seen.lock().unwrap();
            seen.push((d.event_id.clone(), d.attempts));
            seen.len() - 1
        };
        let a = (self.script)(n, d);
        Box::pin(async move { a })
    }
}

fn sinks(s: &[&Arc<Fake>]) -> Vec<Arc<dyn EventSink>> {
    s.iter()
        .map(|f| Arc::clone(f) as Arc<dyn EventSink>)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_per_event_and_sink_that_wants_it() {
    let dir = tempfile::tempdir().unwrap();
    let all = Fake::new("fake://all", |_, _| Attempt::Delivered);
    let mut ended = Fake::new("fake://ended", |_, _| Attempt::Delivered);
    Arc::get_mut(&mut ended).unwrap().only = vec![EventType::TrackEnded];
    let outbox = Outbox::open_with_sinks(
        dir.path().join("events.sqlite3"),
        sinks(&[&all, &ended]),
        fast(),
    )
    .unwrap();
    let mut evs: Vec<_> = (0..4).map(event).collect();
    evs[3].kind = EventType::TrackEnded;
    outbox.append(&evs).unwrap();
    // 4 events; deliveries: 4 for `all` + 1 for `ended`.
    assert_eq!(outbox.row_counts().unwrap(), (4, 5));
    let d = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(10), || {
            outbox.recent(10, Some(Status::Delivered)).unwrap().len() == 4
        })
        .await
    );
    d.shutdown().await;
    assert_eq!(all.seen().len(), 4);
    assert_eq!(ended.seen(), vec![(evs[3].id.clone(), 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_sink_is_retried_with_backoff_in_event_order() {
    let dir = tempfile::tempdir().unwrap();
    // Down for the first 3 attempts, then up.
    let sink = Fake::new("fake://flaky", |n, _| {
        if n < 3 {
            Attempt::unreachable("connect: refused")
        } else {
            Attempt::Delivered
        }
    });
    let outbox =
        Outbox::open_with_sinks(dir.path().join("events.sqlite3"), sinks(&[&sink]), fast())
            .unwrap();
    let evs: Vec<_> = (0..6).map(event).collect();
    outbox.append(&evs).unwrap();
    let d = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(10), || sink
            .delivered_ids(&outbox)
            .len()
            == 6)
        .await,
        "{:?}",
        sink.seen()
    );
    d.shutdown().await;
    let seen = sink.seen();
    // The outage cost one probe per backoff step (all on the oldest event),
    // then everything went in order.
    assert_eq!(
        seen[..3],
        [
            (evs[0].id.clone(), 0),
            (evs[0].id.clone(), 1),
            (evs[0].id.clone(), 2)
        ]
    );
    let order: Vec<&str> = seen[3..].iter().map(|(id, _)| id.as_str()).collect();
    let want: Vec<&str> = evs.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(order, want);
    let rec = outbox.recent(10, None).unwrap();
    let oldest = rec.iter().find(|r| r.event.id == evs[0].id).unwrap();
    assert_eq!(oldest.deliveries[0].attempts, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_is_dead_at_once_and_max_attempts_ends_retries() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Fake::new("fake://picky", |_, d| {
        if d.kind == EventType::TrackEnded {
            Attempt::Rejected("400".into())
        } else {
            Attempt::Retry {
                error: "busy".into(),
                retry_after: None,
                pause_sink: false,
            }
        }
    });
    let outbox =
        Outbox::open_with_sinks(dir.path().join("events.sqlite3"), sinks(&[&sink]), fast())
            .unwrap();
    let mut evs: Vec<_> = (0..2).map(event).collect();
    evs[1].kind = EventType::TrackEnded;
    outbox.append(&evs).unwrap();
    let d = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(10), || {
            outbox.recent(10, Some(Status::Dead)).unwrap().len() == 2
        })
        .await
    );
    d.shutdown().await;
    let rec = outbox.recent(10, None).unwrap();
    let attempts = |id: &str| rec.iter().find(|r| r.event.id == id).unwrap().deliveries[0].attempts;
    assert_eq!(attempts(&evs[0].id), 5, "max_attempts of the sink");
    assert_eq!(attempts(&evs[1].id), 1, "rejected at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_of_any_sink_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite3");
    let evs: Vec<_> = (0..3).map(event).collect();
    {
        let down = Fake::new("mqtt://broker:1883/vigil", |_, _| {
            Attempt::unreachable("not connected")
        });
        let outbox = Outbox::open_with_sinks(&path, sinks(&[&down]), fast()).unwrap();
        outbox.append(&evs).unwrap();
        let d = outbox.start_delivery();
        assert!(wait_until(Duration::from_secs(10), || down.seen().len() >= 2).await);
        d.shutdown().await;
    }
    // The same key after the restart, now reachable.
    let up = Fake::new("mqtt://broker:1883/vigil", |_, _| Attempt::Delivered);
    let outbox = Outbox::open_with_sinks(&path, sinks(&[&up]), fast()).unwrap();
    let d = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(10), || up.delivered_ids(&outbox).len()
            == 3)
        .await
    );
    d.shutdown().await;
    let ids: Vec<String> = up.seen().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, evs.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn two_sinks_with_one_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = Fake::new("fake://same", |_, _| Attempt::Delivered);
    let b = Fake::new("fake://same", |_, _| Attempt::Delivered);
    let err = Outbox::open_with_sinks(dir.path().join("e.sqlite3"), sinks(&[&a, &b]), fast())
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("fake://same")));
}
