//! Scale-out over a real nats-server (JetStream): one `vigil serve` API node
//! and `vigil worker` processes, all the real binary with the real model.
//! Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{free_port, Node};
use vigil_testkit::NatsServer;

/// Frames in the test clip, and the `every` the jobs use.
const CLIP_FRAMES: u32 = 40;
const EVERY: u32 = 2;

/// A `serve` or `worker` node on the shared NATS, with its own port and
/// storage. ack_wait_s is short so a killed worker's job moves on quickly;
/// the workers report progress every second, well inside it.
fn node(dir: &Path, name: &str, command: &str, nats: &str) -> Node {
    let addr = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n\n[storage]\ndir = \"{}\"\n\n\
         [model]\ndevice = \"cpu\"\nintra_threads = 1\n\n\
         [jobs]\nqueue_size = 32\n\n\
         [queue]\nbackend = \"nats\"\nurl = \"{nats}\"\nack_wait_s = 4\n",
        dir.join(format!("{name}-store")).display()
    );
    support::start_node(dir, name, command, &addr, &config)
}

/// Job ids a node logged as succeeded.
fn succeeded(n: &Node) -> Vec<String> {
    n.log()
        .lines()
        .filter(|l| l.contains("job succeeded"))
        .filter_map(|l| {
            let rest = &l[l.find("job=")? + 4..];
            Some(
                rest.split(|c: char| !c.is_ascii_alphanumeric())
                    .next()?
                    .to_string(),
            )
        })
        .collect()
}

/// A short clip cut from the sample video (a real H.264 MP4).
fn clip(dir: &Path) -> Vec<u8> {
    let out = support::sample_h264(dir, CLIP_FRAMES, Some("scale=384:288"));
    std::fs::read(&out).expect("read clip")
}

fn submit(api: &Node, body: &[u8]) -> String {
    let r = api.req("POST", &format!("/v1/jobs?every={EVERY}"), body);
    assert_eq!(r.status, 202, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

/// Polls the job until it has succeeded or failed (at most `limit`); on
/// timeout fails with its last state and the worker's log.
fn wait_finished(api: &Node, id: &str, limit: Duration, worker: &Node) -> Value {
    let start = Instant::now();
    loop {
        let j = job(api, id);
        if j["status"] == "succeeded" || j["status"] == "failed" {
            return j;
        }
        assert!(start.elapsed() < limit, "{j}\n{}", worker.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn job(api: &Node, id: &str) -> Value {
    api.get_json(&format!("/v1/jobs/{id}"))
}

#[test]
fn two_workers_ten_jobs_one_killed_nothing_lost_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let video = clip(dir.path());
    let mut api = node(dir.path(), "api", "serve", &nats.url);
    let mut a = node(dir.path(), "worker-a", "worker", &nats.url);
    let mut b = node(dir.path(), "worker-b", "worker", &nats.url);
    api.wait_ready();
    a.wait_ready();
    b.wait_ready();
    // Workers expose metrics like the daemon.
    let m = a.req("GET", "/metrics", b"");
    assert_eq!(m.status, 200);
    assert!(m.text().contains("vigil_jobs"), "{}", m.text());

    let ids: Vec<String> = (0..10).map(|_| submit(&api, &video)).collect();

    // Kill worker A (SIGKILL: no goodbye) while it holds a job mid-way.
    let a_pid = format!("/{}", a.guard.pid());
    let start = Instant::now();
    let victim = loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "worker A never ran a job\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        );
        let held = ids.iter().find(|id| {
            let j = job(&api, id);
            j["status"] == "running"
                && j["worker"].as_str().is_some_and(|w| w.ends_with(&a_pid))
                && j["frames_done"].as_u64().is_some_and(|f| f > 0)
        });
        if let Some(id) = held {
            break id.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    a.guard.kill();

    // Every job completes; the API node answers for all of them although it
    // processed none.
    let start = Instant::now();
    let finals: HashMap<String, Value> = loop {
        let all: HashMap<String, Value> =
            ids.iter().map(|id| (id.clone(), job(&api, id))).collect();
        if all
            .values()
            .all(|j| j["status"] == "succeeded" || j["status"] == "failed")
        {
            break all;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "jobs not finished within 240 s: {all:?}\nB:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for (id, j) in &finals {
        assert_eq!(j["status"], "succeeded", "job {id}: {j}\nB:\n{}", b.log());
        assert_eq!(j["progress"], 1.0);
        assert_eq!(j["frames_done"], CLIP_FRAMES as u64, "{j}");
        let d = api.req("GET", &format!("/v1/jobs/{id}/detections"), b"");
        assert_eq!(d.status, 200, "{}", d.text());
        let lines = d.text().lines().count();
        assert_eq!(lines, (CLIP_FRAMES / EVERY) as usize, "job {id}");
        let v = api.req("GET", &format!("/v1/jobs/{id}/video"), b"");
        assert_eq!(v.status, 200);
        assert_eq!(v.header("content-type"), Some("video/mp4"));
        assert_eq!(&v.body[4..8], b"ftyp", "job {id}: not an MP4");
        // A <video> seeks with ranges, whichever backend holds the file: the
        // object store is read up to the range and the bytes match the whole.
        let len = v.body.len();
        let (from, to) = (len / 2, len / 2 + 999);
        let part = support::http(
            &api.addr,
            "GET",
            &format!("/v1/jobs/{id}/video"),
            &[("Range", &format!("bytes={from}-{to}"))],
            b"",
        )
        .expect("ranged GET");
        assert_eq!(part.status, 206, "{}", part.text());
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {from}-{to}/{len}").as_str())
        );
        assert_eq!(part.body, v.body[from..=to], "job {id}: range bytes differ");
    }
    // The killed worker's job was finished by B, in a later attempt.
    let redone = &finals[&victim];
    let b_pid = format!("/{}", b.guard.pid());
    assert!(
        redone["worker"]
            .as_str()
            .is_some_and(|w| w.ends_with(&b_pid)),
        "{redone}"
    );

    // Nothing processed to completion twice: across both workers' logs,
    // each job succeeded exactly once.
    let mut done: Vec<String> = succeeded(&a);
    done.extend(succeeded(&b));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &done {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(
            counts.get(id.as_str()),
            Some(&1),
            "job {id} succeeded {:?} times; {done:?}",
            counts.get(id.as_str())
        );
    }
    assert_eq!(done.len(), ids.len(), "{done:?}");
    assert!(!succeeded(&a).contains(&victim));
}

#[test]
fn a_bad_upload_fails_with_a_reason_and_unknown_jobs_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let mut api = node(dir.path(), "api", "serve", &nats.url);
    let mut w = node(dir.path(), "worker", "worker", &nats.url);
    api.wait_ready();
    w.wait_ready();
    // Not a container at all: refused at upload, before anything is queued.
    let r = api.req(
        "POST",
        &format!("/v1/jobs?every={EVERY}"),
        b"this is not a video, just some text bytes",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not a video container"), "{}", r.text());
    // An MP4 header over garbage passes the container check, so the worker
    // is the one that finds out, and the job fails with its reason.
    let mut fake = b"\x00\x00\x00\x14ftypisom\x00\x00\x02\x00isom".to_vec();
    fake.extend_from_slice(&b"this is not a video, just some text bytes".repeat(64));
    let id = submit(&api, &fake);
    let j = wait_finished(&api, &id, Duration::from_secs(60), &w);
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("not a readable video"),
        "{j}"
    );
    let r = api.req("GET", &format!("/v1/jobs/{id}/video"), b"");
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(api.req("GET", "/v1/jobs/0123abcd", b"").status, 404);
}

/// `/readyz` of `n` once it answers 503 with a `reason` (bounded).
fn not_ready_reason(n: &mut Node) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = support::http(&n.addr, "GET", "/readyz", &[], b"") {
            assert_eq!(r.status, 503, "ready without NATS: {}", r.text());
            if let Some(reason) = r.json()["reason"].as_str() {
                if reason.contains("retrying") {
                    return reason.to_string();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no not-ready reason within 60 s:\n{}", n.log());
}

#[test]
fn serve_and_worker_started_before_nats_become_ready_once_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let mut api = node(dir.path(), "api", "serve", &url);
    let mut w = node(dir.path(), "worker", "worker", &url);
    // Both stay up, say what they wait for, and refuse jobs with 503.
    for n in [&mut api, &mut w] {
        let reason = not_ready_reason(n);
        assert!(reason.contains(&url), "{reason}");
    }
    let r = api.req("POST", "/v1/jobs", b"x");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains(&url), "{}", r.text());
    assert!(api.log().contains("NATS is not reachable yet; retrying"));

    let nats = NatsServer::start_on(port);
    assert_eq!(nats.url, url);
    api.wait_ready();
    w.wait_ready();
    assert_eq!(api.get_json("/readyz")["ready"], true);
    for n in [&api, &w] {
        let log = n.log();
        assert!(log.contains("connected to NATS"), "{log}");
        assert!(!log.contains("panicked"), "{log}");
    }
    // The queue works: a job goes through the late NATS to the worker.
    let id = submit(&api, &clip(dir.path()));
    let done = wait_finished(&api, &id, Duration::from_secs(120), &w);
    assert_eq!(done["status"], "succeeded", "{done}");
}

#[test]
fn a_worker_for_the_local_backend_says_so_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    // The local backend has no workers to run: a clear error, too.
    let cfg = dir.path().join("local.toml");
    std::fs::write(&cfg, "[queue]\nbackend = \"local\"\n").unwrap();
    let out = support::vigil()
        .args(["worker", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backend = \"nats\""), "{err}");
}

#[test]
fn a_stream_node_runs_only_its_share_of_the_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let vtest = support::data("video/vtest.avi");
    let mut config = format!(
        "[server]\nlisten = \"{addr}\"\n[storage]\ndir = \"{}\"\n[model]\ndevice = \"cpu\"\nintra_threads = 1\n\
         [shard]\ncount = 3\n",
        dir.path().join("store").display()
    );
    for id in ["a", "b", "c", "d", "e"] {
        config.push_str(&format!(
            "\n[[streams]]\nid = \"{id}\"\nurl = \"{}\"\nloop = true\nfps = 1.0\n",
            vtest.display()
        ));
    }
    // A StatefulSet pod's hostname carries its ordinal: replica 1 of 3 runs
    // the streams at positions 1 and 4.
    let mut n = support::start_node_env(
        dir.path(),
        "streams",
        "serve",
        &addr,
        &config,
        &[("HOSTNAME", "vigil-streams-1")],
    );
    n.wait_ready();
    let streams = n.get_json("/v1/streams");
    let mut ids: Vec<&str> = streams
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["b", "e"], "{streams}");

    // A hostname without an ordinal is refused, not silently run as replica 0.
    let addr2 = format!("127.0.0.1:{}", free_port());
    let bad = config.replace(&addr, &addr2);
    let mut m = support::start_node_env(
        dir.path(),
        "unsharded",
        "serve",
        &addr2,
        &bad,
        &[("HOSTNAME", "laptop")],
    );
    let status = m.wait_exit(
        Duration::from_secs(60),
        "no error for a hostname without ordinal",
    );
    assert!(!status.success());
    assert!(
        m.log().contains("does not end in -<ordinal>"),
        "{}",
        m.log()
    );
}

#[test]
fn a_stopped_worker_gives_its_job_back_for_another_to_finish() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let video = clip(dir.path());
    let mut api = node(dir.path(), "api", "serve", &nats.url);
    let mut first = node(dir.path(), "first", "worker", &nats.url);
    api.wait_ready();
    first.wait_ready();
    // every=1: the job runs long enough to be caught mid-way.
    let r = api.req("POST", "/v1/jobs?every=1", &video);
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let j = job(&api, &id);
        if j["status"] == "running" && j["frames_done"].as_u64().is_some_and(|f| f > 0) {
            break;
        }
        assert_ne!(
            j["status"], "succeeded",
            "the job finished before it could be stopped"
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{j}\n{}",
            first.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM: a clean exit, the job back in the queue at once (not after
    // ack_wait), with no partial results. The bound is the pod's grace
    // period (docker/k8s: 30 s) less a margin: past it Kubernetes sends
    // SIGKILL and the job would only come back after ack_wait. How fast the
    // exit is on an idle machine is not this test's business.
    let (status, _) = first
        .guard
        .terminate(Duration::from_secs(25))
        .unwrap_or_else(|| panic!("worker did not stop within 25 s:\n{}", first.log()));
    assert!(status.success(), "{status}\n{}", first.log());
    let j = job(&api, &id);
    assert_eq!(j["status"], "queued", "{j}");
    assert_eq!(
        api.req("GET", &format!("/v1/jobs/{id}/video"), b"").status,
        409
    );

    let mut second = node(dir.path(), "second", "worker", &nats.url);
    second.wait_ready();
    let j = wait_finished(&api, &id, Duration::from_secs(90), &second);
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["frames_done"], CLIP_FRAMES as u64);
    assert!(succeeded(&first).is_empty());
    assert_eq!(succeeded(&second), vec![id]);
}

/// Subscribes to `subject` over the plain NATS text protocol and returns
/// the subjects of the first `n` messages (bounded by `limit`).
fn nats_subjects(url: &str, subject: &str, n: usize, limit: Duration) -> Vec<String> {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("nats://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to nats");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nPING\r\n").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let start = Instant::now();
    let subjects = |buf: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(buf)
            .split("\r\n")
            .filter_map(|l| {
                l.strip_prefix("MSG ")?
                    .split(' ')
                    .next()
                    .map(str::to_string)
            })
            .collect()
    };
    while start.elapsed() < limit && subjects(&buf).len() < n {
        let mut chunk = [0u8; 65536];
        if let Ok(k) = s.read(&mut chunk) {
            buf.extend_from_slice(&chunk[..k]);
        }
    }
    subjects(&buf)
}

#[test]
fn stream_events_are_published_per_stream_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let addr = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n[storage]\ndir = \"{}\"\n[model]\ndevice = \"cpu\"\n\
         [queue]\nbackend = \"nats\"\nurl = \"{}\"\n\n\
         [[streams]]\nid = \"lobby.cam\"\nurl = \"{}\"\nloop = true\n",
        dir.path().join("store").display(),
        nats.url,
        support::data("video/vtest.avi").display()
    );
    let mut n = support::start_node(dir.path(), "streams", "serve", &addr, &config);
    n.wait_ready();
    // The stream id's '.' becomes '_' so it stays one subject token.
    let got = nats_subjects(
        &nats.url,
        "vigil.events.lobby_cam.>",
        2,
        Duration::from_secs(60),
    );
    assert!(
        got.iter()
            .any(|s| s == "vigil.events.lobby_cam.track.started"),
        "{got:?}\n{}",
        n.log()
    );
}
