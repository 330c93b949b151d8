//! Bounds on what one client can hold: the pace of request bodies, uploads
//! in flight per client address, `/v1/detect` concurrency, and the free
//! space below which uploads are refused.
//!
//! Before these, 16 uploads that each declared 60 MB and sent 3 bytes held
//! every job-queue slot for `upload_timeout_s`, and `/v1/detect` held up to
//! `max_upload_mb` per request in memory with no bound on how many.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vigil_core::config::Config;

use crate::api::error::ApiError;

/// What a refused client is told to wait before trying again.
const BUSY_RETRY_S: u64 = 2;

/// Shared by the handlers (one per daemon).
pub struct Limits {
    uploads: Arc<ClientGate>,
    detect: Arc<Semaphore>,
    detect_concurrency: usize,
    pub body: BodyPace,
    /// `storage.min_free_mb` in bytes.
    pub min_free_bytes: u64,
}

impl Limits {
    pub fn from_config(cfg: &Config) -> Limits {
        let s = &cfg.server;
        Limits {
            uploads: Arc::new(ClientGate {
                max: s.max_uploads_per_client,
                inflight: Mutex::new(HashMap::new()),
            }),
            detect: Arc::new(Semaphore::new(s.detect_concurrency)),
            detect_concurrency: s.detect_concurrency,
            body: BodyPace {
                idle: Duration::from_secs(s.body_idle_timeout_s),
                min_bytes_per_s: s.min_upload_kib_s.saturating_mul(1024),
            },
            min_free_bytes: cfg.storage.min_free_mb.saturating_mul(1024 * 1024),
        }
    }

    /// A slot for one job upload from `client` (429 when it has
    /// `server.max_uploads_per_client` in flight already).
    pub fn upload_slot(&self, client: Option<IpAddr>) -> Result<ClientSlot, ApiError> {
        match client {
            Some(ip) => ClientGate::enter(&self.uploads, ip),
            None => Ok(ClientSlot(None)),
        }
    }

    /// A `/v1/detect` slot, taken before the body is read (429 when
    /// `server.detect_concurrency` requests are in progress).
    pub fn detect_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.detect)
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy {
                message: format!(
                    "{} detect requests are in progress (server.detect_concurrency); retry shortly",
                    self.detect_concurrency
                ),
                retry_after_s: BUSY_RETRY_S,
            })
    }

    /// 507 when the file system of `dir` has less than `storage.min_free_mb`
    /// free (checked before an upload is accepted and again after it).
    pub fn check_free_space(&self, dir: &Path) -> Result<(), ApiError> {
        match free_bytes(dir) {
            Some(free) if free < self.min_free_bytes => {
                Err(ApiError::InsufficientStorage(format!(
                    "less than storage.min_free_mb ({} MiB) free for uploads; retry later",
                    self.min_free_bytes / (1024 * 1024)
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Bytes available to unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Uploads in flight per client address.
pub struct ClientGate {
    max: usize,
    inflight: Mutex<HashMap<IpAddr, usize>>,
}

impl ClientGate {
    fn enter(gate: &Arc<ClientGate>, ip: IpAddr) -> Result<ClientSlot, ApiError> {
        let mut m = gate.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= gate.max {
            return Err(ApiError::Busy {
                message: format!(
                    "{} uploads from this client are in progress (server.max_uploads_per_client)",
                    gate.max
                ),
                retry_after_s: BUSY_RETRY_S,
            });
        }
        *n += 1;
        Ok(ClientSlot(Some((Arc::clone(gate), ip))))
    }
}

/// Gives the client's upload slot back when dropped.
pub struct ClientSlot(Option<(Arc<ClientGate>, IpAddr)>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some((gate, ip)) = self.0.take() {
            let mut m = gate.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&ip);
                }
            }
        }
    }
}

/// The slowest a request body may arrive: no gap longer than `idle`, and
/// after `idle` has passed, at least `min_bytes_per_s` on average.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub idle: Duration,
    pub min_bytes_per_s: u64,
}

impl BodyPace {
    pub fn start(self) -> PaceWatch {
        PaceWatch {
            pace: self,
            started: Instant::now(),
            received: 0,
        }
    }
}

/// Watches one body as it arrives.
pub struct PaceWatch {
    pace: BodyPace,
    started: Instant,
    received: u64,
}

impl PaceWatch {
    /// Awaits the next piece of the body, at most `idle`.
    pub async fn next<T>(&mut self, piece: impl Future<Output = T>) -> Result<T, ApiError> {
        tokio::time::timeout(self.pace.idle, piece)
            .await
            .map_err(|_| {
                ApiError::Timeout(format!(
                    "no request body data for {} s (server.body_idle_timeout_s)",
                    self.pace.idle.as_secs()
                ))
            })
    }

    /// Counts `n` bytes received; too slow on average → 408.
    pub fn add(&mut self, n: usize) -> Result<(), ApiError> {
        self.received = self.received.saturating_add(n as u64);
        let elapsed = self.started.elapsed();
        if self.pace.min_bytes_per_s > 0 && elapsed > self.pace.idle {
            let rate = self.received as f64 / elapsed.as_secs_f64();
            if rate < self.pace.min_bytes_per_s as f64 {
                return Err(ApiError::Timeout(format!(
                    "request body arrives at {:.0} B/s, slower than server.min_upload_kib_s ({} KiB/s)",
                    rate,
                    self.pace.min_bytes_per_s / 1024
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_slots_are_counted_per_address_and_given_back() {
        let mut cfg = Config::default();
        cfg.server.max_uploads_per_client = 2;
        let l = Limits::from_config(&cfg);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let s1 = l.upload_slot(Some(a)).unwrap();
        let _s2 = l.upload_slot(Some(a)).unwrap();
        assert_eq!(
            l.upload_slot(Some(a)).err().map(|e| e.status().as_u16()),
            Some(429)
        );
        assert!(l.upload_slot(Some(b)).is_ok());
        drop(s1);
        assert!(l.upload_slot(Some(a)).is_ok());
    }

    #[test]
    fn free_space_is_read() {
        assert!(free_bytes(Path::new("/")).is_some_and(|b| b > 0));
        assert!(free_bytes(Path::new("/no/such/dir")).is_none());
    }
}
