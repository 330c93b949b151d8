//! The queue's guarantees against a real nats-server with JetStream.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::time::Duration;

use futures_util::StreamExt;
use vigil_core::JobParams;
use vigil_queue::{ClaimOutcome, JobStatus, NatsOptions, NatsQueue, SubmitError};
use vigil_testkit::NatsServer;

fn opts(url: &str, ack_wait_ms: u64, queue_size: usize) -> NatsOptions {
    NatsOptions {
        url: url.to_string(),
        ack_wait: Duration::from_millis(ack_wait_ms),
        max_deliver: 3,
        queue_size,
        retention: Duration::from_secs(3600),
        connect_timeout: Duration::from_secs(5),
        events_retention: Duration::from_secs(3600),
    }
}

fn upload(dir: &tempfile::TempDir, name: &str, body: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p
}

async fn next_claim(q: &NatsQueue, worker: &str) -> ClaimOutcome {
    for _ in 0..20 {
        if let Some(d) = q.next(Duration::from_secs(1)).await.unwrap() {
            return q.claim(d, worker).await.unwrap();
        }
    }
    panic!("no job delivered within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_goes_from_upload_to_results_through_two_nodes() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let api = NatsQueue::connect(opts(&nats.url, 30_000, 8))
        .await
        .unwrap();
    let worker = NatsQueue::connect(opts(&nats.url, 30_000, 8))
        .await
        .unwrap();
    let input = upload(&dir, "in.bin", &vec![7u8; 300_000]);
    let params = JobParams {
        every: Some(2),
        track: true,
        ..JobParams::default()
    };
    let rec = api.submit("job1", params.clone(), &input).await.unwrap();
    assert_eq!(rec.status, JobStatus::Queued);
    assert_eq!(api.counts().await.unwrap().waiting, 1);

    let ClaimOutcome::Run(mut claim) = next_claim(&worker, "w1").await else {
        panic!("expected a claim");
    };
    assert_eq!(claim.record().params, params);
    let local = dir.path().join("copy");
    assert_eq!(claim.download_input(&local).await.unwrap(), 300_000);
    assert_eq!(std::fs::read(&local).unwrap(), vec![7u8; 300_000]);
    assert!(claim.progress(5, Some(10)).await.unwrap());
    let seen = api.get("job1").await.unwrap().unwrap();
    assert_eq!(
        (seen.status, seen.frames_done, seen.worker.as_deref()),
        (JobStatus::Running, 5, Some("w1"))
    );

    let out = upload(&dir, "video.mp4", b"result bytes");
    assert!(claim.succeed(10, &[("video.mp4", &out)]).await.unwrap());
    let done = api.get("job1").await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!((done.frames_done, done.frames_total), (10, Some(10)));
    let (mut obj, size) = api.open_result(&done, "video.mp4").await.unwrap().unwrap();
    let mut body = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut obj, &mut body)
        .await
        .unwrap();
    assert_eq!((body.as_slice(), size), (&b"result bytes"[..], 12));
    assert!(api
        .open_result(&done, "detections.jsonl")
        .await
        .unwrap()
        .is_none());
    assert!(api.get("nope").await.unwrap().is_none());
    assert!(api.get("../x").await.unwrap().is_none());
    let c = api.counts().await.unwrap();
    assert_eq!((c.waiting, c.in_progress), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_loses_its_job_and_cannot_complete_it() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    // A short ack wait stands in for a worker that died.
    let q = NatsQueue::connect(opts(&nats.url, 1_000, 8)).await.unwrap();
    let input = upload(&dir, "in.bin", b"video");
    q.submit("job2", JobParams::default(), &input)
        .await
        .unwrap();
    let ClaimOutcome::Run(mut slow) = next_claim(&q, "slow").await else {
        panic!("expected a claim");
    };
    // No progress for longer than ack_wait → redelivered to another worker.
    let ClaimOutcome::Run(fast) = next_claim(&q, "fast").await else {
        panic!("expected the redelivery to be claimable");
    };
    assert_eq!(fast.record().attempt, 2);
    assert!(
        !slow.progress(1, None).await.unwrap(),
        "the slow worker must learn it lost the job"
    );
    let out = upload(&dir, "out", b"x");
    assert!(fast.succeed(10, &[("video.mp4", &out)]).await.unwrap());
    let rec = q.get("job2").await.unwrap().unwrap();
    assert_eq!(
        (rec.status, rec.attempt, rec.worker.as_deref()),
        (JobStatus::Succeeded, 2, Some("fast"))
    );
    // Nothing more is delivered: the job is acked and done.
    assert!(q.next(Duration::from_secs(2)).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loser_of_a_race_discards_its_result() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let q = NatsQueue::connect(opts(&nats.url, 1_000, 8)).await.unwrap();
    q.submit("job3", JobParams::default(), &upload(&dir, "in", b"v"))
        .await
        .unwrap();
    let ClaimOutcome::Run(first) = next_claim(&q, "a").await else {
        panic!("claim");
    };
    let ClaimOutcome::Run(second) = next_claim(&q, "b").await else {
        panic!("claim");
    };
    let out = upload(&dir, "out", b"x");
    assert!(second.succeed(10, &[("video.mp4", &out)]).await.unwrap());
    assert!(!first.succeed(10, &[("video.mp4", &out)]).await.unwrap());
    let rec = q.get("job3").await.unwrap().unwrap();
    assert_eq!((rec.attempt, rec.worker.as_deref()), (2, Some("b")));
    // The loser's attempt-1 files were removed; the winner's stay.
    let mut first_rec = rec.clone();
    first_rec.attempt = 1;
    assert!(q
        .open_result(&first_rec, "video.mp4")
        .await
        .unwrap()
        .is_none());
    assert!(q.open_result(&rec, "video.mp4").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_and_leaves_nothing_behind() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let q = NatsQueue::connect(opts(&nats.url, 30_000, 2))
        .await
        .unwrap();
    let input = upload(&dir, "in", b"v");
    q.submit("a1", JobParams::default(), &input).await.unwrap();
    q.submit("a2", JobParams::default(), &input).await.unwrap();
    match q.submit("a3", JobParams::default(), &input).await {
        Err(SubmitError::Full(n)) => assert_eq!(n, 2),
        other => panic!("expected Full, got {:?}", other.map(|r| r.id)),
    }
    assert!(q.get("a3").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_delivered_too_often_is_failed_not_retried_forever() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let q = NatsQueue::connect(opts(&nats.url, 1_000, 8)).await.unwrap();
    q.submit("crashy", JobParams::default(), &upload(&dir, "in", b"v"))
        .await
        .unwrap();
    // max_deliver = 3: claims that never finish, then a delivery beyond the
    // third gives up. (A redelivery can also land on a pull request that
    // expired a moment earlier; it still counts as a delivery, so fewer
    // than three claims may run — never more.)
    let mut runs = 0;
    let rec = loop {
        match next_claim(&q, "w").await {
            ClaimOutcome::Run(c) => {
                runs += 1;
                assert!(runs <= 3, "claimed a fourth time");
                assert_eq!(c.record().attempt, runs);
                drop(c);
            }
            ClaimOutcome::GaveUp(rec) => break rec,
            _ => panic!("expected a claim or the job given up"),
        }
    };
    assert!(runs >= 1);
    assert_eq!(rec.status, JobStatus::Failed);
    assert!(rec.error.unwrap().contains("gave up after 3 attempts"));
    // A delivery already in flight may still arrive after the give-up (the
    // expired-pull race above); it must be recognised as finished, never run.
    for _ in 0..5 {
        let Some(d) = q.next(Duration::from_secs(2)).await.unwrap() else {
            break;
        };
        match q.claim(d, "w").await.unwrap() {
            ClaimOutcome::AlreadyFinished(r) => assert_eq!(r.status, JobStatus::Failed),
            _ => panic!("a given-up job was delivered and not recognised as finished"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_on_per_stream_subjects() {
    let nats = NatsServer::start();
    let q = NatsQueue::connect(opts(&nats.url, 30_000, 8))
        .await
        .unwrap();
    let client = async_nats::connect(nats.url.as_str()).await.unwrap();
    let mut sub = client.subscribe("vigil.events.door.>").await.unwrap();
    client.flush().await.unwrap();
    let publisher = q.event_publisher().await.unwrap();
    publisher.publish(
        "door",
        "track.started",
        br#"{"type":"track.started"}"#.to_vec(),
    );
    publisher.publish("yard", "track.started", b"{}".to_vec());
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("an event within 5 s")
        .unwrap();
    assert_eq!(msg.subject.as_str(), "vigil.events.door.track.started");
    assert_eq!(&msg.payload[..], br#"{"type":"track.started"}"#);
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_not_a_hang() {
    // A port nobody listens on.
    let port = vigil_testkit::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let err = NatsQueue::connect(opts(&url, 30_000, 8))
        .await
        .err()
        .expect("connect must fail");
    assert!(err.to_string().contains(&url), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
