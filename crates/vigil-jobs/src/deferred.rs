//! A queue connected in the background: a daemon started before its queue
//! server (a reboot, a compose file without ordering) keeps retrying
//! instead of exiting, and says why it is not ready meanwhile.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::{JobCounts, JobError, JobParams, JobQueue, JobRecord, ResultFile, SubmitError, Taken};

/// Answers 503 (`JobError::Unavailable`, naming the server and the last
/// connection error) until [`Deferred::set`] hands it the connected queue;
/// then delegates.
pub struct Deferred {
    /// Shown in `/readyz` and 503 answers: never the credentials.
    label: String,
    queue: OnceLock<Arc<dyn JobQueue>>,
    waiting: Mutex<Option<String>>,
}

impl Deferred {
    /// `label` names the server, e.g. `NATS at nats://host:4222` (masked).
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            queue: OnceLock::new(),
            waiting: Mutex::new(None),
        }
    }

    pub fn set(&self, queue: Arc<dyn JobQueue>) {
        let _ = self.queue.set(queue);
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Records why the last connection attempt failed.
    pub fn failed(&self, error: &str) {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
    }

    fn message(&self) -> String {
        match &*self.waiting.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => format!("waiting for the job queue ({}); retrying: {e}", self.label),
            None => format!("connecting to the job queue ({})", self.label),
        }
    }

    fn queue(&self) -> Result<&Arc<dyn JobQueue>, JobError> {
        self.queue
            .get()
            .ok_or_else(|| JobError::Unavailable(self.message()))
    }
}

#[async_trait::async_trait]
impl JobQueue for Deferred {
    async fn check_room(&self) -> Result<(), SubmitError> {
        self.queue()?.check_room().await
    }

    async fn submit(
        &self,
        id: &str,
        params: JobParams,
        input: &Path,
    ) -> Result<JobRecord, SubmitError> {
        self.queue()?.submit(id, params, input).await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        self.queue()?.get(id).await
    }

    async fn open_result(
        &self,
        record: &JobRecord,
        name: &str,
    ) -> Result<Option<ResultFile>, JobError> {
        self.queue()?.open_result(record, name).await
    }

    async fn counts(&self) -> Result<JobCounts, JobError> {
        self.queue()?.counts().await
    }

    async fn next(&self, worker: &str, wait: Duration) -> Result<Option<Taken>, JobError> {
        self.queue()?.next(worker, wait).await
    }

    async fn sweep(&self) -> usize {
        match self.queue.get() {
            Some(q) => q.sweep().await,
            None => 0,
        }
    }

    fn not_ready(&self) -> Option<String> {
        match self.queue.get() {
            Some(q) => q.not_ready(),
            None => Some(self.message()),
        }
    }

    fn is_shared(&self) -> bool {
        self.queue.get().is_none_or(|q| q.is_shared())
    }

    fn progress_every(&self) -> Duration {
        self.queue
            .get()
            .map_or(Duration::from_secs(1), |q| q.progress_every())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalQueue;

    #[tokio::test]
    async fn answers_unavailable_until_connected_then_delegates() {
        let d = Deferred::new("NATS at nats://q:4222");
        let e = d.get("x").await.unwrap_err();
        assert!(
            matches!(&e, JobError::Unavailable(m) if m == "connecting to the job queue (NATS at nats://q:4222)"),
            "{e}"
        );
        d.failed("connection refused");
        assert_eq!(
            d.not_ready().as_deref(),
            Some("waiting for the job queue (NATS at nats://q:4222); retrying: connection refused")
        );
        assert!(matches!(
            d.check_room().await,
            Err(SubmitError::Queue(JobError::Unavailable(_)))
        ));
        let tmp = tempfile::tempdir().unwrap();
        d.set(Arc::new(LocalQueue::open(tmp.path(), 2, 0).unwrap()));
        assert_eq!(d.not_ready(), None);
        assert!(d.get("x").await.unwrap().is_none());
        assert!(!d.is_shared());
    }
}
