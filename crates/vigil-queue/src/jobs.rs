//! [`NatsQueue`] as a [`vigil_jobs::JobQueue`]: what the HTTP handlers and
//! the one worker loop see of the shared queue.

use std::path::Path;
use std::time::Duration;

use vigil_jobs::{
    JobClaim, JobCounts, JobDir, JobError, JobParams, JobQueue, JobRecord, ResultBody, ResultFile,
    SubmitError, Taken, INPUT_FILE,
};

use crate::{Claim, ClaimOutcome, NatsQueue, QueueError};

/// A NATS failure is the queue being unavailable (→ 503), whatever the call.
impl From<QueueError> for JobError {
    fn from(e: QueueError) -> Self {
        JobError::Unavailable(format!("the job queue is unavailable: {e}"))
    }
}

impl From<QueueError> for SubmitError {
    fn from(e: QueueError) -> Self {
        SubmitError::Queue(e.into())
    }
}

#[async_trait::async_trait]
impl JobQueue for NatsQueue {
    async fn submit(
        &self,
        id: &str,
        params: JobParams,
        input: &Path,
    ) -> Result<JobRecord, SubmitError> {
        NatsQueue::submit(self, id, params, input).await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        Ok(NatsQueue::get(self, id).await?)
    }

    async fn open_result(
        &self,
        record: &JobRecord,
        name: &str,
    ) -> Result<Option<ResultFile>, JobError> {
        Ok(NatsQueue::open_result(self, record, name)
            .await?
            .map(|(object, len)| ResultFile {
                len,
                body: ResultBody::Stream(Box::pin(object)),
            }))
    }

    async fn counts(&self) -> Result<JobCounts, JobError> {
        let c = NatsQueue::counts(self).await?;
        Ok(JobCounts {
            queued: c.waiting,
            running: c.in_progress,
            finished: None,
        })
    }

    async fn next(&self, worker: &str, wait: Duration) -> Result<Option<Taken>, JobError> {
        let Some(d) = NatsQueue::next(self, wait).await? else {
            return Ok(None);
        };
        let span = tracing::info_span!("job", job = %d.id, delivery = d.delivered);
        let _g = span.enter();
        match self.claim(d, worker).await {
            Ok(ClaimOutcome::Run(claim)) => Ok(Some(Taken::Claim(Box::new(NatsClaim(*claim))))),
            Ok(ClaimOutcome::GaveUp(r)) => Ok(Some(Taken::GaveUp(r))),
            Ok(ClaimOutcome::AlreadyFinished(r)) => {
                tracing::info!(
                    status = r.status.as_str(),
                    "redelivered job was already finished"
                );
                Ok(None)
            }
            Ok(ClaimOutcome::Missing) => {
                tracing::warn!("job has no record (expired?); dropped");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim job; it will be redelivered");
                Ok(None)
            }
        }
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// A claim on the shared queue; see [`Claim`] for why it completes at most once.
struct NatsClaim(Claim);

#[async_trait::async_trait]
impl JobClaim for NatsClaim {
    fn record(&self) -> &JobRecord {
        self.0.record()
    }

    /// Per attempt: a superseded worker still finishing must not write into
    /// the files of the worker that took the job over.
    async fn prepare(&mut self, scratch_root: &Path) -> Result<JobDir, JobError> {
        let rec = self.0.record();
        let dir = scratch_root.join(format!("{}-{}", rec.id, rec.attempt));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| JobError::Storage(format!("{}: {e}", dir.display())))?;
        self.0.download_input(&dir.join(INPUT_FILE)).await?;
        Ok(JobDir { dir, scratch: true })
    }

    async fn progress(&mut self, done: u64, total: Option<u64>) -> Result<bool, JobError> {
        Ok(self.0.progress(done, total).await?)
    }

    async fn succeed(
        self: Box<Self>,
        frames: u64,
        files: &[(&str, &Path)],
    ) -> Result<bool, JobError> {
        Ok(self.0.succeed(frames, files).await?)
    }

    async fn fail(self: Box<Self>, error: String) -> Result<bool, JobError> {
        Ok(self.0.fail(error).await?)
    }

    async fn release(self: Box<Self>) -> Result<(), JobError> {
        Ok(self.0.release().await?)
    }
}
