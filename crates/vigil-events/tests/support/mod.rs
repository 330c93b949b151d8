//! A real HTTP webhook receiver on 127.0.0.1 for the delivery tests, and
//! event builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use vigil_core::{BBox, StreamId};
use vigil_events::{signature, Event, EventType};

/// What the receiver does with request number `n` (0-based).
pub type Policy = Arc<dyn Fn(usize) -> Response + Send + Sync>;

#[derive(Default)]
pub struct Log {
    pub requests: usize,
    pub bad_signatures: usize,
    pub missing_headers: usize,
    /// event id → times accepted with 2xx.
    pub accepted: HashMap<String, usize>,
    pub times: Vec<Instant>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct AppState {
    secret: Option<String>,
    log: Arc<Mutex<Log>>,
    policy: Policy,
}

async fn hook(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let n = {
        let mut log = st.log.lock().expect("log");
        let n = log.requests;
        log.requests += 1;
        log.times.push(Instant::now());
        let ct = headers.get("content-type").and_then(|v| v.to_str().ok());
        let id = headers
            .get("x-vigil-event-id")
            .and_then(|v| v.to_str().ok());
        if ct != Some("application/json") || id.is_none() {
            log.missing_headers += 1;
        }
        if let Some(secret) = &st.secret {
            let got = headers
                .get("x-vigil-signature")
                .and_then(|v| v.to_str().ok());
            if got != Some(signature(secret.as_bytes(), &body).as_str()) {
                log.bad_signatures += 1;
            }
        }
        // The id header must match the body's id.
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
        match (parsed, id) {
            (Ok(v), Some(id)) if v["id"] == id => {}
            _ => log.missing_headers += 1,
        }
        n
    };
    let resp = (st.policy)(n);
    if resp.status().is_success() {
        let id = headers
            .get("x-vigil-event-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        *st.log.lock().expect("log").accepted.entry(id).or_default() += 1;
    }
    resp
}

impl Receiver {
    pub async fn start(addr: SocketAddr, secret: Option<&str>, policy: Policy) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Log::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(AppState {
                secret: secret.map(str::to_string),
                log: log.clone(),
                policy,
            });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, log, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn accepted_ids(&self) -> usize {
        self.log.lock().expect("log").accepted.len()
    }
}

pub fn ok() -> Policy {
    Arc::new(|_| StatusCode::OK.into_response())
}

/// A port with nothing listening on it (bound, then released).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

pub fn event(i: u64) -> Event {
    Event {
        id: uuid_like(i),
        kind: EventType::TrackStarted,
        stream: StreamId("cam".into()),
        at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        pts_ms: i as f64 * 40.0,
        track_id: Some(i + 1),
        label: Some("person".into()),
        score: Some(0.9),
        bbox: Some(BBox::new(1.0, 2.0, 30.0, 40.0)),
        zone: None,
        line: None,
        direction: None,
        snapshot_url: None,
        extra: Default::default(),
    }
}

fn uuid_like(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Polls `cond` every 20 ms for at most `limit`; true when it held.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}
