//! The router in process (`tower::ServiceExt::oneshot`), with the real
//! SQLite job queue and outbox in a temporary directory and no model: the
//! HTTP contract of everything that does not need inference, in
//! milliseconds instead of a daemon start.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use vigil_core::config::Config;
use vigil_jobs::LocalQueue;

use crate::metrics::Metrics;
use crate::state::{AppState, DetectFailed, ImageDetector, Ready, SharedState, StreamService};
use crate::streams::{BaselineSaved, LiveFeed, LiveRules, StreamDetail, StreamError, StreamView};
use vigil_core::config::StreamConfig;
use vigil_core::{BBox, Detection, ImageBgr};

struct Api {
    st: SharedState,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn api(edit: impl FnOnce(&mut Config)) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.storage.dir = dir.path().join("store");
    edit(&mut cfg);
    std::fs::create_dir_all(&cfg.storage.dir).unwrap();
    let jobs = LocalQueue::open(&cfg.storage.dir, cfg.jobs.queue_size, 0).unwrap();
    let outbox = vigil_events::Outbox::open(
        cfg.storage.dir.join("events.sqlite3"),
        Vec::new(),
        vigil_events::OutboxConfig::default(),
    )
    .unwrap();
    let st = Arc::new(AppState {
        limits: super::limits::Limits::from_config(&cfg),
        metrics: Arc::new(Metrics::new().unwrap()),
        jobs: Arc::new(jobs),
        outbox,
        ready: OnceLock::new(),
        cfg,
    });
    Api { st, _dir: dir }
}

impl Api {
    async fn call(&self, req: Request<Body>) -> Answer {
        let resp = super::router(Arc::clone(&self.st))
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(req("GET", path).body(Body::empty()).unwrap())
            .await
    }
}

fn req(method: &str, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:8080")
}

/// The smallest bytes the container check takes for an MP4.
fn fake_mp4() -> Vec<u8> {
    let mut b = vec![0, 0, 0, 16];
    b.extend_from_slice(b"ftypisom\0\0\x02\0");
    b.extend_from_slice(&[0u8; 64]);
    b
}

#[tokio::test]
async fn ops_routes_answer_before_the_model_is_loaded() {
    let a = api(|_| {});
    let h = a.get("/healthz").await;
    assert_eq!(
        (h.status, h.json()),
        (StatusCode::OK, serde_json::json!({"status": "ok"}))
    );
    let r = a.get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json(),
        serde_json::json!({"ready": false, "reason": "loading the model"})
    );
    let m = a.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&m.body).contains("vigil_jobs{status=\"queued\"} 0"));
    let doc = a.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.json()["paths"]["/v1/jobs/{id}"].is_object());
}

#[tokio::test]
async fn v1_needs_the_token_and_says_so_the_same_way_whatever_was_sent() {
    let a = api(|c| c.server.token = Some("s3cret".into()));
    let missing = a.get("/v1/jobs/abc").await;
    let wrong = a
        .call(
            req("GET", "/v1/jobs/abc")
                .header(header::AUTHORIZATION, "Bearer nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    for r in [&missing, &wrong] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"vigil\""
        );
        assert_eq!(r.error(), "missing or invalid bearer token");
    }
    assert_eq!(missing.body, wrong.body);
    let ok = a
        .call(
            req("GET", "/v1/jobs/abc")
                .header(header::AUTHORIZATION, "Bearer s3cret")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (ok.status, ok.error()),
        (StatusCode::NOT_FOUND, "no job \"abc\"".to_string())
    );
    // The open routes stay open.
    assert_eq!(a.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_foreign_hosts_get_json_errors() {
    let a = api(|_| {});
    let r = a.get("/v2/nothing").await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::NOT_FOUND, "no such route".to_string())
    );
    let r = a
        .call(
            Request::builder()
                .uri("/v1/events")
                .header(header::HOST, "rebind.example:8080")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    assert!(!r.error().is_empty());
}

#[tokio::test]
async fn a_queued_job_is_reported_and_its_results_are_a_conflict_until_it_succeeds() {
    let a = api(|_| {});
    let r = a
        .call(
            req("POST", "/v1/jobs?every=2&track=false")
                .body(Body::from(fake_mp4()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.error());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["status"], "queued");
    assert_eq!(r.headers[header::LOCATION], format!("/v1/jobs/{id}"));
    let j = a.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(j.status, StatusCode::OK);
    assert_eq!(
        j.json(),
        serde_json::json!({"id": id, "status": "queued", "progress": 0.0, "frames_done": 0, "frames_total": null})
    );
    let v = a.get(&format!("/v1/jobs/{id}/video")).await;
    assert_eq!(v.status, StatusCode::CONFLICT);
    assert!(v.error().contains("is queued"), "{}", v.error());
    // The spooled upload moved into the job; nothing is left in the spool.
    let spool = a.st.cfg.storage.dir.join("uploads");
    assert_eq!(std::fs::read_dir(spool).unwrap().count(), 0);
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_reason() {
    let a = api(|_| {});
    for (query, body, want) in [
        ("?every=0", fake_mp4(), "every"),
        ("?speed=2", fake_mp4(), "speed"),
        ("", Vec::new(), "the upload is empty"),
        (
            "",
            b"#EXTM3U\nfile:///etc/passwd\n".to_vec(),
            "not a video container",
        ),
    ] {
        let r = a
            .call(
                req("POST", &format!("/v1/jobs{query}"))
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.error());
        assert!(r.error().contains(want), "{query}: {}", r.error());
    }
    assert!(a.st.jobs.counts().await.unwrap().queued == 0);
}

#[tokio::test]
async fn a_full_queue_is_429_with_retry_after() {
    let a = api(|c| c.jobs.queue_size = 1);
    let first = a
        .call(
            req("POST", "/v1/jobs")
                .body(Body::from(fake_mp4()))
                .unwrap(),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = a
        .call(
            req("POST", "/v1/jobs")
                .body(Body::from(fake_mp4()))
                .unwrap(),
        )
        .await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers[header::RETRY_AFTER], "5");
    assert!(
        second.error().contains("queue is full"),
        "{}",
        second.error()
    );
}

#[tokio::test]
async fn model_routes_are_503_while_loading_and_events_page() {
    let a = api(|_| {});
    let d = a
        .call(
            req("POST", "/v1/detect")
                .body(Body::from(vec![1, 2, 3]))
                .unwrap(),
        )
        .await;
    assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(d.error().contains("model is still loading"));
    assert_eq!(a.get("/v1/streams").await.json(), serde_json::json!([]));
    assert_eq!(
        a.get("/v1/streams/cam").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let e = a.get("/v1/events?limit=5").await;
    assert_eq!(
        (e.status, e.json()),
        (StatusCode::OK, serde_json::json!([]))
    );
    let bad = a.get("/v1/events?limit=0").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().contains("limit"), "{}", bad.error());
}

/// Finds one "person" covering the image's left half, whatever it is, and
/// on images over 100 pixels wide a 10x10 "cat" in the corner of the pixels
/// it was given (which shows the scale of the decode it saw).
struct FakeDetector;

impl ImageDetector for FakeDetector {
    fn detect_image(&self, image: ImageBgr) -> Result<Vec<Detection>, DetectFailed> {
        let found = |class_id, label: &str, bbox| Detection {
            class_id,
            label: label.into(),
            score: 0.9,
            bbox,
            track_id: None,
        };
        let (w, h) = (image.width() as f32, image.height() as f32);
        let mut dets = vec![found(0, "person", BBox::new(0.0, 0.0, w / 2.0, h))];
        if w > 100.0 {
            dets.push(found(15, "cat", BBox::new(0.0, 0.0, 10.0, 10.0)));
        }
        Ok(dets)
    }

    fn input_size(&self) -> (u32, u32) {
        (640, 640)
    }
}

/// One known stream, `cam`, at revision "1"; it has no frame yet.
struct FakeStreams;

impl StreamService for FakeStreams {
    fn list(&self) -> Vec<StreamView> {
        Vec::new()
    }
    fn detail(&self, id: &str) -> Result<StreamDetail, StreamError> {
        Err(StreamError::NotFound(id.to_string()))
    }
    fn add(&self, cfg: StreamConfig) -> Result<StreamDetail, StreamError> {
        Err(StreamError::Exists(cfg.id))
    }
    fn patch(
        &self,
        id: &str,
        _merge: &serde_json::Value,
        if_match: Option<&str>,
    ) -> Result<StreamDetail, StreamError> {
        match (id, if_match) {
            ("cam", Some(tag)) if tag != "\"1\"" => Err(StreamError::Stale {
                id: id.into(),
                current: "\"1\"".into(),
            }),
            ("cam", _) => Err(StreamError::Invalid("every: must be at least 1".into())),
            _ => Err(StreamError::NotFound(id.to_string())),
        }
    }
    fn remove(&self, id: &str) -> Result<(), StreamError> {
        if id == "cam" {
            Ok(())
        } else {
            Err(StreamError::NotFound(id.to_string()))
        }
    }
    fn save_baseline(&self, _id: &str) -> Result<BaselineSaved, StreamError> {
        Err(StreamError::Conflict("drift monitoring is disabled".into()))
    }
    fn latest(&self, id: &str) -> Result<Option<(Arc<ImageBgr>, Vec<Detection>)>, StreamError> {
        if id == "cam" {
            Ok(None)
        } else {
            Err(StreamError::NotFound(id.to_string()))
        }
    }
    fn live(&self, id: &str) -> Result<(Arc<LiveFeed>, LiveRules), StreamError> {
        Err(StreamError::NotFound(id.to_string()))
    }
    fn sample(&self) {}
    fn shutdown(&self, _deadline: std::time::Duration) {}
}

fn ready_api(edit: impl FnOnce(&mut Config)) -> Api {
    let a = api(edit);
    let ready = Ready {
        detector: Arc::new(FakeDetector),
        streams: Arc::new(FakeStreams),
        device: "cpu".into(),
        precision: "fp32".into(),
        backend: "onnxruntime-test".into(),
        model: "/srv/secret/models/yolo.onnx".into(),
    };
    assert!(a.st.ready.set(ready).is_ok());
    a
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = ImageBgr::new(width, height, vec![90; (width * height * 3) as usize]).unwrap();
    vigil_video::encode_jpeg(&img, 90).unwrap()
}

#[tokio::test]
async fn readiness_names_the_model_file_never_its_path() {
    let a = ready_api(|_| {});
    let r = a.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"ready": true, "device": "cpu", "precision": "fp32",
                           "backend": "onnxruntime-test", "model": "yolo.onnx"})
    );
}

/// `POST /v1/detect` of a `width`x`height` JPEG: the answer's JSON, after
/// checking it is a 200 that names the picture's own size.
async fn detect_jpeg(a: &Api, width: u32, height: u32) -> serde_json::Value {
    let r = a
        .call(
            req("POST", "/v1/detect")
                .body(Body::from(jpeg(width, height)))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error());
    let j = r.json();
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(u64::from(width)), Some(u64::from(height)))
    );
    j
}

#[tokio::test]
async fn detect_decodes_the_image_and_answers_the_detector_s_boxes() {
    let j = detect_jpeg(&ready_api(|_| {}), 64, 48).await;
    assert_eq!(j["detections"][0]["label"], "person");
    assert_eq!(
        j["detections"][0]["bbox"],
        serde_json::json!([0.0, 0.0, 32.0, 48.0])
    );
    assert!(j["detections"][0].get("track_id").is_none());
}

#[tokio::test]
async fn a_large_photo_is_decoded_at_the_model_s_scale_and_answered_in_its_own_pixels() {
    // 1920x1440 for a 640x640 model: decoded at half size (960x720), so
    // the fake's 10-pixel box is 20 pixels of the picture that was sent.
    let j = detect_jpeg(&ready_api(|_| {}), 1920, 1440).await;
    assert_eq!(
        (&j["detections"][0]["bbox"], &j["detections"][1]["bbox"]),
        (
            &serde_json::json!([0.0, 0.0, 960.0, 1440.0]),
            &serde_json::json!([0.0, 0.0, 20.0, 20.0])
        )
    );
}

#[tokio::test]
async fn detect_refuses_non_images_and_bodies_over_its_limit() {
    let a = ready_api(|c| c.server.detect_max_mb = 1);
    let r = a
        .call(
            req("POST", "/v1/detect")
                .body(Body::from(b"GIF89a nope".to_vec()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.error().is_empty());
    let big = vec![0u8; 1024 * 1024 + 1];
    let r = a
        .call(req("POST", "/v1/detect").body(Body::from(big)).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.error());
    assert!(r.error().contains("detect_max_mb"), "{}", r.error());
}

#[tokio::test]
async fn stream_errors_map_to_their_statuses() {
    let a = ready_api(|_| {});
    let nf = a.get("/v1/streams/nope").await;
    assert_eq!(
        (nf.status, nf.error()),
        (StatusCode::NOT_FOUND, "no stream \"nope\"".to_string())
    );
    let snap = a.get("/v1/streams/cam/snapshot.jpg").await;
    assert_eq!(snap.status, StatusCode::CONFLICT);
    assert!(
        snap.error().contains("no processed frame yet"),
        "{}",
        snap.error()
    );
    let del = a
        .call(
            req("DELETE", "/v1/streams/cam")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let base = a
        .call(
            req("POST", "/v1/streams/cam/baseline")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(base.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn stream_writes_check_their_body_type_and_etag() {
    let a = ready_api(|_| {});
    let text = a
        .call(
            req("POST", "/v1/streams")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{\"id\": \"x\"}"))
                .unwrap(),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let exists = a
        .call(
            req("POST", "/v1/streams")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    "{\"id\": \"cam\", \"url\": \"rtsp://127.0.0.1/x\"}",
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(exists.status, StatusCode::CONFLICT, "{}", exists.error());
    let patch = |tag: Option<&str>, body: &str, ctype: &str| {
        let mut r = req("PATCH", "/v1/streams/cam").header(header::CONTENT_TYPE, ctype);
        if let Some(t) = tag {
            r = r.header(header::IF_MATCH, t);
        }
        r.body(Body::from(body.to_string())).unwrap()
    };
    let stale = a
        .call(patch(
            Some("\"0\""),
            "{\"every\": 2}",
            "application/merge-patch+json",
        ))
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert!(stale.error().contains("GET it again"), "{}", stale.error());
    let invalid = a
        .call(patch(Some("\"1\""), "{\"every\": 0}", "application/json"))
        .await;
    assert_eq!(
        (invalid.status, invalid.error()),
        (
            StatusCode::BAD_REQUEST,
            "every: must be at least 1".to_string()
        )
    );
    let not_json = a
        .call(patch(None, "every=2", "application/merge-patch+json"))
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert!(
        not_json.error().contains("not JSON"),
        "{}",
        not_json.error()
    );
    let form = a
        .call(patch(None, "{}", "application/x-www-form-urlencoded"))
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// `null` is "not set" where the schema says a key is nullable (top-level
/// `every`/`fps`/`tracker`, and every key of a merge patch's objects, which
/// RFC 7396 removes) and refused everywhere else, naming the key: the
/// schema fuzzer found `motion.check_every_s: null` accepted by a `PATCH`
/// whose schema forbade it, and `masks[].name: null` was read as "no name".
/// (The merge itself is tested in `streams::patch`; the streams here are fake.)
#[tokio::test]
async fn null_means_not_set_exactly_where_the_schema_says_so() {
    let a = ready_api(|_| {});
    let post = |body: &str| {
        req("POST", "/v1/streams")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let tri = r#""points": [[0, 0], [10, 0], [10, 10]]"#;
    for (body, path) in [
        (
            format!(
                r#"{{"id": "n", "url": "rtsp://10.0.0.9/x",
                    "masks": [{{{tri}, "name": null}}]}}"#
            ),
            "masks[0].name",
        ),
        (
            r#"{"id": "n", "url": "rtsp://10.0.0.9/x",
                "filters": {"person": {"min_score": null}}}"#
                .to_string(),
            "filters.person.min_score",
        ),
    ] {
        let r = a.call(post(&body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        let e = r.error();
        assert!(e.contains(&format!("{path}: null is not a value")), "{e}");
    }
    let spec = a.get("/openapi.json").await.json();
    let motion = &spec["components"]["schemas"]["MotionPatchDoc"]["properties"];
    assert_eq!(
        motion["check_every_s"]["type"],
        serde_json::json!(["number", "null"])
    );
}

#[tokio::test]
async fn a_foreign_origin_may_read_but_not_change_state() {
    let a = ready_api(|_| {});
    let post = |origin: &str| {
        req("POST", "/v1/jobs")
            .header(header::ORIGIN, origin)
            .body(Body::from(fake_mp4()))
            .unwrap()
    };
    let foreign = a.call(post("http://evil.example")).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(
        foreign.error().contains("cross-origin"),
        "{}",
        foreign.error()
    );
    assert_eq!(
        a.st.jobs.counts().await.unwrap().queued,
        0,
        "nothing queued"
    );
    let same = a.call(post("http://127.0.0.1:8080")).await;
    assert_eq!(same.status, StatusCode::ACCEPTED, "{}", same.error());
    // A read from another origin is not refused here (the browser's CORS
    // rules keep its answer from the page; there is no Allow-Origin).
    let read = a
        .call(
            req("GET", "/v1/events")
                .header(header::ORIGIN, "http://evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read
        .headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
}

#[tokio::test]
async fn event_queries_are_parsed_exactly() {
    let a = api(|_| {});
    for (query, names) in [
        ("limit=abc", "limit"),
        ("limit=1001", "limit"),
        ("limit=2147483648", "limit"),
        ("status=bogus", "status"),
        ("colour=red", "colour"),
        ("limit=5&limit=6", "limit"),
    ] {
        let r = a.get(&format!("/v1/events?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.error());
        assert!(r.error().contains(names), "{query}: {}", r.error());
    }
    for query in ["limit=1000", "status=pending", "status=dead&limit=1"] {
        let r = a.get(&format!("/v1/events?{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.error());
        assert_eq!(r.json(), serde_json::json!([]));
    }
}

#[tokio::test]
async fn unknown_jobs_and_events_are_404_naming_the_id() {
    let a = api(|_| {});
    for path in [
        "/v1/jobs/0123abcd",
        "/v1/jobs/0123abcd/video",
        "/v1/jobs/0123abcd/detections",
    ] {
        let r = a.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.error());
        assert!(r.error().contains("0123abcd"), "{path}: {}", r.error());
    }
    let r = a.get("/v1/events/0123abcd/snapshot.jpg").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.error());
}
