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
use crate::state::{AppState, SharedState};

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
