//! One job model for uploaded-video jobs: a [`JobRecord`] with a
//! [`JobStatus`], and the [`JobQueue`] trait that the local SQLite back end
//! ([`LocalQueue`]) and the NATS JetStream back end (`vigil-queue`)
//! implement. The HTTP handlers and the one worker loop (in `vigil-server`)
//! see only the trait, so a back end is chosen once, at start-up.
//!
//! The lifecycle every back end keeps: `submit` → `queued`; a worker's
//! [`JobQueue::next`] → a [`JobClaim`] (`running`); the claim ends exactly
//! once, in `succeed`, `fail` or `release` (back to `queued`). A job
//! completes at most once: a claim that has lost its job (a shared queue
//! redelivered it to another worker) learns so from `progress` or
//! `succeed` returning `false`, and its result is discarded.

mod deferred;
mod local;
mod record;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

pub use deferred::Deferred;
pub use local::LocalQueue;
pub use record::{JobRecord, JobStatus, UnknownStatus};
pub use vigil_core::JobParams;

/// Result files of a job, in its working directory and in every back end.
pub const VIDEO_FILE: &str = "video.mp4";
pub const DETECTIONS_FILE: &str = "detections.jsonl";
/// The upload, in a job's working directory.
pub const INPUT_FILE: &str = "input";

/// Why a queue could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// The queue's server is away or not connected yet (→ 503); the message
    /// names it and the last error.
    #[error("{0}")]
    Unavailable(String),
    /// Local storage failed (the SQLite file, the job directory) (→ 500).
    #[error("{0}")]
    Storage(String),
}

/// Why an upload was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue already holds this many jobs waiting or running (→ 429).
    #[error("the job queue is full ({0} jobs waiting or running)")]
    Full(u64),
    #[error(transparent)]
    Queue(#[from] JobError),
}

/// Jobs per state, for the `vigil_jobs{status}` gauge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Not yet handed to a worker.
    pub queued: u64,
    /// Handed to a worker and not yet finished.
    pub running: u64,
    /// Finished jobs still on record, where the queue keeps them (local);
    /// `None` for a shared queue, where each worker counts what it finished.
    pub finished: Option<FinishedCounts>,
}

/// Finished jobs still on record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinishedCounts {
    pub succeeded: u64,
    pub failed: u64,
}

impl JobCounts {
    /// Each state's count, where known.
    pub fn by_status(&self) -> impl Iterator<Item = (JobStatus, u64)> {
        let fin = self.finished.map(|f| {
            [
                (JobStatus::Succeeded, f.succeeded),
                (JobStatus::Failed, f.failed),
            ]
        });
        [
            (JobStatus::Queued, self.queued),
            (JobStatus::Running, self.running),
        ]
        .into_iter()
        .chain(fin.into_iter().flatten())
    }
}

/// A readable result file.
pub struct ResultFile {
    pub len: u64,
    pub body: ResultBody,
}

/// How a result file is read: a local file can seek (HTTP ranges); an
/// object store streams front to back.
pub enum ResultBody {
    File(tokio::fs::File),
    Stream(Pin<Box<dyn tokio::io::AsyncRead + Send>>),
}

/// What a worker takes from [`JobQueue::next`].
pub enum Taken {
    /// The job is this worker's to run.
    Claim(Box<dyn JobClaim>),
    /// Delivered too often without finishing: recorded as failed without
    /// running it again (the record says why).
    GaveUp(JobRecord),
}

/// Where a claimed job's files are: `dir/input` is the upload; results are
/// written next to it.
#[derive(Debug, Clone)]
pub struct JobDir {
    pub dir: PathBuf,
    /// A scratch copy the worker removes when the job ends (the results
    /// were handed to the queue in `succeed`); otherwise the queue's own
    /// storage, kept.
    pub scratch: bool,
}

/// A queue of uploaded-video jobs.
#[async_trait::async_trait]
pub trait JobQueue: Send + Sync {
    /// Refuses early when the queue is already full, so an upload is not
    /// received for nothing. Room is taken only by [`JobQueue::submit`], once
    /// the upload has arrived whole (clients that trickle bytes cannot hold
    /// the queue).
    async fn check_room(&self) -> Result<(), SubmitError> {
        Ok(())
    }

    /// Queues job `id` with the upload at `input` (a spooled file under
    /// `storage.dir`, moved or copied by the queue; the caller removes what
    /// is left). Returns the `queued` record.
    async fn submit(
        &self,
        id: &str,
        params: JobParams,
        input: &Path,
    ) -> Result<JobRecord, SubmitError>;

    /// The job's record, or `None` for no such job.
    async fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError>;

    /// A result file (`VIDEO_FILE`, `DETECTIONS_FILE`) of a succeeded job,
    /// or `None` when it is gone (expired).
    async fn open_result(
        &self,
        record: &JobRecord,
        name: &str,
    ) -> Result<Option<ResultFile>, JobError>;

    /// Jobs per state.
    async fn counts(&self) -> Result<JobCounts, JobError>;

    /// The next job for `worker` (`host/pid`), waiting at most `wait`;
    /// `None` when there is none (or what arrived needs no run).
    async fn next(&self, worker: &str, wait: Duration) -> Result<Option<Taken>, JobError>;

    /// Deletes finished jobs past retention (where the queue does not expire
    /// them itself); returns how many went.
    async fn sweep(&self) -> usize {
        0
    }

    /// Why the queue cannot be used yet (for `/readyz`), or `None`.
    fn not_ready(&self) -> Option<String> {
        None
    }

    /// Several processes share this queue: finished jobs are counted by the
    /// worker that finishes them, and [`JobCounts::finished`] is `None`.
    fn is_shared(&self) -> bool {
        false
    }

    /// How often a running job reports progress (a shared queue also
    /// renews its lease with each report).
    fn progress_every(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// A job a worker holds. It ends in exactly one of `succeed`, `fail` or
/// `release`; dropping it without one leaves the job to the queue's own
/// recovery (redelivery, or re-queueing at the next start).
#[async_trait::async_trait]
pub trait JobClaim: Send {
    fn record(&self) -> &JobRecord;

    /// Makes the upload available as `dir/input` (downloading it under
    /// `scratch_root` for a shared queue).
    async fn prepare(&mut self, scratch_root: &Path) -> Result<JobDir, JobError>;

    /// Reports progress. `Ok(false)`: another worker has the job now; stop
    /// and drop it.
    async fn progress(&mut self, done: u64, total: Option<u64>) -> Result<bool, JobError>;

    /// The job succeeded after `frames` frames with these result files
    /// (name, path). `Ok(false)`: it was taken over meanwhile and the other
    /// worker's result stands.
    async fn succeed(
        self: Box<Self>,
        frames: u64,
        files: &[(&str, &Path)],
    ) -> Result<bool, JobError>;

    /// The job failed for good (a bad upload: running it again cannot help).
    async fn fail(self: Box<Self>, error: String) -> Result<bool, JobError>;

    /// Gives the job back (this worker is stopping): queued again.
    async fn release(self: Box<Self>) -> Result<(), JobError>;
}

/// Milliseconds since the Unix epoch, for job timestamps (the one clock
/// of every store).
pub use vigil_core::now_ms;
