//! Webhook delivery against a real HTTP receiver on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use support::{event, free_addr, ok, reply_status, wait_until, Receiver};
use vigil_events::{EventType, Outbox, OutboxConfig, Status, WebhookTarget};

const SECRET: &str = "s3cret";

fn fast() -> OutboxConfig {
    OutboxConfig {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..OutboxConfig::default()
    }
}

fn target(url: String, max_attempts: u32) -> WebhookTarget {
    WebhookTarget {
        secret: Some(SECRET.into()),
        timeout: Duration::from_secs(2),
        max_attempts,
        ..WebhookTarget::new(url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_503_and_signs_every_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start(
        "127.0.0.1:0".parse().expect("addr"),
        Some(SECRET),
        Arc::new(|n| {
            if n < 5 {
                (503, Vec::new())
            } else {
                (204, Vec::new())
            }
        }),
    )
    .await;
    let outbox = Outbox::open(
        dir.path().join("events.sqlite3"),
        vec![target(rx.url(), 10)],
        fast(),
    )
    .expect("open");
    let events: Vec<_> = (0..10).map(event).collect();
    outbox.append(&events).expect("append");
    assert_eq!(outbox.stats().pending.load(Ordering::Relaxed), 10);
    let delivery = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(20), || rx.accepted_ids() == 10).await,
        "all events delivered"
    );
    assert!(
        wait_until(Duration::from_secs(5), || outbox
            .stats()
            .pending
            .load(Ordering::Relaxed)
            == 0)
        .await
    );
    delivery.shutdown().await;
    let log = rx.log();
    assert_eq!(log.bad_signatures, 0);
    assert_eq!(log.missing_headers, 0);
    assert_eq!(log.requests, 15, "5 failures + 10 successes");
    let s = outbox.stats();
    assert_eq!(s.ok.load(Ordering::Relaxed), 10);
    assert_eq!(s.retry.load(Ordering::Relaxed), 5);
    assert_eq!(s.failed.load(Ordering::Relaxed), 0);
    let recent = outbox.recent(100, None).expect("recent");
    assert_eq!(recent.len(), 10);
    assert_eq!(recent[0].event.id, events[9].id, "newest first");
    assert!(recent.iter().all(|r| r.status == Status::Delivered));
    assert_eq!(
        recent.iter().map(|r| r.deliveries[0].attempts).sum::<u32>(),
        15
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_retry_after_on_429() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start(
        "127.0.0.1:0".parse().expect("addr"),
        Some(SECRET),
        Arc::new(|n| {
            if n == 0 {
                (429, vec![("Retry-After".to_string(), "1".to_string())])
            } else {
                (200, Vec::new())
            }
        }),
    )
    .await;
    let outbox =
        Outbox::open(dir.path().join("o.db"), vec![target(rx.url(), 10)], fast()).expect("open");
    outbox.append(&[event(1), event(2)]).expect("append");
    let delivery = outbox.start_delivery();
    assert!(wait_until(Duration::from_secs(10), || rx.accepted_ids() == 2).await);
    delivery.shutdown().await;
    let log = rx.log();
    let gap = log.times[1] - log.times[0];
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After: 1 honoured (backoff alone is 20 ms), gap {gap:?}"
    );
    assert_eq!(log.requests, 3, "the pause covers the whole target");
    assert_eq!(log.bad_signatures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_gets_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let url = format!("http://{addr}/hook");
    let outbox =
        Outbox::open(dir.path().join("o.db"), vec![target(url, 1000)], fast()).expect("open");
    let events: Vec<_> = (0..25).map(event).collect();
    outbox.append(&events).expect("append");
    let delivery = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(10), || outbox
            .stats()
            .retry
            .load(Ordering::Relaxed)
            >= 3)
        .await,
        "connection refused is retried"
    );
    let rx = Receiver::start(addr, Some(SECRET), ok()).await;
    assert!(wait_until(Duration::from_secs(20), || rx.accepted_ids() == 25).await);
    delivery.shutdown().await;
    assert_eq!(rx.log().bad_signatures, 0);
    let recent = outbox.recent(100, Some(Status::Delivered)).expect("recent");
    assert_eq!(recent.len(), 25);
    assert!(outbox
        .recent(100, Some(Status::Pending))
        .expect("recent")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_after_max_attempts_and_on_4xx() {
    let dir = tempfile::tempdir().expect("tempdir");
    let always_500 = Receiver::start(
        "127.0.0.1:0".parse().expect("addr"),
        Some(SECRET),
        reply_status(500),
    )
    .await;
    let rejects = Receiver::start(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        reply_status(400),
    )
    .await;
    let mut only_ended = target(rejects.url(), 10);
    only_ended.secret = None;
    only_ended.events = vec![EventType::TrackEnded];
    let outbox = Outbox::open(
        dir.path().join("o.db"),
        vec![target(always_500.url(), 3), only_ended],
        fast(),
    )
    .expect("open");
    let mut ended = event(7);
    ended.kind = vigil_events::EventType::TrackEnded;
    outbox
        .append(&[event(1), event(2), ended.clone()])
        .expect("append");
    let delivery = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(15), || outbox
            .recent(10, Some(Status::Dead))
            .map(|r| r.len() == 3)
            .unwrap_or(false))
        .await,
        "every event dead"
    );
    delivery.shutdown().await;
    assert_eq!(always_500.log().requests, 9, "3 events x 3 attempts");
    assert_eq!(rejects.log().requests, 1, "400 is not retried");
    let recent = outbox.recent(10, None).expect("recent");
    let rec = recent
        .iter()
        .find(|r| r.event.id == ended.id)
        .expect("ended event");
    assert_eq!(rec.deliveries.len(), 2);
    let by_attempts: Vec<u32> = rec.deliveries.iter().map(|d| d.attempts).collect();
    assert!(
        by_attempts.contains(&3) && by_attempts.contains(&1),
        "{by_attempts:?}"
    );
    assert!(rec.deliveries.iter().all(|d| d.status == Status::Dead));
    let s = outbox.stats();
    assert_eq!(s.failed.load(Ordering::Relaxed), 4);
    assert_eq!(s.retry.load(Ordering::Relaxed), 6);
    assert_eq!(s.pending.load(Ordering::Relaxed), 0);

    // Dead rows outlive delivered ones: kept after 25 h, gone after 8 days.
    let now = SystemTime::now();
    assert_eq!(
        outbox
            .prune(now + Duration::from_secs(25 * 3600))
            .expect("prune"),
        0
    );
    assert_eq!(
        outbox
            .prune(now + Duration::from_secs(8 * 24 * 3600))
            .expect("prune"),
        3
    );
    assert_eq!(
        outbox.row_counts().expect("count"),
        (0, 0),
        "deliveries cascade"
    );
}

#[test]
fn unsubscribed_events_are_delivered_at_once_and_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = WebhookTarget::new("http://127.0.0.1:9/hook");
    t.events = vec![EventType::ZoneEntered];
    let outbox =
        Outbox::open(dir.path().join("o.db"), vec![t], OutboxConfig::default()).expect("open");
    outbox.append(&[event(1), event(2)]).expect("append");
    let recent = outbox.recent(10, None).expect("recent");
    assert!(recent
        .iter()
        .all(|r| r.status == Status::Delivered && r.deliveries.is_empty()));
    let now = SystemTime::now();
    assert_eq!(
        outbox
            .prune(now + Duration::from_secs(3600))
            .expect("prune"),
        0
    );
    assert_eq!(
        outbox
            .prune(now + Duration::from_secs(25 * 3600))
            .expect("prune"),
        2
    );
    assert_eq!(outbox.row_counts().expect("count"), (0, 0));
}

#[test]
fn duplicate_webhook_urls_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = WebhookTarget::new("http://127.0.0.1:9/hook");
    let err = Outbox::open(
        dir.path().join("o.db"),
        vec![t.clone(), t],
        OutboxConfig::default(),
    )
    .expect_err("duplicate");
    assert!(err.to_string().contains("webhooks[1]"), "{err}");
}

#[test]
fn removed_webhooks_leave_no_pending_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.db");
    let outbox = Outbox::open(
        &path,
        vec![WebhookTarget::new("http://127.0.0.1:9/a")],
        OutboxConfig::default(),
    )
    .expect("open");
    outbox.append(&[event(1)]).expect("append");
    drop(outbox);
    let outbox = Outbox::open(
        &path,
        vec![WebhookTarget::new("http://127.0.0.1:9/b")],
        OutboxConfig::default(),
    )
    .expect("reopen");
    let rec = outbox.recent(10, None).expect("recent");
    assert_eq!(rec[0].status, Status::Dead);
    assert_eq!(
        rec[0].deliveries[0].last_error.as_deref(),
        Some("webhook no longer configured")
    );
    assert_eq!(outbox.stats().pending.load(Ordering::Relaxed), 0);
}

/// Issue #15 item 5: a webhook URL's query may carry a token; a failed
/// delivery's `last_error` (shown by `GET /v1/events`) used to hold the full
/// URL. Refused and timed-out receivers are both recorded without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_record_no_url_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Accepts connections (in the backlog) and never answers: a timeout.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_url = format!(
        "http://{}/hook?token=t0k3n",
        hung.local_addr().expect("addr")
    );
    let refused_url = format!("http://{}/hook?token=t0k3n&x=2", free_addr());
    let targets = vec![
        WebhookTarget {
            timeout: Duration::from_millis(500),
            ..target(hung_url, 1)
        },
        target(refused_url, 1),
    ];
    let outbox = Outbox::open(dir.path().join("o.db"), targets, fast()).expect("open");
    outbox.append(&[event(0)]).expect("append");
    let delivery = outbox.start_delivery();
    assert!(
        wait_until(Duration::from_secs(20), || outbox
            .recent(10, Some(Status::Dead))
            .map(|r| r.len() == 1 && r[0].deliveries.iter().all(|d| d.status == Status::Dead))
            .unwrap_or(false))
        .await,
        "both deliveries dead: {:?}",
        outbox.recent(10, None)
    );
    delivery.shutdown().await;
    let recent = outbox.recent(10, None).expect("recent");
    let shown = serde_json::to_string(&recent).expect("json");
    assert!(!shown.contains("t0k3n"), "{shown}");
    for d in &recent[0].deliveries {
        let err = d.last_error.as_deref().unwrap_or_default();
        assert!(!err.is_empty() && !err.contains("/hook"), "{d:?}");
        assert!(d.webhook.contains("token=***"), "{d:?}");
    }
}
