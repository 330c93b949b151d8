//! Streams as durable, editable state, end to end: the real daemon, model,
//! media and the GStreamer RTSP test server. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{free_port, http, HttpResponse, Node};

fn config(addr: &str, store: &Path, rest: &str) -> String {
    format!(
        "[server]\nlisten = \"{addr}\"\n# The RTSP test server is on 127.0.0.1.\nstream_deny = []\n\n[storage]\ndir = \"{}\"\n\n\
         [model]\ndevice = \"cpu\"\nintra_threads = 1\n\n[events]\nsnapshots = false\n\n{rest}\n",
        store.display()
    )
}

fn start(dir: &Path, name: &str, addr: &str, rest: &str) -> Node {
    let mut n = support::start_node(
        dir,
        name,
        "serve",
        addr,
        &config(addr, &dir.join("store"), rest),
    );
    n.wait_ready();
    n
}

fn send(
    n: &Node,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> HttpResponse {
    n.req_with(method, path, headers, body.to_string().as_bytes())
}

fn patch(n: &Node, id: &str, if_match: Option<&str>, body: &Value) -> HttpResponse {
    let mut h = vec![("Content-Type", "application/merge-patch+json")];
    if let Some(tag) = if_match {
        h.push(("If-Match", tag));
    }
    send(n, "PATCH", &format!("/v1/streams/{id}"), &h, body)
}

/// The configuration part of `GET /v1/streams/{id}` (what PATCH edits).
fn settings(s: &Value) -> Value {
    let keys = [
        "id",
        "url",
        "every",
        "fps",
        "loop",
        "ring_capacity",
        "stall_timeout_s",
        "reconnect_initial_s",
        "reconnect_max_s",
        "transport",
        "zones",
        "lines",
        "enabled",
        "filters",
        "masks",
        "events",
        "tracker",
        "motion",
    ];
    let v: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| ((*k).to_string(), s[*k].clone()))
        .collect();
    assert!(v["lines"].is_array() && v["enabled"].is_boolean(), "{s}");
    Value::Object(v)
}

fn processed(s: &Value) -> u64 {
    s["frames_processed"].as_u64().unwrap_or(0)
}

#[test]
fn api_streams_and_edits_survive_kill_9_and_deletes_stick() {
    let tmp = tempfile::tempdir().unwrap();
    let rtsp_port = free_port();
    let _server = support::rtsp_server(rtsp_port, "/test");
    let addr = format!("127.0.0.1:{}", free_port());
    // A config stream too, to prove a deleted one stays deleted.
    let rest = format!(
        "[[streams]]\nid = \"sample\"\nurl = \"{}\"\nloop = true\nfps = 1.0\n",
        support::data("video/vtest.avi").display()
    );
    let mut n = start(tmp.path(), "first", &addr, &rest);

    let url = format!("rtsp://viewer:hunter2@127.0.0.1:{rtsp_port}/test");
    let r = send(
        &n,
        "POST",
        "/v1/streams",
        &[("Content-Type", "application/json")],
        &json!({"id": "cam", "url": url, "fps": 2.0}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(created["source"], "api", "{created}");
    assert!(!r.text().contains("hunter2"), "{}", r.text());
    let tag = r.header("etag").expect("ETag on 201").to_string();
    n.wait_json("/v1/streams/cam", Duration::from_secs(60), |s| {
        s["state"] == "running" && processed(s) > 0
    });
    // An edit, confirmed with If-Match, must survive the crash as well.
    let gate = json!([{"name": "gate", "a": [0.0, 0.5], "b": [1.0, 0.5], "units": "norm"}]);
    let r = patch(
        &n,
        "cam",
        Some(&tag),
        &json!({"lines": gate, "filters": {"*": {"min_score": 0.4}},
                "motion": {"check_every_s": 7.0}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let edited_tag = r.header("etag").expect("ETag on 200").to_string();
    assert_ne!(edited_tag, tag);
    let r = n.req("DELETE", "/v1/streams/sample", b"");
    assert_eq!(r.status, 204, "{}", r.text());

    n.guard.kill(); // SIGKILL: no shutdown path runs.
    let mut n = start(tmp.path(), "second", &addr, &rest);
    let s = n.wait_json("/v1/streams/cam", Duration::from_secs(60), |s| {
        s["state"] == "running" && processed(s) > 0
    });
    assert_eq!(s["source"], "api", "{s}");
    assert_eq!(s["lines"], gate, "{s}");
    assert_eq!(s["filters"]["*"]["min_score"], 0.4, "{s}");
    assert_eq!(s["fps"], 2.0, "{s}");
    // Motion settings are per-stream settings like the rest: merged key by key.
    assert_eq!(s["motion"]["check_every_s"], 7.0, "{s}");
    assert_eq!(s["motion"]["enabled"], true, "{s}");
    assert_eq!(
        s["url"],
        format!("rtsp://***@127.0.0.1:{rtsp_port}/test"),
        "credentials stay masked"
    );
    let r = n.req("GET", "/v1/streams/cam", b"");
    assert_eq!(r.header("etag"), Some(edited_tag.as_str()));
    assert_eq!(
        n.req("GET", "/v1/streams/sample", b"").status,
        404,
        "deleted config stream came back"
    );

    let r = n.req("DELETE", "/v1/streams/cam", b"");
    assert_eq!(r.status, 204);
    n.guard.kill();
    let n = start(tmp.path(), "third", &addr, &rest);
    let all = n.get_json("/v1/streams");
    assert_eq!(all, json!([]), "deleted streams came back: {all}");
    assert_eq!(n.req("GET", "/v1/streams/cam", b"").status, 404);
    assert!(!n.log().contains("hunter2"), "password in the log");
}

/// Events of the stream, oldest first.
fn events(n: &Node) -> Vec<Value> {
    let mut v = n
        .get_json("/v1/events?limit=1000")
        .as_array()
        .cloned()
        .unwrap_or_default();
    v.reverse();
    v
}

fn at_ms(e: &Value) -> u128 {
    let at = e["at"].as_str().unwrap_or_default();
    humantime::parse_rfc3339(at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis())
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[test]
fn live_edits_move_a_line_without_resetting_tracks_and_bad_patches_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    // 768×576 plaza, people walking up and down through the middle.
    let rest = format!(
        "[[streams]]\nid = \"plaza\"\nurl = \"{}\"\nloop = true\nfps = 3.0\n\
         lines = [{{ name = \"mid\", a = [0.0, 0.5], b = [1.0, 0.5], units = \"norm\" }}]\n",
        support::data("video/vtest.avi").display()
    );
    let n = start(tmp.path(), "live", &addr, &rest);
    let crossed = |e: &Value| e["type"] == "line.crossed";
    let deadline = Duration::from_secs(180);
    let start_wait = Instant::now();
    while !events(&n).iter().any(crossed) {
        assert!(
            start_wait.elapsed() < deadline,
            "no crossing of the first line\n{}",
            n.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let r = n.req("GET", "/v1/streams/plaza", b"");
    assert_eq!(r.status, 200);
    let before = r.json();
    assert_eq!(before["source"], "config", "{before}");
    let tag = r.header("etag").unwrap().to_string();

    // Bad patches: each answers 400 naming the field and changes nothing.
    for (body, field) in [
        (json!({"every": 0}), "every"),
        (
            json!({"lines": [{"name": "mid", "a": [0.0, 0.3]}]}),
            "lines",
        ),
        (
            json!({"filters": {"person": {"min_score": 7}}}),
            "min_score",
        ),
        (
            json!({"masks": [{"points": [[0, 0], [1, 1]]}]}),
            "masks[0].points",
        ),
        (json!({"tracker": {"track_buffer": "long"}}), "tracker"),
        (json!({"id": "other"}), "id"),
        (json!({"nope": 1}), "nope"),
    ] {
        let r = patch(&n, "plaza", Some(&tag), &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(field), "{body}: {msg:?} does not name {field}");
    }
    let r = n.req("GET", "/v1/streams/plaza", b"");
    assert_eq!(
        r.header("etag"),
        Some(tag.as_str()),
        "a bad patch changed the stream"
    );
    assert_eq!(settings(&r.json()), settings(&before));

    // Turn the line upright through the middle (same name), based on the
    // current ETag. (Many people in the clip cross x = 384; few cross most
    // other horizontal lines.)
    let decoded_before = before["frames_decoded"].as_u64().unwrap_or(0);
    let moved =
        json!({"lines": [{"name": "mid", "a": [0.5, 0.0], "b": [0.5, 1.0], "units": "norm"}]});
    let patched_at = now_ms();
    let r = patch(&n, "plaza", Some(&tag), &moved);
    assert_eq!(r.status, 200, "{}", r.text());
    let new_tag = r.header("etag").unwrap().to_string();
    assert_eq!(r.json()["lines"][0]["a"], json!([0.5, 0.0]));
    // The old ETag is stale now.
    let r = patch(&n, "plaza", Some(&tag), &json!({"fps": 2.0}));
    assert_eq!(r.status, 412, "{}", r.text());

    // Wait for a crossing captured after the edit; it must be judged by the
    // new line: its anchor (bottom-centre) is just past x = 0.5 × 768, and
    // its direction follows the new line's sides (a→b points down the
    // image, so its "in" side is the left).
    let new_x = 0.5 * 768.0;
    // Track ids continue: a track confirmed before the edit is still
    // reported after it (at least its `track.ended`), and tracks started
    // after it keep counting up (a new tracker would restart at 1).
    let start_wait = Instant::now();
    let (before_ids, after): (Vec<u64>, Vec<Value>) = loop {
        let (early, late): (Vec<Value>, Vec<Value>) =
            events(&n).into_iter().partition(|e| at_ms(e) <= patched_at);
        let ids: Vec<u64> = early
            .iter()
            .filter_map(|e| e["track_id"].as_u64())
            .collect();
        let carried = late
            .iter()
            .any(|e| e["track_id"].as_u64().is_some_and(|id| ids.contains(&id)));
        if carried && late.iter().any(crossed) {
            break (ids, late);
        }
        assert!(
            start_wait.elapsed() < deadline,
            "no crossing of the moved line, or no track carried across the edit\n{}",
            n.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let max_id_before = before_ids.iter().copied().max().unwrap_or(0);
    for e in after.iter().filter(|e| crossed(e)) {
        let x = (e["bbox"][0].as_f64().unwrap() + e["bbox"][2].as_f64().unwrap()) / 2.0;
        assert!(
            (x - new_x).abs() < 60.0,
            "crossing at anchor x = {x} was not judged by the line at x = {new_x}: {e}"
        );
        assert_eq!(
            e["direction"] == "in",
            x < new_x,
            "direction against the new line: {e}"
        );
    }
    for e in after.iter().filter(|e| e["type"] == "track.started") {
        assert!(
            e["track_id"].as_u64().unwrap() > max_id_before,
            "track ids restarted: {e}"
        );
    }
    // The decoder was not reopened: its counters kept running.
    let s = n.get_json("/v1/streams/plaza");
    assert!(
        s["frames_decoded"].as_u64().unwrap() > decoded_before,
        "{s}"
    );
    assert_eq!(n.log().matches("stream added").count(), 1, "{}", n.log());
    assert_eq!(
        s["revision"].as_u64().map(|r| format!("\"{r}\"")),
        Some(new_tag)
    );

    // A URL the API may not open: 400, nothing changes, the stream runs on.
    let r = patch(&n, "plaza", None, &json!({"url": "file:///etc/passwd"}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("url"), "{}", r.text());
    let s2 = n.wait_json("/v1/streams/plaza", Duration::from_secs(30), |v| {
        v["frames_decoded"].as_u64() > s["frames_decoded"].as_u64()
    });
    assert_eq!(s2["state"], "running", "{s2}");
    assert_eq!(settings(&s2), settings(&s));

    // Pause and resume: the stream stays listed, then runs again.
    let r = patch(&n, "plaza", None, &json!({"enabled": false}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "stopped");
    let r = patch(&n, "plaza", None, &json!({"enabled": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    n.wait_json("/v1/streams/plaza", Duration::from_secs(60), |v| {
        v["state"] == "running" && processed(v) > 0
    });
    let r = http(
        &n.addr,
        "PATCH",
        "/v1/streams/plaza",
        &[("Content-Type", "text/plain")],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(patch(&n, "nope", None, &json!({})).status, 404);
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn filters_and_masks_drop_detections_before_tracking() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let clip = support::data("video/vtest.avi");
    // Three views of the same clip: as is, with a minimum area above every
    // person's box (90 % of the frame), and with the left half masked.
    let rest = format!(
        "[[streams]]\nid = \"plain\"\nurl = \"{c}\"\nloop = true\nfps = 1.0\n\n\
         [[streams]]\nid = \"big\"\nurl = \"{c}\"\nloop = true\nfps = 1.0\n\
         filters = {{ person = {{ min_area = 0.9 }} }}\n\n\
         [[streams]]\nid = \"right\"\nurl = \"{c}\"\nloop = true\nfps = 1.0\n\
         masks = [{{ points = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]], units = \"norm\" }}]\n",
        c = clip.display()
    );
    let n = start(tmp.path(), "filters", &addr, &rest);
    let of = |evs: &[Value], s: &str| -> Vec<Value> {
        evs.iter().filter(|e| e["stream"] == s).cloned().collect()
    };
    // Until the unfiltered view has raised person events and the masked one
    // has some too (people walk on both halves).
    let start_wait = Instant::now();
    let evs = loop {
        let evs = events(&n);
        let person = |e: &&Value| e["label"] == "person";
        if of(&evs, "plain").iter().filter(person).count() >= 3 && !of(&evs, "right").is_empty() {
            break evs;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(240),
            "too few events: {evs:#?}\n{}",
            n.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let big = of(&evs, "big");
    assert!(
        big.iter().all(|e| e["label"] != "person"),
        "min_area let a person through: {big:#?}"
    );
    // Bottom-centres (the mask's test) of every reported track lie in the
    // right half; a few pixels of Kalman smoothing are allowed.
    for e in of(&evs, "right") {
        if let Some(b) = e["bbox"].as_array() {
            let x = (b[0].as_f64().unwrap() + b[2].as_f64().unwrap()) / 2.0;
            assert!(x >= 384.0 - 15.0, "a masked detection was tracked: {e}");
        }
    }
    let m = n.req("GET", "/metrics", b"").text();
    assert!(
        metric(
            &m,
            "vigil_detections_filtered_total{reason=\"area\",stream=\"big\"}"
        ) > 0.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "vigil_detections_filtered_total{reason=\"mask\",stream=\"right\"}"
        ) > 0.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "vigil_detections_filtered_total{reason=\"mask\",stream=\"plain\"}"
        ),
        0.0
    );
}

/// The retained messages under `filter` now: (topic, payload) pairs, read
/// with mosquitto_sub for at most two seconds.
fn retained(port: u16, filter: &str) -> Vec<(String, String)> {
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        filter,
        "-v",
    ])
    .args(["--retained-only", "-W", "2"]);
    // -W ends it after two seconds; the bound only catches a hang.
    let out = support::run_bounded(cmd, Duration::from_secs(20));
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(t, p)| (t.to_string(), p.to_string()))
        .collect()
}

fn wait_retained(port: u16, filter: &str, what: &str, pred: impl Fn(&[(String, String)]) -> bool) {
    // Each look takes mosquitto_sub's two seconds: the poll interval.
    let mut got = Vec::new();
    let met = support::try_wait_until(Duration::from_secs(60), || {
        got = retained(port, filter);
        pred(&got).then_some(())
    });
    assert!(met.is_some(), "{what}: retained under {filter}: {got:#?}");
}

#[test]
fn home_assistant_discovery_follows_edits_and_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = vigil_testkit::Mosquitto::start(tmp.path());
    let mqtt_port = broker.port;
    let addr = format!("127.0.0.1:{}", free_port());
    let rest = format!(
        "[[mqtt]]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\n\n\
         [[streams]]\nid = \"plaza\"\nurl = \"{}\"\nloop = true\nfps = 2.0\n\
         zones = [{{ name = \"yard\", points = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], units = \"norm\" }}]\n\
         lines = [{{ name = \"gate\", a = [0.0, 0.5], b = [1.0, 0.5], units = \"norm\" }}]\n",
        support::data("video/vtest.avi").display()
    );
    let n = start(tmp.path(), "ha", &addr, &rest);
    let has = |got: &[(String, String)], topic: &str| got.iter().any(|(t, _)| t == topic);
    let node = "homeassistant/+/vigil_plaza/#";
    wait_retained(
        mqtt_port,
        node,
        "discovery of zone, line and objects",
        |g| {
            has(
                g,
                "homeassistant/binary_sensor/vigil_plaza/zone_yard/config",
            ) && has(g, "homeassistant/sensor/vigil_plaza/line_gate_in/config")
                && has(g, "homeassistant/sensor/vigil_plaza/line_gate_out/config")
                && has(g, "homeassistant/sensor/vigil_plaza/objects/config")
        },
    );
    let cfg = retained(
        mqtt_port,
        "homeassistant/binary_sensor/vigil_plaza/zone_yard/config",
    );
    let zone: Value = serde_json::from_str(&cfg[0].1).unwrap();
    assert_eq!(zone["device_class"], "occupancy");
    assert_eq!(zone["state_topic"], "vigil/plaza/state/zones/yard");
    // States are live: people fill the yard, and objects are counted.
    wait_retained(mqtt_port, "vigil/plaza/state/#", "live states", |g| {
        g.iter()
            .any(|(t, p)| t == "vigil/plaza/state/zones/yard" && p == "ON")
            && g.iter().any(|(t, p)| {
                t == "vigil/plaza/state/objects" && p.parse::<u64>().is_ok_and(|v| v > 0)
            })
    });

    // A live edit: the zone is renamed and the line removed.
    let r = patch(
        &n,
        "plaza",
        None,
        &json!({"zones": [{"name": "lawn", "points": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], "units": "norm"}],
                "lines": []}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    wait_retained(mqtt_port, node, "discovery after the edit", |g| {
        has(
            g,
            "homeassistant/binary_sensor/vigil_plaza/zone_lawn/config",
        ) && !has(
            g,
            "homeassistant/binary_sensor/vigil_plaza/zone_yard/config",
        ) && !g.iter().any(|(t, _)| t.contains("line_gate"))
            && has(g, "homeassistant/sensor/vigil_plaza/objects/config")
    });

    let r = n.req("DELETE", "/v1/streams/plaza", b"");
    assert_eq!(r.status, 204);
    wait_retained(mqtt_port, node, "discovery removed with the stream", |g| {
        g.is_empty()
    });
}
