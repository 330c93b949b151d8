//! Uploaded-video jobs: a bounded queue, worker threads that run each job
//! through the shared [`Engine`], and SQLite-backed state.
//!
//! A job's files live in `storage.dir/jobs/<id>/`: `input` (the upload),
//! `video.mp4` and `detections.jsonl` (written under temporary names and
//! moved into place only when complete).

mod process;
mod sink;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use vigil_core::config::{JobsConfig, TrackerConfig};
use vigil_pipeline::Engine;

use crate::metrics::{Metrics, JOB_STATES};
pub use process::{process_video, JobContext, JobControl, Outcome, DETECTIONS_FILE, VIDEO_FILE};
pub use store::{JobParams, JobRow, Store};

/// Suggested wait when the queue is full; roughly one short job.
pub const RETRY_AFTER_S: u64 = 5;

/// A running job's live counters.
struct Running {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
}

pub struct Jobs {
    store: Store,
    dir: PathBuf,
    cfg: JobsConfig,
    tracker: TrackerConfig,
    tx: Sender<String>,
    rx: Receiver<String>,
    /// Jobs accepted but not yet picked up by a worker (incl. uploads in
    /// progress, which reserve their slot before reading the body).
    queued: AtomicUsize,
    running: Mutex<HashMap<String, Running>>,
    shutting_down: AtomicBool,
    metrics: Arc<Metrics>,
}

/// A reserved queue slot; released unless the upload completes.
pub struct Reservation<'a> {
    jobs: &'a Jobs,
    committed: bool,
}

impl Reservation<'_> {
    /// The upload is stored: the job enters the queue in this slot.
    pub fn commit(mut self, id: &str, params: &JobParams) -> Result<(), String> {
        self.jobs.store.insert(id, params)?;
        self.committed = true;
        // The receiver lives in `Jobs` itself, so the channel cannot be closed.
        let _ = self.jobs.tx.send(id.to_string());
        self.jobs.refresh_gauge();
        Ok(())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.jobs.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Jobs {
    /// Opens (or creates) the job database and re-queues jobs interrupted by
    /// the last shutdown or crash.
    pub fn open(
        storage: &Path,
        cfg: JobsConfig,
        tracker: TrackerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Jobs>, String> {
        let dir = storage.join("jobs");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let store = Store::open(&storage.join("jobs.sqlite3"))?;
        let recovered = store.recover()?;
        let (tx, rx) = crossbeam_channel::unbounded();
        if !recovered.is_empty() {
            tracing::info!(jobs = recovered.len(), "re-queued jobs from the last run");
        }
        let n = recovered.len();
        for id in recovered {
            let _ = tx.send(id);
        }
        let jobs = Arc::new(Jobs {
            store,
            dir,
            cfg,
            tracker,
            tx,
            rx,
            queued: AtomicUsize::new(n),
            running: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            metrics,
        });
        jobs.refresh_gauge();
        Ok(jobs)
    }

    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Takes a queue slot or says the queue is full (→ 429).
    pub fn reserve(&self) -> Result<Reservation<'_>, usize> {
        let max = self.cfg.queue_size;
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q < max).then_some(q + 1)
            })
            .map(|_| Reservation {
                jobs: self,
                committed: false,
            })
    }

    pub fn get(&self, id: &str) -> Result<Option<JobRow>, String> {
        let Some(mut row) = self.store.get(id)? else {
            return Ok(None);
        };
        if row.status == "running" {
            if let Some(r) = lock(&self.running).get(id) {
                row.frames_done = r.done.load(Ordering::Relaxed);
            }
        }
        Ok(Some(row))
    }

    /// Starts `jobs.workers` worker threads on `engine`.
    pub fn start_workers(self: &Arc<Self>, engine: Arc<Engine>) -> Vec<JoinHandle<()>> {
        (0..self.cfg.workers)
            .filter_map(|i| {
                let jobs = Arc::clone(self);
                let engine = Arc::clone(&engine);
                std::thread::Builder::new()
                    .name(format!("vigil-job-{i}"))
                    .spawn(move || jobs.worker(&engine))
                    .map_err(|e| tracing::error!(error = %e, "cannot spawn job worker"))
                    .ok()
            })
            .collect()
    }

    /// Stops running jobs (they go back to the queue) and makes workers exit.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for r in lock(&self.running).values() {
            r.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Deletes finished jobs older than `jobs.retention_hours`.
    pub fn sweep(&self) {
        if self.cfg.retention_hours == 0 {
            return;
        }
        let cutoff = store::now_ms() - (self.cfg.retention_hours as i64) * 3_600_000;
        let ids = match self.store.expired(cutoff) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "retention sweep failed");
                return;
            }
        };
        for id in ids {
            let dir = self.job_dir(&id);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(job = %id, error = %e, "cannot delete job files");
                    continue;
                }
            }
            if let Err(e) = self.store.delete(&id) {
                tracing::warn!(job = %id, error = %e, "cannot delete job");
            } else {
                tracing::info!(job = %id, "job expired and deleted");
            }
        }
        self.refresh_gauge();
    }

    fn refresh_gauge(&self) {
        if let Ok(counts) = self.store.counts() {
            for s in JOB_STATES {
                let n = counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
                self.metrics.jobs.with_label_values(&[*s]).set(n);
            }
        }
    }

    fn worker(&self, engine: &Engine) {
        loop {
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            // Polling with a timeout lets the worker notice shutdown while
            // the queue is empty; a queued job simply stays queued on disk.
            let Ok(id) = self.rx.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            self.queued.fetch_sub(1, Ordering::SeqCst);
            let span = tracing::info_span!("job", job = %id);
            let _g = span.enter();
            if let Err(e) = self.run(engine, &id) {
                tracing::error!(error = %e, "job bookkeeping failed");
            }
            self.refresh_gauge();
        }
    }

    fn run(&self, engine: &Engine, id: &str) -> Result<(), String> {
        let Some(row) = self.store.get(id)? else {
            return Ok(()); // deleted meanwhile
        };
        if row.status != "queued" {
            return Ok(());
        }
        self.store.set_running(id, None)?;
        self.refresh_gauge();
        let cx = JobContext {
            engine,
            limits: &self.cfg,
            tracker: &self.tracker,
            metrics: &self.metrics,
        };
        let dir = self.job_dir(id);
        let mut ctl = LocalControl { jobs: self, id };
        let outcome = process_video(&cx, id, &dir.join("input"), &dir, &row.params, &mut ctl);
        let frames = lock(&self.running)
            .remove(id)
            .map_or(0, |r| r.done.load(Ordering::Relaxed));
        match outcome {
            // Only a shutdown stops a local job: it runs again next start.
            Outcome::Stopped => {
                tracing::info!(
                    frames_done = frames,
                    "job interrupted by shutdown; re-queued"
                );
                self.store.requeue(id)
            }
            Outcome::Failed(msg) => {
                tracing::warn!(error = %msg, "job failed");
                self.store.finish(id, false, 0, None, Some(&msg))
            }
            Outcome::Succeeded { frames } => {
                tracing::info!(frames, "job succeeded");
                self.store.finish(id, true, frames, Some(frames), None)
            }
        }
    }
}

/// Local jobs keep their state in SQLite; live progress is read from memory.
struct LocalControl<'a> {
    jobs: &'a Jobs,
    id: &'a str,
}

impl JobControl for LocalControl<'_> {
    fn started(&mut self, total: Option<u64>, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
        if let Err(e) = self.jobs.store.set_running(self.id, total) {
            tracing::warn!(error = %e, "cannot record the job's frame count");
        }
        lock(&self.jobs.running).insert(
            self.id.to_string(),
            Running {
                stop: Arc::clone(&stop),
                done,
            },
        );
        if self.jobs.shutting_down.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
        }
    }

    fn progress(&mut self, done: u64) -> bool {
        let _ = self.jobs.store.set_progress(self.id, done);
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
