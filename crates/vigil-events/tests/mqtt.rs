//! The MQTT sink against a real `mosquitto` broker on a free 127.0.0.1 port
//! (Debian: `apt-get install mosquitto`): events arrive on
//! `<prefix>/<stream>/<type>` as their JSON bodies, including those queued
//! while the broker was not up yet (the sink reconnects).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use support::event;
use vigil_events::{Event, EventType, MqttSink, MqttTarget};
use vigil_testkit::Mosquitto;

/// Subscribes to `filter` and returns the (topic, payload) messages as they come.
async fn subscribe(
    port: u16,
    filter: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)> {
    let (client, mut el) =
        AsyncClient::new(MqttOptions::new("vigil-test-sub", "127.0.0.1", port), 16);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut ready = Some(ready_tx);
        loop {
            match el.poll().await {
                Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("no SUBACK")
        .unwrap();
    rx
}

async fn collect(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    n: usize,
) -> Vec<(String, Event)> {
    let mut out = Vec::new();
    while out.len() < n {
        let (topic, body) = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} MQTT messages arrived", out.len()))
            .expect("subscriber ended");
        let e: Event = serde_json::from_slice(&body).expect("payload is an event's JSON");
        out.push((topic, e));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_to_a_real_broker_by_stream_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let port = broker.port;
    let mut rx = subscribe(port, "vigil/#").await;

    let sink = MqttSink::start(MqttTarget {
        client_id: "vigil-test-pub".into(),
        ..MqttTarget::new("127.0.0.1", port)
    });
    let mut zone = event(2);
    zone.kind = EventType::ZoneEntered;
    zone.zone = Some("door".into());
    zone.stream = vigil_core::StreamId("front/yard".into());
    let sent = vec![event(1), zone];
    sink.publish(&sent);

    let got = collect(&mut rx, 2).await;
    let mut got_by_id: Vec<_> = got.into_iter().map(|(t, e)| (e.id.clone(), t, e)).collect();
    got_by_id.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got_by_id[0].1, "vigil/cam/track.started");
    assert_eq!(got_by_id[0].2, sent[0]);
    assert_eq!(got_by_id[1].1, "vigil/front_yard/zone.entered");
    assert_eq!(got_by_id[1].2, sent[1]);
    assert_eq!(sink.dropped(), 0);
    sink.shutdown(Duration::from_secs(2)).await;
}

/// A TCP front for the broker that the sink connects to. Until `open()` it
/// accepts each connection and closes it at once (the sink sees a broker that
/// is not there, and `refused` counts its attempts); after `open()` it
/// forwards every new connection to the real broker. This lets the test wait
/// for the sink's failed attempts as a condition and have its subscriber in
/// place before the sink can reach the broker, whatever the sink's private
/// retry schedule is.
struct Gate {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    async fn start(broker_port: u16) -> Gate {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gate");
        let addr = listener.local_addr().expect("gate address");
        let open = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let (o, r) = (Arc::clone(&open), Arc::clone(&refused));
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut out) =
                        tokio::net::TcpStream::connect(("127.0.0.1", broker_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Gate {
            addr,
            open,
            refused,
            task,
        }
    }

    fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn open(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_before_the_broker_is_up_arrive_once_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let port = broker.port;
    // The subscriber is in place before the sink can reach the broker at all.
    let mut rx = subscribe(port, "home/vigil/#").await;
    let gate = Gate::start(port).await;
    let sink = MqttSink::start(MqttTarget {
        client_id: "vigil-test-late".into(),
        topic_prefix: "home/vigil".into(),
        events: vec![EventType::TrackStarted],
        ..MqttTarget::new("127.0.0.1", gate.addr.port())
    });
    let mut ended = event(9);
    ended.kind = EventType::TrackEnded;
    // Published while no broker answers the sink.
    sink.publish(&[event(1), event(2), ended]);
    // Two failed connection attempts: the sink has met the outage and is
    // backing off, with the events queued.
    vigil_testkit::wait_until_async(
        "the sink has failed to connect twice",
        Duration::from_secs(30),
        || {
            let n = gate.refused();
            async move { (n >= 2).then_some(()) }
        },
    )
    .await;
    assert!(rx.try_recv().is_err(), "nothing can have arrived yet");
    gate.open();

    // The sink reconnects on its own and sends what it had queued.
    let got = collect(&mut rx, 2).await;
    let mut ids: Vec<_> = got.iter().map(|(_, e)| e.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, vec![event(1).id, event(2).id]);
    assert!(got.iter().all(|(t, _)| t == "home/vigil/cam/track.started"));
    // The filtered-out track.ended never shows up.
    assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv())
        .await
        .is_err());
    assert_eq!(sink.dropped(), 0);
    sink.shutdown(Duration::from_secs(2)).await;
}

/// Events go to MQTT through the outbox like webhook deliveries: a broker
/// that cannot be reached when they are sent, and stays so across a daemon
/// restart, gets every one of them once it is reachable again, in order,
/// each marked delivered only on its PUBACK. (The broker sits behind a
/// [`Gate`], so the subscriber is in place before the sink can get through.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_deliveries_survive_a_broker_down_at_send_time_and_a_restart() {
    use std::sync::Arc;
    use support::wait_until;
    use vigil_events::{EventSink, Outbox, OutboxConfig, Status};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite3");
    let broker = Mosquitto::start(dir.path());
    let port = broker.port;
    let mut rx = subscribe(port, "vigil/#").await;
    let gate = Gate::start(port).await;
    let target = MqttTarget::new("127.0.0.1", gate.addr.port());
    let cfg = || OutboxConfig {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..OutboxConfig::default()
    };
    let open = |sink: &MqttSink| {
        Outbox::open_with_sinks(
            &path,
            vec![Arc::new(sink.clone()) as Arc<dyn EventSink>],
            cfg(),
        )
        .unwrap()
    };
    let attempts = |o: &Outbox| -> Vec<(Status, u32)> {
        o.recent(10, None)
            .unwrap()
            .iter()
            .map(|r| (r.status, r.deliveries[0].attempts))
            .collect()
    };
    let evs: Vec<Event> = (0..3).map(event).collect();

    // 1. The broker cannot be reached: attempted, failed, still pending.
    let sink = MqttSink::start(target.clone());
    let outbox = open(&sink);
    outbox.append(&evs).unwrap();
    let d = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(10), || attempts(&outbox)
            .iter()
            .any(|(_, n)| *n >= 2))
        .await,
        "{:?}",
        attempts(&outbox)
    );
    d.shutdown().await;
    sink.shutdown(Duration::from_secs(2)).await;
    let before = outbox.recent(10, None).unwrap();
    assert!(before.iter().all(|r| r.status == Status::Pending));
    let err = before
        .iter()
        .find_map(|r| r.deliveries[0].last_error.clone())
        .unwrap_or_default();
    assert!(err.contains("not connected"), "{err}");
    assert_eq!(before[0].deliveries[0].webhook, target.key());
    drop(outbox);

    // 2. Restarted with the broker still unreachable, then it comes back.
    let sink = MqttSink::start(target.clone());
    let outbox = open(&sink);
    let d = outbox.start_delivery();
    let refused = gate.refused();
    assert!(
        wait_until(Duration::from_secs(10), || gate.refused() > refused).await,
        "the restarted sink never tried the broker"
    );
    assert!(
        rx.try_recv().is_err(),
        "nothing got through the closed gate"
    );
    gate.open();
    let got = collect(&mut rx, 3).await;
    for ((topic, e), sent) in got.iter().zip(&evs) {
        assert_eq!(e, sent, "same payload, oldest first");
        assert_eq!(topic, &target.topic(sent));
    }
    assert!(
        wait_until(Duration::from_secs(15), || attempts(&outbox)
            .iter()
            .all(|(s, _)| *s == Status::Delivered))
        .await,
        "{:?}",
        attempts(&outbox)
    );
    d.shutdown().await;
    sink.shutdown(Duration::from_secs(2)).await;
}
