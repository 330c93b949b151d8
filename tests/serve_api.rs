//! End-to-end tests of `vigil serve`: the real binary, model, media, FFmpeg
//! and (for RTSP) the GStreamer test server. Each test starts its own daemon
//! on a free port with its own storage directory; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{free_port, ChildGuard, HttpResponse};

/// A running `vigil serve` (the testkit's daemon handle).
type Daemon = support::Node;

/// Starts `vigil serve` on a free port with `[server]` extras and further
/// sections.
fn start(dir: &Path, server_extra: &str, rest: &str) -> Daemon {
    start_on(dir, free_port(), server_extra, rest)
}

/// Like [`start`] on `port` (a restart on the same address and storage).
fn start_on(dir: &Path, port: u16, server_extra: &str, rest: &str) -> Daemon {
    let addr = format!("127.0.0.1:{port}");
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n{server_extra}\n\n[storage]\ndir = \"{}\"\n\n\
         [model]\ndevice = \"cpu\"\nintra_threads = 1\n\n{rest}\n",
        dir.join("store").display()
    );
    support::start_node(dir, &format!("daemon-{port}"), "serve", &addr, &config)
}

/// The stream `id` as `GET /v1/streams` lists it.
fn stream(d: &Daemon, id: &str) -> Option<Value> {
    stream_in(&d.get_json("/v1/streams"), id)
}

/// Polls `GET /v1/streams` until the stream `id` is listed and `pred` holds
/// on it (bounded).
fn wait_stream(d: &Daemon, id: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let found = |v: &Value| stream_in(v, id).is_some_and(|s| pred(&s));
    stream_in(&d.wait_json("/v1/streams", limit, found), id).unwrap_or_default()
}

fn stream_in(list: &Value, id: &str) -> Option<Value> {
    list.as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == id).cloned())
}

/// The first `frames` frames of the sample clip as H.264 MP4.
fn upload(d: &Daemon, query: &str, body: &[u8]) -> HttpResponse {
    d.req_with(
        "POST",
        &format!("/v1/jobs{query}"),
        &[("Content-Type", "application/octet-stream")],
        body,
    )
}

fn wait_job_done(d: &Daemon, id: &str, limit: Duration) -> Value {
    d.wait_json(&format!("/v1/jobs/{id}"), limit, |j| {
        j["status"] == "succeeded" || j["status"] == "failed"
    })
}

const NO_STREAMS: &str = "";

#[test]
fn health_readiness_detect_events_and_openapi() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = start(tmp.path(), "", NO_STREAMS);
    let ready = d.wait_ready();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["device"], "cpu", "{ready}");
    assert_eq!(d.get("/healthz").status, 200);

    let dog = std::fs::read(support::data("photos/dog.jpg")).unwrap();
    let r = d.req_with(
        "POST",
        "/v1/detect",
        &[("Content-Type", "image/jpeg")],
        &dog,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(768), Some(576))
    );
    let labels: Vec<&str> = j["detections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["label"].as_str())
        .collect();
    for want in ["bicycle", "dog", "car"] {
        assert!(labels.contains(&want), "{want} missing from {labels:?}");
    }

    let r = d.req_with(
        "POST",
        "/v1/detect",
        &[("Content-Type", "text/plain")],
        b"hello, not an image",
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not a readable image"));

    let r = d.get("/v1/events?limit=5");
    assert_eq!((r.status, r.json()), (200, serde_json::json!([])));
    // What the document forbids is refused with 400 naming the parameter.
    for (path, needle) in [
        (
            "/v1/events?limit=2147483648",
            "limit must be an integer from 1 to 1000",
        ),
        (
            "/v1/events?status=",
            "status must be one of pending, delivered, dead",
        ),
        (
            "/v1/events?limit=5&limit=6",
            "\"limit\" is given more than once",
        ),
        ("/v1/events?lmit=5", "unknown query parameter \"lmit\""),
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let msg = r.json()["error"].as_str().unwrap_or("").to_string();
        assert!(msg.contains(needle), "{path}: {msg}");
    }
    let r = d.req_with("POST", "/v1/jobs?every=0", &[], b"x");
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("every must be an integer from 1"),
        "{}",
        r.text()
    );
    let r = d.get("/v1/jobs/nope");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());

    // The OpenAPI document lists every route, and every route the README
    // documents exists in it.
    let api = d.get("/openapi.json").json();
    assert!(api["openapi"].as_str().unwrap().starts_with("3."));
    let paths = api["paths"].as_object().unwrap();
    for (p, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/v1/detect", "post"),
        ("/v1/jobs", "post"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}/video", "get"),
        ("/v1/jobs/{id}/detections", "get"),
        ("/v1/streams", "get"),
        ("/v1/streams", "post"),
        ("/v1/streams/{id}", "delete"),
        ("/v1/streams/{id}/snapshot.jpg", "get"),
        ("/v1/events", "get"),
    ] {
        assert!(
            paths.get(p).and_then(|m| m.get(method)).is_some(),
            "{method} {p} missing"
        );
    }
    let readme = std::fs::read_to_string(support::root().join("README.md")).unwrap();
    let mut documented = 0;
    for line in readme
        .lines()
        .filter(|l| l.trim_start().starts_with("curl "))
    {
        let Some(url) = line
            .split_whitespace()
            .find(|w| w.contains("127.0.0.1:8080/"))
        else {
            continue;
        };
        let path = url
            .trim_matches(|c| c == '"' || c == '\'')
            .split("127.0.0.1:8080")
            .nth(1)
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("");
        // Concrete ids in examples map onto the templated routes.
        let templated = path
            .split('/')
            .enumerate()
            .map(|(i, seg)| {
                if i == 3 && (path.starts_with("/v1/jobs/") || path.starts_with("/v1/streams/")) {
                    "{id}"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        assert!(
            paths.contains_key(&templated),
            "README curl path {path} ({templated}) not in /openapi.json"
        );
        documented += 1;
    }
    assert!(
        documented >= 8,
        "README documents only {documented} curl examples"
    );
}

#[test]
fn job_runs_to_completion_with_video_and_detections() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = support::sample_h264(tmp.path(), 40, None);
    let mut d = start(tmp.path(), "", NO_STREAMS);
    d.wait_ready();
    let r = upload(&d, "?every=2", &std::fs::read(&clip).unwrap());
    assert_eq!(r.status, 202, "{}", r.text());
    let j = r.json();
    let id = j["id"].as_str().unwrap().to_string();
    assert_eq!(j["status"], "queued");
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/jobs/{id}").as_str())
    );

    let done = wait_job_done(&d, &id, Duration::from_secs(180));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["frames_done"], 40);
    assert_eq!(done["frames_total"], 40);

    let v = d.get(&format!("/v1/jobs/{id}/video"));
    assert_eq!(v.status, 200);
    assert_eq!(v.header("content-type"), Some("video/mp4"));
    let out = tmp.path().join("out.mp4");
    std::fs::write(&out, &v.body).unwrap();
    assert_eq!(vigil_testkit::probe_video(&out).frames, 40);

    let det = d.get(&format!("/v1/jobs/{id}/detections"));
    assert_eq!(det.status, 200);
    let lines: Vec<Value> = det
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 20, "every=2 over 40 frames");
    assert_eq!(lines[1]["frame"], 2);
    assert!(lines[0]["pts_ms"].is_number());
    // The clip's first 40 frames show several walking people throughout:
    // every processed frame has tracked persons, and tracking holds
    // identities, so some track runs through (nearly) the whole job rather
    // than new ids each frame.
    let mut frames_of_track: std::collections::HashMap<u64, usize> = Default::default();
    for l in &lines {
        let persons: Vec<u64> = l["detections"]
            .as_array()
            .expect("detections")
            .iter()
            .filter(|d| d["label"] == "person")
            .filter_map(|d| d["track_id"].as_u64().filter(|&t| t > 0))
            .collect();
        assert!(
            !persons.is_empty(),
            "no tracked person in frame {}: {l}",
            l["frame"]
        );
        for t in persons {
            *frames_of_track.entry(t).or_default() += 1;
        }
    }
    let longest = frames_of_track.values().max().copied().unwrap_or(0);
    assert!(
        longest >= 18,
        "no track spans 18 of the 20 processed frames: {frames_of_track:?}"
    );

    // Multipart upload with a `video` field is accepted the same way.
    let boundary = "vigilboundary7";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"c.mp4\"\r\n\
         Content-Type: video/mp4\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&std::fs::read(&clip).unwrap());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = d.req_with(
        "POST",
        "/v1/jobs?track=false",
        &[("Content-Type", &ct)],
        &body,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id2 = r.json()["id"].as_str().unwrap().to_string();
    let done = wait_job_done(&d, &id2, Duration::from_secs(180));
    assert_eq!(done["status"], "succeeded", "{done}");
    let det = d.get(&format!("/v1/jobs/{id2}/detections")).text();
    assert!(
        !det.contains("track_id"),
        "track=false still reports tracks"
    );
}

#[test]
fn upload_limit_queue_full_and_non_video() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = std::fs::read(support::sample_h264(tmp.path(), 40, None)).unwrap();
    assert!(clip.len() < 1024 * 1024);
    let mut d = start(
        tmp.path(),
        "max_upload_mb = 1",
        "[jobs]\nworkers = 1\nqueue_size = 1\n",
    );
    d.wait_ready();

    let big = vec![7u8; 2 * 1024 * 1024];
    let r = upload(&d, "", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("max_upload_mb"));

    // Refused at upload: not a container (a playlist or text would make
    // FFmpeg read other files).
    let r = upload(&d, "", b"this is a text file, not a video\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not a video container"),
        "{}",
        r.text()
    );

    let r = upload(&d, "?every=0", &clip);
    assert_eq!(r.status, 400);

    // One worker, one queue slot: the third upload in quick succession
    // finds the queue full.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let r = upload(&d, "", &clip);
        if r.status == 429 {
            retry_after = r.header("retry-after").map(str::to_string);
            assert!(r.json()["error"]
                .as_str()
                .unwrap()
                .contains("queue is full"));
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s > 0)));
    assert_eq!(statuses[0], 202, "{statuses:?}");
}

#[test]
fn bearer_token_guards_v1_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = start(tmp.path(), "token = \"s3cret-token\"", NO_STREAMS);
    d.wait_ready();
    let r = d.get("/v1/streams");
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].is_string());
    let r = d.req_with(
        "GET",
        "/v1/streams",
        &[("Authorization", "Bearer wrong")],
        b"",
    );
    assert_eq!(r.status, 401);
    let r = d.req_with(
        "GET",
        "/v1/streams",
        &[("Authorization", "Bearer s3cret-token")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get("/healthz").status, 200);
    assert_eq!(d.get("/readyz").status, 200);
    assert_eq!(d.get("/metrics").status, 200);
}

#[test]
fn queued_and_running_jobs_survive_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = std::fs::read(support::sample_h264(tmp.path(), 120, None)).unwrap();
    let port = free_port();
    let jobs = "[jobs]\nworkers = 1\n";
    let mut d = start_on(tmp.path(), port, "", jobs);
    d.wait_ready();
    let a = upload(&d, "", &clip).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = upload(&d, "", &clip).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.wait_json(&format!("/v1/jobs/{a}"), Duration::from_secs(60), |j| {
        j["status"] == "running" && j["frames_done"].as_u64().is_some_and(|n| n > 0)
    });
    // SIGKILL: no chance to persist anything beyond what is already durable.
    d.guard.kill();

    let mut d = start_on(tmp.path(), port, "", jobs);
    d.wait_ready();
    for id in [&a, &b] {
        let j = wait_job_done(&d, id, Duration::from_secs(300));
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["frames_done"], 120, "{j}");
    }
    assert!(d.log().contains("re-queued jobs"), "{}", d.log());
}

#[test]
fn streams_file_loop_unreachable_rtsp_snapshot_delete_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = support::data("video/vtest.avi");
    // The dead camera below is on 127.0.0.1, which API streams may not
    // reach by default (server.stream_deny); this test lifts that.
    let mut d = start(
        tmp.path(),
        "stream_deny = []",
        &format!(
            "[[streams]]\nid = \"sample\"\nurl = \"{}\"\nloop = true\n",
            sample.display()
        ),
    );
    d.wait_ready();
    let s = wait_stream(&d, "sample", Duration::from_secs(30), |s| {
        s["state"] == "running" && s["fps_in"].as_f64().is_some_and(|f| f > 0.0)
    });
    let before = s["frames_processed"].as_u64().unwrap();
    let s = wait_stream(&d, "sample", Duration::from_secs(30), |s| {
        s["frames_processed"]
            .as_u64()
            .is_some_and(|n| n > before + 5)
    });
    assert!(s["last_frame_at"].as_str().unwrap().ends_with('Z'), "{s}");
    assert!(s["blocked"].is_boolean(), "{s}");

    let snap = d.get("/v1/streams/sample/snapshot.jpg");
    assert_eq!(snap.status, 200);
    assert_eq!(snap.header("content-type"), Some("image/jpeg"));
    assert_eq!(&snap.body[..2], &[0xFF, 0xD8]);

    // A camera behind credentials on a port where nothing listens.
    let dead = free_port();
    let url = format!("rtsp://admin:hunter2@127.0.0.1:{dead}/live");
    let body = serde_json::json!({"id": "door", "url": url, "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0});
    let r = d.req_with(
        "POST",
        "/v1/streams",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!r.text().contains("hunter2"), "{}", r.text());
    let r = d.req_with(
        "POST",
        "/v1/streams",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 409);
    let bad = serde_json::json!({"id": "x", "url": "rtsp://h/s", "every": 2, "fps": 3.0});
    let r = d.req_with(
        "POST",
        "/v1/streams",
        &[("Content-Type", "application/json")],
        bad.to_string().as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("fps"));
    let r = d.req_with(
        "POST",
        "/v1/streams",
        &[("Content-Type", "application/json")],
        br#"{"id": "y", "url": "/no/such/file.mp4"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());

    let s = wait_stream(&d, "door", Duration::from_secs(30), |s| {
        s["reconnects"].as_u64().is_some_and(|n| n > 0)
    });
    assert!(
        s["state"] == "reconnecting" || s["state"] == "connecting",
        "{s}"
    );
    assert_eq!(s["url"], format!("rtsp://***@127.0.0.1:{dead}/live"));
    let all = d.get("/v1/streams").text();
    assert!(!all.contains("hunter2"), "{all}");
    // The stream exists but has no frame yet: 409, not 404.
    let r = d.get("/v1/streams/door/snapshot.jpg");
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(d.get("/v1/streams/nope/snapshot.jpg").status, 404);

    let r = d.req_with("DELETE", "/v1/streams/door", &[], b"");
    assert_eq!(r.status, 204);
    assert!(stream(&d, "door").is_none());
    assert_eq!(
        d.req_with("DELETE", "/v1/streams/door", &[], b"").status,
        404
    );

    // The stream gauges are set by the metrics sampler: wait for its tick
    // to have seen the running stream.
    let text = support::wait_until(
        "the sampler reports vigil_stream_up{stream=\"sample\"} 1",
        Duration::from_secs(30),
        || {
            let m = d.get("/metrics");
            (m.status == 200 && m.text().contains("vigil_stream_up{stream=\"sample\"} 1"))
                .then(|| m.text())
        },
    );
    for name in support::CONTRACT_METRICS {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
    assert!(
        text.contains("vigil_stream_up{stream=\"sample\"} 1"),
        "{text}"
    );
    assert!(text.contains("vigil_stage_seconds_bucket{stage=\"end_to_end\""));
    assert!(text.contains("route=\"/v1/streams/{id}/snapshot.jpg\""));
    assert!(!text.contains("hunter2") && !text.contains("127.0.0.1:"));
    assert!(!d.log().contains("hunter2"), "password in the log");
}

#[test]
fn rtsp_stream_reconnects_after_the_server_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = support::rtsp_server(port, "/test");
    let mut d = start(
        tmp.path(),
        "",
        &format!(
            "[[streams]]\nid = \"cam\"\nurl = \"rtsp://127.0.0.1:{port}/test\"\n\
             stall_timeout_s = 3.0\nreconnect_initial_s = 0.5\nreconnect_max_s = 2.0\n"
        ),
    );
    d.wait_ready();
    wait_stream(&d, "cam", Duration::from_secs(30), |s| {
        s["state"] == "running" && s["frames_processed"].as_u64().is_some_and(|n| n > 0)
    });

    server.kill();
    // Killed server: the read fails at once or times out after the stall
    // timeout (3 s); allow margin for the pipeline and the sampler.
    wait_stream(&d, "cam", Duration::from_secs(15), |s| {
        s["state"] == "reconnecting"
    });

    let _server = support::rtsp_server(port, "/test");
    let s = wait_stream(&d, "cam", Duration::from_secs(40), |s| {
        s["state"] == "running" && s["reconnects"].as_u64().is_some_and(|n| n > 0)
    });
    assert!(s["last_frame_at"].is_string(), "{s}");
}

#[test]
fn sigterm_exits_promptly_and_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = support::data("video/vtest.avi");
    let mut d = start(
        tmp.path(),
        "",
        &format!(
            "[[streams]]\nid = \"sample\"\nurl = \"{}\"\nloop = true\n",
            sample.display()
        ),
    );
    d.wait_ready();
    wait_stream(&d, "sample", Duration::from_secs(30), |s| {
        s["state"] == "running"
    });
    let (status, took) = d
        .guard
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", d.log()));
    // The daemon handles SIGTERM itself and exits 0 (143 would mean the
    // signal's default action killed it).
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?} after {took:?}\n{}",
        d.log()
    );
    // The last thing the daemon logs is its orderly "stopped" (after the
    // streams, the outbox and MQTT were shut down), not an error.
    let log = d.log();
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.trim_end().ends_with("stopped"),
        "last log line {last:?}:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// What a webhook receiver got: (event id, whether its `X-Vigil-Signature`
/// matches the body signed with `secret` and the body carries that id).
fn signed_ids(rx: &vigil_testkit::WebhookReceiver, secret: &str) -> Vec<(String, bool)> {
    rx.hooks()
        .iter()
        .map(|h| {
            let id = h.header("x-vigil-event-id").unwrap_or_default().to_string();
            let ok = h.header("x-vigil-signature")
                == Some(vigil_events::signature(secret.as_bytes(), &h.body).as_str())
                && serde_json::from_slice::<Value>(&h.body)
                    .is_ok_and(|v| v["id"].as_str() == Some(id.as_str()));
            (id, ok)
        })
        .collect()
}

/// The events acceptance: a busy stream, the receiver down, the daemon
/// killed with SIGKILL mid-outage and restarted — every event recorded before
/// the crash is delivered afterwards, and every signature is valid.
#[test]
fn events_survive_a_receiver_outage_and_a_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let rest = format!(
        "[[streams]]\nid = \"plaza\"\nurl = \"{}\"\nloop = true\n\
         lines = [{{ name = \"mid\", a = [0.0, 0.5], b = [1.0, 0.5], units = \"norm\" }}]\n\n\
         [[webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nsecret = \"s3cret\"\n",
        support::data("video/vtest.avi").display()
    );
    let port = free_port();
    let mut d = start_on(tmp.path(), port, "", &rest);
    d.wait_ready();
    // The receiver is down: events pile up as pending in the outbox.
    let pending = d.wait_json(
        "/v1/events?limit=1000&status=pending",
        Duration::from_secs(120),
        |v| v.as_array().is_some_and(|a| a.len() >= 5),
    );
    let before: Vec<String> = d
        .get("/v1/events?limit=1000")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    // Nothing can have been delivered with the receiver down: every event
    // recorded so far is still pending (none delivered, none dead).
    let statuses: Vec<Value> = d
        .get("/v1/events?limit=1000")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].clone())
        .collect();
    assert!(
        statuses.iter().all(|s| s == "pending"),
        "receiver down, yet: {statuses:?}"
    );
    let types: Vec<String> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(types.iter().any(|t| t == "track.started"), "{types:?}");
    let metrics = d.get("/metrics").text();
    assert!(
        metrics.contains("vigil_events_total{type=\"track.started\"}"),
        "{metrics}"
    );
    d.guard.kill();

    let receiver = vigil_testkit::WebhookReceiver::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], hook_port)),
        vigil_testkit::reply_status(200),
    );
    let mut d = start_on(tmp.path(), port, "", &rest);
    d.wait_ready();
    let mut missing = before.len();
    let got = support::try_wait_until(Duration::from_secs(120), || {
        let got = signed_ids(&receiver, "s3cret");
        let delivered: std::collections::HashSet<&str> =
            got.iter().map(|(id, _)| id.as_str()).collect();
        missing = before
            .iter()
            .filter(|id| !delivered.contains(id.as_str()))
            .count();
        (missing == 0).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "{missing} of {} events recorded before the crash never arrived\nlog:\n{}",
            before.len(),
            d.log()
        )
    });
    assert!(got.iter().all(|(_, ok)| *ok), "bad signatures: {got:?}");
    // Delivered events are reported as such.
    let first = &before[before.len() - 1];
    d.wait_json(
        "/v1/events?limit=1000&status=delivered",
        Duration::from_secs(30),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|e| e["id"] == first.as_str()))
        },
    );
    assert_eq!(d.get("/v1/events?status=bogus").status, 400);
}

/// Event snapshots and MQTT end to end: each event of a busy stream carries a
/// `snapshot_url` serving the annotated frame as JPEG (behind the token; an
/// unknown id is 404), and the same events are published to a real
/// `mosquitto` on `vigil/<stream>/<type>` as JSON.
#[test]
fn events_carry_snapshots_and_are_published_over_mqtt() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = vigil_testkit::Mosquitto::start(tmp.path());
    let mqtt_port = broker.port;
    let sub_out = tmp.path().join("mqtt.txt");
    let sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &mqtt_port.to_string()])
        // Events only: `vigil/<stream>/<type>`; Home Assistant's state
        // topics (`vigil/<stream>/state/...`) sit one level deeper.
        .args(["-t", "vigil/+/+", "-v", "-q", "1", "-C", "3", "-W", "240"])
        .stdout(std::fs::File::create(&sub_out).expect("mqtt.txt"))
        .stderr(Stdio::null())
        .spawn()
        .expect("run mosquitto_sub (apt-get install mosquitto-clients)");
    let mut sub = ChildGuard::new(sub);
    let rest = format!(
        "[[streams]]\nid = \"plaza\"\nurl = \"{}\"\nloop = true\n\
         lines = [{{ name = \"mid\", a = [0.0, 0.5], b = [1.0, 0.5], units = \"norm\" }}]\n\n\
         [events]\nsnapshots = true\nsnapshot_retention_hours = 1\n\n\
         [[mqtt]]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\nclient_id = \"vigil-test\"\n",
        support::data("video/vtest.avi").display()
    );
    let mut d = start(tmp.path(), "token = \"tok\"", &rest);
    d.wait_ready();
    let auth = [("Authorization", "Bearer tok")];
    let event = support::try_wait_until(Duration::from_secs(120), || {
        let r = d.req_with("GET", "/v1/events?limit=10", &auth, b"");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().as_array().and_then(|a| a.first().cloned())
    })
    .unwrap_or_else(|| panic!("no events within 120 s\nlog:\n{}", d.log()));
    let id = event["id"].as_str().unwrap();
    let url = event["snapshot_url"].as_str().expect("snapshot_url");
    assert_eq!(url, format!("/v1/events/{id}/snapshot.jpg"));
    let jpeg = d.req_with("GET", url, &auth, b"");
    assert_eq!(jpeg.status, 200, "{}", jpeg.text());
    assert_eq!(jpeg.header("content-type"), Some("image/jpeg"));
    assert_eq!(&jpeg.body[..2], b"\xff\xd8");
    assert_eq!(d.get(url).status, 401);
    let unknown = d.req_with(
        "GET",
        "/v1/events/00000000-0000-4000-8000-000000000000/snapshot.jpg",
        &auth,
        b"",
    );
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert_eq!(
        d.req_with("GET", "/v1/events/..%2Fx/snapshot.jpg", &auth, b"")
            .status,
        404
    );
    let doc = d.get("/openapi.json").json();
    assert!(doc["paths"]["/v1/events/{id}/snapshot.jpg"].is_object());

    // MQTT: `-C 3` makes the subscriber exit after three messages.
    // mosquitto_sub exits once it has its three messages.
    if sub.wait_exit(Duration::from_secs(120)).is_none() {
        panic!(
            "fewer than 3 MQTT messages: {:?}\nlog:\n{}",
            std::fs::read_to_string(&sub_out),
            d.log()
        );
    }
    let text = std::fs::read_to_string(&sub_out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for line in lines {
        let (topic, body) = line.split_once(' ').expect("topic payload");
        let e: Value = serde_json::from_str(body).expect("JSON payload");
        assert_eq!(
            topic,
            format!("vigil/plaza/{}", e["type"].as_str().unwrap()),
            "{line}"
        );
        assert_eq!(e["stream"], "plaza");
        assert!(e["id"].as_str().is_some_and(|s| s.len() == 36), "{line}");
    }
}

/// Noise bytes, a truncated MP4 and an empty body each end as a 4xx or a
/// `failed` job naming the problem, and the daemon keeps serving.
#[test]
fn bad_uploads_fail_cleanly_and_the_daemon_stays_up() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = std::fs::read(support::sample_h264(tmp.path(), 40, None)).unwrap();
    let mut d = start(tmp.path(), "", "[jobs]\nworkers = 1\n");
    d.wait_ready();
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let truncated = whole[..whole.len() * 3 / 10].to_vec();
    for (what, body) in [
        ("noise", noise),
        ("truncated mp4", truncated),
        ("empty", Vec::new()),
    ] {
        let r = upload(&d, "", &body);
        if (400..500).contains(&r.status) {
            assert!(
                r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{what}: {}",
                r.text()
            );
            continue;
        }
        assert_eq!(r.status, 202, "{what}: {}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let j = wait_job_done(&d, &id, Duration::from_secs(60));
        assert_eq!(j["status"], "failed", "{what}: {j}");
        assert!(
            j["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {j}"
        );
    }
    assert_eq!(d.get("/healthz").status, 200);
    // And a good upload still works afterwards.
    let r = upload(&d, "?every=4", &whole);
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let j = wait_job_done(&d, &id, Duration::from_secs(120));
    assert_eq!(j["status"], "succeeded", "{j}");
}
