//! Uploaded-video jobs: a bounded queue, worker threads that run each job
//! through the shared [`Engine`], and SQLite-backed state.
//!
//! A job's files live in `storage.dir/jobs/<id>/`: `input` (the upload),
//! `video.mp4` and `detections.jsonl` (written under temporary names and
//! moved into place only when complete).

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
use vigil_pipeline::{Engine, SkipPolicy, StreamOptions, VideoFrameSource};
use vigil_video::{SourceOptions, VideoError, VideoSource, VideoWriter};

use crate::metrics::{Metrics, JOB_STATES};
use sink::JobSink;
pub use store::{JobParams, JobRow, Store};
use vigil_pipeline::PartialFile;

/// How often a running job's progress is written to the database (the API
/// reads live progress from memory; the database only needs it for restarts).
const PROGRESS_PERSIST: Duration = Duration::from_millis(500);

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
        let dir = self.job_dir(id);
        let fail = |msg: String| {
            tracing::warn!(error = %msg, "job failed");
            self.store.finish(id, false, 0, None, Some(&msg))
        };
        self.store.set_running(id, None)?;
        self.refresh_gauge();
        // Open the input before creating outputs: a bad upload fails with
        // a clear message and leaves nothing behind.
        let input = dir.join("input");
        let source = match VideoSource::open(&input.to_string_lossy(), &SourceOptions::default()) {
            Ok(s) => s,
            Err(VideoError::NotReadable { reason, .. }) => {
                return fail(format!("the upload is not a readable video: {reason}"));
            }
            Err(VideoError::NotFound { .. }) => {
                return fail("the uploaded file is missing from storage".into());
            }
            Err(e) => return fail(e.to_string()),
        };
        let info = source.info().clone();
        self.store.set_running(id, info.frame_count)?;
        let writer =
            match VideoWriter::create(&dir.join("video.mp4"), info.width, info.height, info.fps) {
                Ok(w) => w,
                Err(e) => return fail(format!("cannot create the annotated video: {e}")),
            };
        let jsonl = match PartialFile::create(&dir.join("detections.jsonl")) {
            Ok(f) => f,
            Err(e) => return fail(format!("cannot create detections.jsonl: {e}")),
        };
        let tracker = if row.params.track {
            match vigil_pipeline::tracker(&self.tracker, info.fps) {
                Ok(t) => Some(t),
                Err(e) => return fail(format!("tracker: {e}")),
            }
        } else {
            None
        };
        let done = Arc::new(AtomicU64::new(0));
        let sink = JobSink::new(
            writer,
            jsonl,
            Arc::clone(&done),
            row.params.conf,
            Arc::clone(&self.metrics),
        );
        let mut opts = StreamOptions::new(format!("job-{id}"));
        opts.skip = match (row.params.every, row.params.fps) {
            (Some(n), _) => SkipPolicy::Every(n),
            (None, Some(f)) => SkipPolicy::Fps(f),
            (None, None) => SkipPolicy::Every(1),
        };
        tracing::info!(
            frames = ?info.frame_count,
            width = info.width,
            height = info.height,
            fps = info.fps,
            "job started"
        );
        // A file source is not live, so its ring blocks instead of dropping:
        // every frame of the upload is processed or deliberately skipped.
        let handle = engine.add_stream(
            Box::new(VideoFrameSource::new(source)),
            Box::new(sink),
            tracker,
            opts,
        );
        lock(&self.running).insert(
            id.to_string(),
            Running {
                stop: handle.stop_flag(),
                done: Arc::clone(&done),
            },
        );
        if self.shutting_down.load(Ordering::SeqCst) {
            handle.stop();
        }
        while !handle.is_finished() {
            std::thread::sleep(PROGRESS_PERSIST);
            let _ = self.store.set_progress(id, done.load(Ordering::Relaxed));
        }
        let summary = handle.join();
        lock(&self.running).remove(id);
        let frames = done.load(Ordering::Relaxed);
        if summary.stopped && self.shutting_down.load(Ordering::SeqCst) {
            tracing::info!(
                frames_done = frames,
                "job interrupted by shutdown; re-queued"
            );
            return self.store.requeue(id);
        }
        match summary.error {
            Some(e) => fail(e),
            None => {
                tracing::info!(frames, processed = summary.processed, "job succeeded");
                self.store.finish(id, true, frames, Some(frames), None)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
