//! Event delivery workers: one tokio task per [`crate::EventSink`] plus one
//! pruning task.
//!
//! # Retry policy
//!
//! What an attempt came to is the sink's call ([`crate::Attempt`]); the
//! policy after it is the same for every sink:
//!
//! * delivered → done;
//! * a retry → again after `backoff_initial · 2^(attempts-1)` (capped at
//!   `backoff_max`, ±20 % jitter: [`vigil_core::Backoff`]), or after the
//!   receiver's `Retry-After` (capped at `retry_after_max`); after the
//!   sink's `max_attempts` attempts → dead;
//! * rejected → dead at once.
//!
//! When a sink is unreachable or rate limits, it pauses until that
//! delivery's next attempt, so an outage costs one probe per backoff step
//! rather than one per event.
//!
//! Workers send one delivery at a time per sink, oldest event first. A
//! delivery in flight when the process dies is sent again after the restart
//! (at-least-once: receivers deduplicate on the event `id`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use vigil_core::now_ms;

use crate::outbox::{Outbox, OutboxError, Outcome, Target};
use crate::sink::Attempt;

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
const IDLE_POLL: Duration = Duration::from_secs(5);

async fn worker(outbox: Outbox, t: Arc<Target>, mut stop: watch::Receiver<bool>) {
    let sink = &t.sink;
    let name = vigil_core::mask_url(sink.key());
    let kind = sink.kind();
    let batch = outbox.config().batch.max(1);
    let mut pause_until: i64 = 0;
    tracing::info!(sink = kind.as_str(), target = %name, "event delivery worker started");
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
        let key = sink.key().to_string();
        let due = match blocking(&outbox, move |o| o.due(&key, now, batch)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(target = %name, error = %e, "outbox read failed; retrying");
                if !wait(&mut stop, Duration::from_secs(1), None).await {
                    break;
                }
                continue;
            }
        };
        if due.is_empty() {
            let key = sink.key().to_string();
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
            let attempt = sink.send(&d).await;
            let attempts = d.attempts + 1;
            let (outcome, pause) = match attempt {
                Attempt::Delivered => {
                    tracing::debug!(target = %name, event_id = %d.event_id, attempts, "delivered");
                    outbox.count(kind, "ok");
                    (Outcome::Delivered, false)
                }
                Attempt::Rejected(error) => {
                    tracing::warn!(target = %name, event_id = %d.event_id, attempts, %error, "delivery rejected; dead");
                    outbox.count(kind, "failed");
                    (Outcome::Dead { error }, false)
                }
                Attempt::Retry { error, .. } if attempts >= sink.max_attempts().max(1) => {
                    tracing::warn!(target = %name, event_id = %d.event_id, attempts, %error, "delivery gave up after max_attempts; dead");
                    outbox.count(kind, "failed");
                    (Outcome::Dead { error }, false)
                }
                Attempt::Retry {
                    error,
                    retry_after,
                    pause_sink,
                } => {
                    let delay = match retry_after {
                        Some(ra) => ra.min(outbox.config().retry_after_max),
                        None => backoff(&outbox, attempts),
                    };
                    let at_ms = now_ms() + delay.as_millis() as i64;
                    tracing::info!(target = %name, event_id = %d.event_id, attempts, %error, retry_in_ms = delay.as_millis() as u64, "delivery failed; will retry");
                    outbox.count(kind, "retry");
                    if pause_sink {
                        pause_until = at_ms;
                    }
                    (Outcome::Retry { at_ms, error }, pause_sink)
                }
            };
            let key = sink.key().to_string();
            let seq = d.seq;
            if let Err(e) = blocking(&outbox, move |o| o.record(&key, seq, &outcome)).await {
                // The row stays pending and is sent again: at-least-once.
                tracing::error!(target = %name, event_id = %d.event_id, error = %e, "cannot record delivery outcome");
            }
            if pause {
                break;
            }
        }
    }
    tracing::info!(target = %name, "event delivery worker stopped");
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
