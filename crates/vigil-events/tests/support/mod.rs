//! The webhook receiver of the delivery tests (the testkit's, with
//! vigil's signature and header checks on top) and event builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use vigil_core::{BBox, StreamId};
use vigil_events::{signature, Event, EventType};
pub use vigil_testkit::{reply_status, try_wait_for_async as wait_until, Reply as Policy};
use vigil_testkit::{Hook, WebhookReceiver};

/// What the receiver saw, checked against vigil's webhook contract.
#[derive(Default)]
pub struct Log {
    pub requests: usize,
    pub bad_signatures: usize,
    pub missing_headers: usize,
    /// event id → times accepted with 2xx.
    pub accepted: HashMap<String, usize>,
    pub times: Vec<Instant>,
}

impl Log {
    fn of(hooks: &[Hook], secret: Option<&str>) -> Log {
        let mut log = Log::default();
        for h in hooks {
            log.requests += 1;
            log.times.push(h.at);
            let id = h.header("x-vigil-event-id");
            if h.header("content-type") != Some("application/json") || id.is_none() {
                log.missing_headers += 1;
            }
            if let Some(secret) = secret {
                if h.header("x-vigil-signature")
                    != Some(signature(secret.as_bytes(), &h.body).as_str())
                {
                    log.bad_signatures += 1;
                }
            }
            // The id header must match the body's id.
            match (serde_json::from_slice::<serde_json::Value>(&h.body), id) {
                (Ok(v), Some(id)) if v["id"] == id => {}
                _ => log.missing_headers += 1,
            }
            if h.accepted() {
                *log.accepted
                    .entry(id.unwrap_or_default().to_string())
                    .or_default() += 1;
            }
        }
        log
    }
}

/// A webhook receiver expecting requests signed with `secret`.
pub struct Receiver {
    inner: WebhookReceiver,
    secret: Option<String>,
}

impl Receiver {
    pub async fn start(addr: SocketAddr, secret: Option<&str>, policy: Policy) -> Receiver {
        Receiver {
            inner: WebhookReceiver::start(addr, policy),
            secret: secret.map(str::to_string),
        }
    }

    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// What it saw so far.
    pub fn log(&self) -> Log {
        Log::of(&self.inner.hooks(), self.secret.as_deref())
    }

    pub fn accepted_ids(&self) -> usize {
        self.log().accepted.len()
    }
}

pub fn ok() -> Policy {
    reply_status(200)
}

/// A port with nothing listening on it (bound, then released).
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], vigil_testkit::free_port()))
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
