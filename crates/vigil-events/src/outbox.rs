//! The durable outbox: every event is committed to SQLite before anything is
//! sent, with one delivery row per (event, matching webhook).
//!
//! # Durability
//!
//! WAL journal with `synchronous = FULL`: an [`Outbox::append`] that returned
//! `Ok` has been fsynced, so its events survive a process kill (`kill -9`) and
//! a power loss. (NORMAL would survive a process crash but could lose the last
//! commits on power loss; one fsync per processed frame that has events is
//! cheap by comparison.) The body is stored as the exact bytes that are POSTed,
//! so signatures computed after a restart match what was recorded.
//!
//! # Event status
//!
//! `pending` while any of its deliveries is pending; otherwise `dead` if any
//! delivery went dead, else `delivered`. An event no webhook subscribes to is
//! recorded as `delivered` at once (nothing is owed), so `GET /v1/events`
//! still lists it.
//!
//! # Bounded size
//!
//! [`Outbox::prune`] deletes delivered events older than
//! `retention_delivered` and dead ones older than `retention_dead` (counted
//! from when they stopped being pending); the delivery service runs it every
//! `prune_interval`. Pending rows are never pruned: with the default
//! `max_attempts` and backoff they turn dead within about 15 minutes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use vigil_core::{mask_url, now_ms, EventType};

use crate::event::Event;
use crate::sink::{Delivery, EventSink, SinkKind};
use crate::webhook::{WebhookSink, WebhookTarget};

/// Errors from the outbox; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("outbox directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("outbox: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("outbox: cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("webhooks[{index}]: duplicate url {url:?} (deliveries are keyed by url)")]
    DuplicateWebhook { index: usize, url: String },
    #[error("outbox: two event sinks share the key {key:?} (deliveries are keyed by it)")]
    DuplicateSink { key: String },
    #[error("webhooks[{index}]: cannot build the HTTP client: {source}")]
    Client {
        index: usize,
        #[source]
        source: reqwest::Error,
    },
    #[error("outbox: background task failed: {0}")]
    Task(String),
}

/// Delivery status of an event or of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Delivered,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "delivered" => Status::Delivered,
            "dead" => Status::Dead,
            _ => Status::Pending,
        }
    }
}

/// A delivery status that names no [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status must be pending, delivered or dead, got {0:?}")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for Status {
    type Err = UnknownStatus;
    /// Parses the `status` query parameter of `GET /v1/events`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Status::Pending),
            "delivered" => Ok(Status::Delivered),
            "dead" => Ok(Status::Dead),
            _ => Err(UnknownStatus(s.to_string())),
        }
    }
}

/// Handles into metrics the daemon already registered, updated as deliveries
/// happen: `vigil_event_deliveries_total{sink,outcome}` for every sink, the
/// contract's `vigil_webhook_deliveries_total{outcome}` for webhooks, and
/// `vigil_outbox_pending`.
#[derive(Debug, Clone)]
pub struct PromMetrics {
    /// `vigil_webhook_deliveries_total{outcome}` (webhook sinks only).
    pub deliveries_total: prometheus::IntCounterVec,
    /// `vigil_event_deliveries_total{sink,outcome}`.
    pub event_deliveries_total: prometheus::IntCounterVec,
    pub outbox_pending: prometheus::IntGauge,
}

impl PromMetrics {
    /// Creates and registers both metrics, for users without their own.
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let deliveries_total = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "vigil_webhook_deliveries_total",
                "Webhook delivery attempts by outcome (ok, retry, failed).",
            ),
            &["outcome"],
        )?;
        let event_deliveries_total = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "vigil_event_deliveries_total",
                "Event delivery attempts by sink (webhook, mqtt, nats) and outcome (ok, retry, failed).",
            ),
            &["sink", "outcome"],
        )?;
        let outbox_pending = prometheus::IntGauge::new(
            "vigil_outbox_pending",
            "Events in the outbox not yet delivered.",
        )?;
        registry.register(Box::new(deliveries_total.clone()))?;
        registry.register(Box::new(event_deliveries_total.clone()))?;
        registry.register(Box::new(outbox_pending.clone()))?;
        Ok(Self {
            deliveries_total,
            event_deliveries_total,
            outbox_pending,
        })
    }
}

/// Delivery counters, readable from any thread; mirrored into [`PromMetrics`]
/// when given.
#[derive(Debug, Default)]
pub struct OutboxStats {
    /// Attempts answered 2xx.
    pub ok: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retry: AtomicU64,
    /// Deliveries given up (dead).
    pub failed: AtomicU64,
    /// Events still pending (`vigil_outbox_pending`).
    pub pending: AtomicI64,
}

/// Outbox settings; `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub retention_delivered: Duration,
    pub retention_dead: Duration,
    /// First retry delay; doubles per attempt, ±20 % jitter.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured (a receiver cannot park us for days).
    pub retry_after_max: Duration,
    pub prune_interval: Duration,
    /// Rows fetched per worker round.
    pub batch: usize,
    pub metrics: Option<PromMetrics>,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            retention_delivered: Duration::from_secs(24 * 3600),
            retention_dead: Duration::from_secs(7 * 24 * 3600),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            retry_after_max: Duration::from_secs(3600),
            prune_interval: Duration::from_secs(60),
            batch: 32,
            metrics: None,
        }
    }
}

/// One delivery as `GET /v1/events` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The webhook url with credentials and query values masked (they may
    /// hold tokens).
    pub webhook: String,
    pub status: Status,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// An event with its delivery status, newest first from [`Outbox::recent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    #[serde(flatten)]
    pub event: Event,
    pub status: Status,
    pub deliveries: Vec<DeliveryRecord>,
}

/// What an attempt came to, recorded by [`Outbox::record`].
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Delivered,
    Retry { at_ms: i64, error: String },
    Dead { error: String },
}

pub(crate) struct Target {
    pub sink: Arc<dyn EventSink>,
    pub notify: tokio::sync::Notify,
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
    pub(crate) targets: Vec<Arc<Target>>,
    config: OutboxConfig,
    stats: OutboxStats,
}

/// The outbox; cheap to clone (shared connection). Methods block on SQLite,
/// so async callers use `spawn_blocking` (the delivery workers do).
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    stream TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    finished_ms INTEGER,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_status ON events(status, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    webhook TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (event_seq, webhook)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(webhook, status, next_attempt_ms);
";

/// Recomputes an event's status from its deliveries (inside a transaction).
const REFRESH_EVENT: &str = "
UPDATE events SET
  status = CASE
    WHEN EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1 AND status = 'pending') THEN 'pending'
    WHEN EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1 AND status = 'dead') THEN 'dead'
    ELSE 'delivered' END,
  finished_ms = CASE
    WHEN EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1 AND status = 'pending') THEN NULL
    ELSE ?2 END
WHERE seq = ?1";

impl Outbox {
    /// Opens (creating if needed) the outbox database at `path`, e.g.
    /// `storage.dir/events.sqlite3`, for these webhook targets.
    ///
    /// Every pending delivery is made due now, so a restart retries at once
    /// rather than waiting out a backoff computed before the restart.
    /// Pending deliveries for webhooks no longer configured are marked dead
    /// (nobody would ever deliver them, and they would block pruning).
    /// Only one process may open a given outbox at a time.
    pub fn open(
        path: impl AsRef<Path>,
        targets: Vec<WebhookTarget>,
        config: OutboxConfig,
    ) -> Result<Self, OutboxError> {
        let mut sinks: Vec<Arc<dyn EventSink>> = Vec::with_capacity(targets.len());
        for (index, t) in targets.into_iter().enumerate() {
            if sinks.iter().any(|s| s.key() == t.url) {
                return Err(OutboxError::DuplicateWebhook {
                    index,
                    url: mask_url(&t.url),
                });
            }
            let sink =
                WebhookSink::new(t).map_err(|source| OutboxError::Client { index, source })?;
            sinks.push(Arc::new(sink));
        }
        Self::open_with_sinks(path, sinks, config)
    }

    /// [`Self::open`] for any [`EventSink`]s (webhooks, MQTT, NATS, …): one
    /// delivery row per event and sink that wants it, the same durability and
    /// retries for all. Keys must be unique.
    pub fn open_with_sinks(
        path: impl AsRef<Path>,
        sinks: Vec<Arc<dyn EventSink>>,
        config: OutboxConfig,
    ) -> Result<Self, OutboxError> {
        let path = path.as_ref().to_path_buf();
        for (index, s) in sinks.iter().enumerate() {
            if sinks[..index].iter().any(|o| o.key() == s.key()) {
                return Err(OutboxError::DuplicateSink {
                    key: mask_url(s.key()),
                });
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutboxError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| OutboxError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;

        let now = now_ms();
        let tx = conn.unchecked_transaction().map_err(open_err)?;
        tx.execute(
            "UPDATE deliveries SET next_attempt_ms = ?1 WHERE status = 'pending' AND next_attempt_ms > ?1",
            params![now],
        )?;
        let keys: Vec<String> = sinks.iter().map(|s| s.key().to_string()).collect();
        let orphaned: Vec<(i64, String)> = {
            let mut st =
                tx.prepare("SELECT event_seq, webhook FROM deliveries WHERE status = 'pending'")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.filter_map(Result::ok)
                .filter(|(_, w): &(i64, String)| !keys.contains(w))
                .collect()
        };
        for (seq, key) in &orphaned {
            // Webhook keys are their URLs; other sinks' keys are not.
            let lower = key.to_ascii_lowercase();
            let why = if lower.starts_with("http://") || lower.starts_with("https://") {
                "webhook no longer configured"
            } else {
                "sink no longer configured"
            };
            tx.execute(
                "UPDATE deliveries SET status = 'dead', last_error = ?4, updated_ms = ?3
                 WHERE event_seq = ?1 AND webhook = ?2",
                params![seq, key, now, why],
            )?;
            tx.execute(REFRESH_EVENT, params![seq, now])?;
        }
        tx.commit()?;
        if !orphaned.is_empty() {
            tracing::warn!(outbox = %path.display(), deliveries = orphaned.len(), "pending deliveries for removed sinks marked dead");
        }
        let pending: i64 = conn.query_row(
            "SELECT COUNT(*) FROM events WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )?;
        let webhooks = sinks
            .iter()
            .filter(|s| s.kind() == SinkKind::Webhook)
            .count();
        tracing::info!(outbox = %path.display(), pending, webhooks, sinks = sinks.len(), "outbox open");

        let outbox = Outbox {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path,
                targets: sinks
                    .into_iter()
                    .map(|sink| {
                        Arc::new(Target {
                            sink,
                            notify: tokio::sync::Notify::new(),
                        })
                    })
                    .collect(),
                config,
                stats: OutboxStats::default(),
            }),
        };
        outbox.set_pending(pending);
        Ok(outbox)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back on drop), so a poisoned lock is still usable.
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn targets(&self) -> &[Arc<Target>] {
        &self.inner.targets
    }

    pub(crate) fn config(&self) -> &OutboxConfig {
        &self.inner.config
    }

    /// Delivery counters and the pending gauge.
    pub fn stats(&self) -> &OutboxStats {
        &self.inner.stats
    }

    fn set_pending(&self, n: i64) {
        self.inner.stats.pending.store(n, Ordering::Relaxed);
        if let Some(m) = &self.inner.config.metrics {
            m.outbox_pending.set(n);
        }
    }

    fn add_pending(&self, delta: i64) {
        let n = self.inner.stats.pending.fetch_add(delta, Ordering::Relaxed) + delta;
        if let Some(m) = &self.inner.config.metrics {
            m.outbox_pending.set(n);
        }
    }

    pub(crate) fn count(&self, sink: SinkKind, outcome: &str) {
        let c = match outcome {
            "ok" => &self.inner.stats.ok,
            "retry" => &self.inner.stats.retry,
            _ => &self.inner.stats.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.inner.config.metrics {
            m.event_deliveries_total
                .with_label_values(&[sink.as_str(), outcome])
                .inc();
            if sink == SinkKind::Webhook {
                m.deliveries_total.with_label_values(&[outcome]).inc();
            }
        }
    }

    /// Commits `events` (one transaction, fsynced) with a delivery row for
    /// every sink that wants each, then wakes the workers. Call it before
    /// anything else learns of the events; when it fails, nothing was stored.
    pub fn append(&self, events: &[Event]) -> Result<(), OutboxError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut woken = vec![false; self.inner.targets.len()];
        let mut pending = 0i64;
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            {
                let mut ins_event = tx.prepare_cached(
                    "INSERT INTO events (id, type, stream, created_ms, status, finished_ms, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                let mut ins_delivery = tx.prepare_cached(
                    "INSERT INTO deliveries (event_seq, webhook, status, attempts, next_attempt_ms, updated_ms)
                     VALUES (?1, ?2, 'pending', 0, ?3, ?3)",
                )?;
                for e in events {
                    let body = serde_json::to_vec(e)?;
                    let wanted: Vec<usize> = self
                        .inner
                        .targets
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| t.sink.wants(e.kind))
                        .map(|(i, _)| i)
                        .collect();
                    let (status, finished) = if wanted.is_empty() {
                        ("delivered", Some(now))
                    } else {
                        pending += 1;
                        ("pending", None)
                    };
                    ins_event.execute(params![
                        e.id,
                        e.kind.as_str(),
                        e.stream.0,
                        now,
                        status,
                        finished,
                        body
                    ])?;
                    let seq = tx.last_insert_rowid();
                    for i in wanted {
                        ins_delivery.execute(params![
                            seq,
                            self.inner.targets[i].sink.key(),
                            now
                        ])?;
                        woken[i] = true;
                    }
                }
            }
            tx.commit()?;
        }
        self.add_pending(pending);
        for (t, w) in self.inner.targets.iter().zip(woken) {
            if w {
                t.notify.notify_one();
            }
        }
        Ok(())
    }

    /// Up to `limit` (1–1000) events, newest first, optionally only those with
    /// `status`; what `GET /v1/events` returns.
    pub fn recent(
        &self,
        limit: usize,
        status: Option<Status>,
    ) -> Result<Vec<EventRecord>, OutboxError> {
        let limit = limit.clamp(1, 1000) as i64;
        let conn = self.conn();
        let rows: Vec<(i64, String, Vec<u8>)> = match status {
            Some(s) => {
                let mut st = conn.prepare_cached(
                    "SELECT seq, status, body FROM events WHERE status = ?1 ORDER BY seq DESC LIMIT ?2",
                )?;
                let r = st.query_map(params![s.as_str(), limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
                r.collect::<Result<_, _>>()?
            }
            None => {
                let mut st = conn.prepare_cached(
                    "SELECT seq, status, body FROM events ORDER BY seq DESC LIMIT ?1",
                )?;
                let r = st.query_map(params![limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                r.collect::<Result<_, _>>()?
            }
        };
        let mut dst = conn.prepare_cached(
            "SELECT webhook, status, attempts, last_error FROM deliveries WHERE event_seq = ?1 ORDER BY webhook",
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, status, body) in rows {
            let event: Event = match serde_json::from_slice(&body) {
                Ok(e) => e,
                Err(err) => {
                    tracing::warn!(seq, error = %err, "outbox row with an unreadable body skipped");
                    continue;
                }
            };
            let deliveries = dst
                .query_map(params![seq], |r| {
                    Ok(DeliveryRecord {
                        webhook: mask_url(&r.get::<_, String>(0)?),
                        status: Status::parse(&r.get::<_, String>(1)?),
                        attempts: r.get(2)?,
                        last_error: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            out.push(EventRecord {
                event,
                status: Status::parse(&status),
                deliveries,
            });
        }
        Ok(out)
    }

    /// Pending deliveries for `url` due at `now`, oldest event first.
    pub(crate) fn due(
        &self,
        url: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, OutboxError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT d.event_seq, e.id, e.body, d.attempts, e.type, e.stream FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.webhook = ?1 AND d.status = 'pending' AND d.next_attempt_ms <= ?2
             ORDER BY d.event_seq LIMIT ?3",
        )?;
        let rows = st.query_map(params![url, now, limit as i64], |r| {
            let kind: String = r.get(4)?;
            Ok((
                kind,
                Delivery {
                    seq: r.get(0)?,
                    event_id: r.get(1)?,
                    body: r.get(2)?,
                    attempts: r.get(3)?,
                    // Replaced below; the SQL edge holds the name.
                    kind: EventType::TrackStarted,
                    stream: r.get(5)?,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, mut d) = row?;
            match name.parse::<EventType>() {
                Ok(kind) => {
                    d.kind = kind;
                    out.push(d);
                }
                // Only a newer vigil writes a type this one does not know;
                // left pending for it rather than sent misrouted.
                Err(e) => {
                    tracing::warn!(seq = d.seq, error = %e, "outbox row with an unknown event type skipped");
                }
            }
        }
        Ok(out)
    }

    /// When the next pending delivery for `url` is due (unix ms), if any.
    pub(crate) fn next_due(&self, url: &str) -> Result<Option<i64>, OutboxError> {
        let conn = self.conn();
        let v: Option<Option<i64>> = conn
            .query_row(
                "SELECT MIN(next_attempt_ms) FROM deliveries WHERE webhook = ?1 AND status = 'pending'",
                params![url],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.flatten())
    }

    /// Records one attempt's outcome and refreshes the event's status.
    pub(crate) fn record(&self, url: &str, seq: i64, outcome: &Outcome) -> Result<(), OutboxError> {
        let now = now_ms();
        let left_pending = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            match outcome {
                Outcome::Delivered => tx.execute(
                    "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_error = NULL, updated_ms = ?3
                     WHERE event_seq = ?1 AND webhook = ?2",
                    params![seq, url, now],
                )?,
                Outcome::Retry { at_ms, error } => tx.execute(
                    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_ms = ?3, last_error = ?4, updated_ms = ?5
                     WHERE event_seq = ?1 AND webhook = ?2",
                    params![seq, url, at_ms, error, now],
                )?,
                Outcome::Dead { error } => tx.execute(
                    "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_error = ?3, updated_ms = ?4
                     WHERE event_seq = ?1 AND webhook = ?2",
                    params![seq, url, error, now],
                )?,
            };
            let before: String = tx.query_row(
                "SELECT status FROM events WHERE seq = ?1",
                params![seq],
                |r| r.get(0),
            )?;
            tx.execute(REFRESH_EVENT, params![seq, now])?;
            let after: String = tx.query_row(
                "SELECT status FROM events WHERE seq = ?1",
                params![seq],
                |r| r.get(0),
            )?;
            tx.commit()?;
            before == "pending" && after != "pending"
        };
        if left_pending {
            self.add_pending(-1);
        }
        Ok(())
    }

    /// Deletes delivered events older than `retention_delivered` and dead ones
    /// older than `retention_dead` (their deliveries go with them), at `now`.
    /// Returns how many events were deleted; also resyncs the pending gauge.
    pub fn prune(&self, now: SystemTime) -> Result<usize, OutboxError> {
        let now_ms = vigil_core::to_ms(now);
        let cfg = &self.inner.config;
        let (deleted, pending) = {
            let conn = self.conn();
            let d1 = conn.execute(
                "DELETE FROM events WHERE status = 'delivered' AND finished_ms <= ?1",
                params![now_ms - cfg.retention_delivered.as_millis() as i64],
            )?;
            let d2 = conn.execute(
                "DELETE FROM events WHERE status = 'dead' AND finished_ms <= ?1",
                params![now_ms - cfg.retention_dead.as_millis() as i64],
            )?;
            let pending: i64 = conn.query_row(
                "SELECT COUNT(*) FROM events WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )?;
            (d1 + d2, pending)
        };
        self.set_pending(pending);
        if deleted > 0 {
            tracing::info!(outbox = %self.inner.path.display(), deleted, "outbox pruned");
        }
        Ok(deleted)
    }

    /// Total rows in the outbox (events, deliveries); for tests and diagnostics.
    pub fn row_counts(&self) -> Result<(u64, u64), OutboxError> {
        let conn = self.conn();
        let e: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
        let d: i64 = conn.query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))?;
        Ok((e as u64, d as u64))
    }
}
