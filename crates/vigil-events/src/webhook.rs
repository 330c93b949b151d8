//! Webhooks as an [`EventSink`]: each delivery is POSTed as the stored JSON
//! body, signed when a secret is set.
//!
//! # Retry policy
//!
//! * 2xx → delivered.
//! * Connection errors, timeouts, 408, 429 and 5xx → retried after the
//!   outbox's backoff, or after `Retry-After` seconds when a 429/503 carries
//!   one (capped at `retry_after_max`). Unreachable receivers and 429 pause
//!   the whole sink; a 5xx for one event only delays that event.
//! * Other statuses (3xx — redirects are not followed, 4xx) → dead at once:
//!   the receiver rejected these exact bytes and would reject them again.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use vigil_core::EventType;

use crate::sink::{filter_wants, Attempt, Delivery, EventSink, SendFuture, SinkKind};

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`, the value of
/// `X-Vigil-Signature`; public so receivers (and tests) compute it the same way.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256=");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Where events are POSTed. The daemon maps each `[[webhooks]]` entry onto
/// one; deliveries are keyed by `url`, so urls must be unique.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTarget {
    pub url: String,
    /// When set: `X-Vigil-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
    pub secret: Option<String>,
    /// Event types delivered; empty = all types.
    pub events: Vec<EventType>,
    /// Per-request timeout (connect + response).
    pub timeout: Duration,
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
}

impl WebhookTarget {
    /// A target with the defaults: every event type, 10 s timeout, 10 attempts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: None,
            events: Vec::new(),
            timeout: Duration::from_secs(10),
            max_attempts: 10,
        }
    }

    /// Whether events of `kind` go to this target.
    pub fn wants(&self, kind: EventType) -> bool {
        filter_wants(&self.events, kind)
    }
}

/// A webhook target with its HTTP client.
#[derive(Debug)]
pub struct WebhookSink {
    target: WebhookTarget,
    client: reqwest::Client,
}

impl WebhookSink {
    /// Builds the client: per-request timeout, no redirects followed.
    pub fn new(target: WebhookTarget) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(target.timeout)
            .connect_timeout(target.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { target, client })
    }

    async fn post(&self, d: &Delivery) -> Attempt {
        let t = &self.target;
        let mut req = self
            .client
            .post(&t.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Vigil-Event-Id", &d.event_id)
            .body(d.body.clone());
        if let Some(secret) = &t.secret {
            req = req.header("X-Vigil-Signature", signature(secret.as_bytes(), &d.body));
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    return Attempt::Delivered;
                }
                let code = status.as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                if code == 408 || code == 429 || status.is_server_error() {
                    Attempt::Retry {
                        error: format!("HTTP {code}"),
                        retry_after: retry_after.filter(|_| code == 429 || code == 503),
                        pause_sink: code == 429,
                    }
                } else {
                    Attempt::Rejected(format!("HTTP {code} (not retried)"))
                }
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                Attempt::unreachable(format!("{kind}: {}", describe(e)))
            }
        }
    }
}

impl EventSink for WebhookSink {
    fn key(&self) -> &str {
        &self.target.url
    }

    fn kind(&self) -> SinkKind {
        SinkKind::Webhook
    }

    fn wants(&self, kind: EventType) -> bool {
        self.target.wants(kind)
    }

    fn max_attempts(&self) -> u32 {
        self.target.max_attempts
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(self.post(d))
    }
}

/// A request error without the URL: reqwest puts the full URL (query
/// secrets included) in its message, and this text is stored as the
/// event's `last_error` (shown by `GET /v1/events`) and logged. The causes
/// (connection refused, DNS failure, TLS) carry no URL and are kept.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
