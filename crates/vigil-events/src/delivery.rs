//! Webhook delivery workers: one tokio task per webhook target plus one
//! pruning task.
//!
//! # Retry policy
//!
//! * 2xx → delivered.
//! * Connection errors, timeouts, 408, 429 and 5xx → retried after
//!   `backoff_initial · 2^(attempts-1)` (capped at `backoff_max`, ±20 %
//!   jitter), or after `Retry-After` seconds when a 429/503 carries one
//!   (capped at `retry_after_max`). After `max_attempts` attempts → dead.
//! * Other statuses (3xx — redirects are not followed, 4xx) → dead at once:
//!   the receiver rejected these exact bytes and would reject them again.
//!
//! When the receiver is unreachable (connection error, timeout) or rate
//! limits (429), the whole target pauses until that delivery's next attempt,
//! so an outage costs one probe per backoff step rather than one per event.
//! A 5xx for one event only delays that event.
//!
//! Workers send one request at a time per target, oldest event first. A
//! request in flight when the process dies is sent again after the restart
//! (at-least-once: receivers deduplicate on `X-Vigil-Event-Id`).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use vigil_core::now_ms;

use crate::outbox::{Due, Outbox, OutboxError, Outcome, Target};

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

/// Running delivery workers; dropping it without [`Self::shutdown`] aborts them.
#[derive(Debug)]
pub struct DeliveryHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl DeliveryHandle {
    /// Stops the workers: requests in flight finish (bounded by the target
    /// timeout) and are recorded; nothing pending is lost, it stays in the
    /// outbox for the next start.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for DeliveryHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The retry delay after `attempts_done` failed attempts: the shared
/// [`vigil_core::Backoff`] with this outbox's initial delay and cap.
fn backoff(outbox: &Outbox, attempts_done: u32) -> Duration {
    let cfg = outbox.config();
    vigil_core::Backoff::new(cfg.backoff_initial, cfg.backoff_max).delay_for(attempts_done)
}

enum Attempt {
    Ok,
    /// Retry; `pause_target` when the receiver as a whole is unavailable.
    Retry {
        error: String,
        retry_after: Option<Duration>,
        pause_target: bool,
    },
    Permanent(String),
}

async fn send(client: &reqwest::Client, t: &Target, d: &Due) -> Attempt {
    let mut req = client
        .post(&t.target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Vigil-Event-Id", &d.event_id)
        .body(d.body.clone());
    if let Some(secret) = &t.target.secret {
        req = req.header("X-Vigil-Signature", signature(secret.as_bytes(), &d.body));
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                return Attempt::Ok;
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
                    pause_target: code == 429,
                }
            } else {
                Attempt::Permanent(format!("HTTP {code} (not retried)"))
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
            Attempt::Retry {
                error: format!("{kind}: {}", describe(e)),
                retry_after: None,
                pause_target: true,
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    outbox: &Outbox,
    f: impl FnOnce(&Outbox) -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    let o = outbox.clone();
    tokio::task::spawn_blocking(move || f(&o))
        .await
        .map_err(|e| OutboxError::Task(e.to_string()))?
}

/// Sleeps `d` unless told to stop or woken; returns false when stopping.
async fn wait(
    stop: &mut watch::Receiver<bool>,
    d: Duration,
    wake: Option<&tokio::sync::Notify>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    match wake {
        Some(n) => tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(d) => {}
            _ = n.notified() => {}
        },
        None => tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(d) => {}
        },
    }
    !*stop.borrow()
}

/// Longest a worker sleeps without looking at the database again; bounds how
/// late a delivery can be if a wake-up was missed.
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

const IDLE_POLL: Duration = Duration::from_secs(5);

async fn worker(outbox: Outbox, t: Arc<Target>, mut stop: watch::Receiver<bool>) {
    let url = vigil_core::mask_url(&t.target.url);
    let client = match reqwest::Client::builder()
        .timeout(t.target.timeout)
        .connect_timeout(t.target.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(webhook = %url, error = %e, "cannot build HTTP client; webhook disabled");
            return;
        }
    };
    let batch = outbox.config().batch.max(1);
    let mut pause_until: i64 = 0;
    tracing::info!(webhook = %url, "webhook worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        let now = now_ms();
        if pause_until > now {
            let d = Duration::from_millis((pause_until - now) as u64);
            if !wait(&mut stop, d, None).await {
                break;
            }
            continue;
        }
        let key = t.target.url.clone();
        let due = match blocking(&outbox, move |o| o.due(&key, now, batch)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(webhook = %url, error = %e, "outbox read failed; retrying");
                if !wait(&mut stop, Duration::from_secs(1), None).await {
                    break;
                }
                continue;
            }
        };
        if due.is_empty() {
            let key = t.target.url.clone();
            let next = blocking(&outbox, move |o| o.next_due(&key))
                .await
                .ok()
                .flatten();
            let d = next
                .map(|n| Duration::from_millis((n - now_ms()).max(0) as u64))
                .unwrap_or(IDLE_POLL)
                .min(IDLE_POLL);
            if !wait(&mut stop, d, Some(&t.notify)).await {
                break;
            }
            continue;
        }
        for d in due {
            if *stop.borrow() {
                break;
            }
            let attempt = send(&client, &t, &d).await;
            let attempts = d.attempts + 1;
            let (outcome, pause) = match attempt {
                Attempt::Ok => {
                    tracing::debug!(webhook = %url, event_id = %d.event_id, attempts, "delivered");
                    outbox.count("ok");
                    (Outcome::Delivered, false)
                }
                Attempt::Permanent(error) => {
                    tracing::warn!(webhook = %url, event_id = %d.event_id, attempts, %error, "delivery rejected; dead");
                    outbox.count("failed");
                    (Outcome::Dead { error }, false)
                }
                Attempt::Retry { error, .. } if attempts >= t.target.max_attempts.max(1) => {
                    tracing::warn!(webhook = %url, event_id = %d.event_id, attempts, %error, "delivery gave up after max_attempts; dead");
                    outbox.count("failed");
                    (Outcome::Dead { error }, false)
                }
                Attempt::Retry {
                    error,
                    retry_after,
                    pause_target,
                } => {
                    let delay = match retry_after {
                        Some(ra) => ra.min(outbox.config().retry_after_max),
                        None => backoff(&outbox, attempts),
                    };
                    let at_ms = now_ms() + delay.as_millis() as i64;
                    tracing::info!(webhook = %url, event_id = %d.event_id, attempts, %error, retry_in_ms = delay.as_millis() as u64, "delivery failed; will retry");
                    outbox.count("retry");
                    if pause_target {
                        pause_until = at_ms;
                    }
                    (Outcome::Retry { at_ms, error }, pause_target)
                }
            };
            let key = t.target.url.clone();
            let seq = d.seq;
            if let Err(e) = blocking(&outbox, move |o| o.record(&key, seq, &outcome)).await {
                // The row stays pending and is sent again: at-least-once.
                tracing::error!(webhook = %url, event_id = %d.event_id, error = %e, "cannot record delivery outcome");
            }
            if pause {
                break;
            }
        }
    }
    tracing::info!(webhook = %url, "webhook worker stopped");
}

async fn pruner(outbox: Outbox, mut stop: watch::Receiver<bool>) {
    let every = outbox
        .config()
        .prune_interval
        .max(Duration::from_millis(10));
    loop {
        if let Err(e) = blocking(&outbox, |o| o.prune(std::time::SystemTime::now())).await {
            tracing::error!(error = %e, "outbox prune failed");
        }
        if !wait(&mut stop, every, None).await {
            break;
        }
    }
}

impl Outbox {
    /// Starts one delivery worker per webhook target and the pruning task on
    /// the current tokio runtime. Deliveries left pending by an earlier run
    /// (crash included) are picked up at once. Start it once per outbox.
    pub fn start_delivery(&self) -> DeliveryHandle {
        let (stop, rx) = watch::channel(false);
        let mut tasks: Vec<JoinHandle<()>> = self
            .targets()
            .iter()
            .map(|t| tokio::spawn(worker(self.clone(), t.clone(), rx.clone())))
            .collect();
        tasks.push(tokio::spawn(pruner(self.clone(), rx)));
        DeliveryHandle { stop, tasks }
    }
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
