//! Uploaded-video jobs: the one worker loop that takes jobs from a
//! [`JobQueue`] (local SQLite in `vigil serve`, NATS JetStream in
//! `vigil worker`) and runs each through the shared [`Engine`].
//!
//! `jobs.workers` slots (tokio tasks) each hold at most one job. The video
//! itself runs on a blocking thread ([`process_video`]); the slot reports
//! progress every [`JobQueue::progress_every`] (a shared queue also renews
//! the job's lease with it) and ends the claim exactly once: succeeded,
//! failed, or given back when the worker stops.

mod process;
mod sink;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use vigil_core::config::{JobsConfig, TrackerConfig};
use vigil_jobs::{JobClaim, JobDir, JobQueue, JobStatus, Taken};
use vigil_pipeline::Engine;

use crate::metrics::Metrics;
pub use process::{process_video, JobContext, JobControl, Outcome};
pub use vigil_jobs::{DETECTIONS_FILE, VIDEO_FILE};

/// Suggested wait when the queue is full; roughly one short job.
pub const RETRY_AFTER_S: u64 = 5;
/// How long one wait for a job lasts before checking for shutdown.
const FETCH_WAIT: Duration = Duration::from_secs(2);
/// Pause after a failed fetch (the queue server away), so the log is not flooded.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Runs jobs from one queue on one engine.
pub struct JobRunner {
    pub queue: Arc<dyn JobQueue>,
    pub engine: Arc<Engine>,
    pub limits: JobsConfig,
    pub tracker: TrackerConfig,
    pub metrics: Arc<Metrics>,
    /// `host/pid`, recorded in each job a shared queue hands out.
    pub worker: String,
    /// Where a shared queue's uploads are copied to while they run.
    pub scratch: PathBuf,
}

impl JobRunner {
    /// Starts `jobs.workers` slots; they end once `stop` turns true, giving
    /// running jobs back to the queue.
    pub fn start(self: Arc<Self>, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        (0..self.limits.workers)
            .map(|_| tokio::spawn(Arc::clone(&self).slot(stop.clone())))
            .collect()
    }

    /// One job at a time, until shutdown.
    async fn slot(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let next = tokio::select! {
                _ = stop.changed() => return,
                n = self.queue.next(&self.worker, FETCH_WAIT) => n,
            };
            match next {
                Ok(None) => {}
                Ok(Some(Taken::Claim(claim))) => {
                    let rec = claim.record();
                    let span = tracing::info_span!("job", job = %rec.id, attempt = rec.attempt);
                    self.run(claim, stop.clone()).instrument(span).await;
                }
                Ok(Some(Taken::GaveUp(r))) => {
                    tracing::warn!(job = %r.id, error = ?r.error, "job failed");
                    self.count(JobStatus::Failed, 1).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch jobs; retrying");
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        }
    }

    /// Updates `vigil_jobs`: from the queue's own counts where it keeps
    /// every job (local), else by what this worker did (shared).
    async fn count(&self, status: JobStatus, by: i64) {
        if self.queue.is_shared() {
            self.metrics.add_job_count(status, by);
        } else if let Ok(c) = self.queue.counts().await {
            self.metrics.show_job_counts(&c);
        }
    }

    async fn run(&self, mut claim: Box<dyn JobClaim>, mut stop: watch::Receiver<bool>) {
        let rec = claim.record().clone();
        tracing::info!(attempt = rec.attempt, "job claimed");
        let JobDir { dir, scratch } = match claim.prepare(&self.scratch).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the upload; giving the job back");
                let _ = claim.release().await;
                let dir = self.scratch.join(format!("{}-{}", rec.id, rec.attempt));
                remove_dir(&dir).await;
                return;
            }
        };
        self.count(JobStatus::Running, 1).await;
        let progress = Arc::new(Progress::default());
        let task = {
            let (engine, progress) = (Arc::clone(&self.engine), Arc::clone(&progress));
            let (tracker, metrics) = (self.tracker.clone(), Arc::clone(&self.metrics));
            let limits = self.limits.clone();
            let (id, params, dir) = (rec.id.clone(), rec.params.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                let cx = JobContext {
                    engine: &engine,
                    limits: &limits,
                    tracker: &tracker,
                    metrics: &metrics,
                };
                let mut ctl = Control(progress);
                let input = dir.join(vigil_jobs::INPUT_FILE);
                process_video(&cx, &id, &input, &dir, &params, &mut ctl)
            })
        };
        tokio::pin!(task);
        let mut tick = tokio::time::interval(self.queue.progress_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut lost, mut stopping) = (false, false);
        let outcome = loop {
            tokio::select! {
                r = &mut task => break r,
                _ = tick.tick(), if !lost => {
                    let (done, total) = progress.read();
                    match claim.progress(done, total).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("another worker has taken this job over; stopping");
                            lost = true;
                            progress.stop();
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot report progress"),
                    }
                }
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    progress.stop();
                }
            }
        };
        if self.queue.is_shared() {
            self.metrics.add_job_count(JobStatus::Running, -1);
        }
        let files = [
            (VIDEO_FILE, dir.join(VIDEO_FILE)),
            (DETECTIONS_FILE, dir.join(DETECTIONS_FILE)),
        ];
        match outcome {
            _ if lost => {}
            Ok(Outcome::Succeeded { frames }) => {
                let files: Vec<(&str, &Path)> =
                    files.iter().map(|(n, p)| (*n, p.as_path())).collect();
                match claim.succeed(frames, &files).await {
                    Ok(true) => {
                        self.count(JobStatus::Succeeded, 1).await;
                        tracing::info!(frames, "job succeeded");
                    }
                    Ok(false) => tracing::warn!(
                        "job finished here but another worker had taken it over; result discarded"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot store the results; the job will be redelivered");
                    }
                }
            }
            Ok(Outcome::Failed(msg)) => {
                tracing::warn!(error = %msg, "job failed");
                match claim.fail(msg).await {
                    Ok(true) => self.count(JobStatus::Failed, 1).await,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot record the failure; the job will be redelivered");
                    }
                }
            }
            Ok(Outcome::Stopped) => {
                tracing::info!(
                    frames_done = progress.read().0,
                    "job stopped; given back to the queue"
                );
                if let Err(e) = claim.release().await {
                    tracing::warn!(error = %e, "cannot give the job back; it will run again later");
                }
                self.count(JobStatus::Queued, 0).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "job crashed; giving it back");
                let _ = claim.release().await;
            }
        }
        if scratch {
            remove_dir(&dir).await;
        }
    }
}

/// Shared between the blocking job thread and its slot.
#[derive(Default)]
struct Progress {
    done: OnceLock<Arc<AtomicU64>>,
    total: Mutex<Option<u64>>,
    /// The stream's own stop flag, once the job has started.
    handle_stop: OnceLock<Arc<AtomicBool>>,
    /// Set from outside (shutdown, or the job was taken over).
    stop: AtomicBool,
}

impl Progress {
    fn read(&self) -> (u64, Option<u64>) {
        let done = self.done.get().map_or(0, |d| d.load(Ordering::Relaxed));
        (done, *self.total.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Stops the job at once (its stream drains), or as soon as it starts.
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.handle_stop.get() {
            s.store(true, Ordering::SeqCst);
        }
    }
}

struct Control(Arc<Progress>);

impl JobControl for Control {
    fn started(&mut self, total: Option<u64>, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
        *self.0.total.lock().unwrap_or_else(|p| p.into_inner()) = total;
        let _ = self.0.done.set(done);
        let _ = self.0.handle_stop.set(Arc::clone(&stop));
        if self.0.stop.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
        }
    }

    fn progress(&mut self, _done: u64) -> bool {
        !self.0.stop.load(Ordering::SeqCst)
    }
}

async fn remove_dir(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove job scratch files");
        }
    }
}
