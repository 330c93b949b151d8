//! The local back end: job state in SQLite under `storage.dir`, files in
//! `storage.dir/jobs/<id>/`, run by this daemon's own workers. Jobs survive
//! a restart: those that were running are queued again at start-up.
//!
//! One connection behind a mutex: every statement is a single-row update or
//! a small query, far from being a bottleneck next to video decoding, and it
//! keeps SQLite's locking trivially correct. Statements run on tokio's
//! blocking pool, never on the async workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::mpsc;

use crate::{
    now_ms, FinishedCounts, JobClaim, JobCounts, JobDir, JobError, JobParams, JobQueue, JobRecord,
    JobStatus, ResultBody, ResultFile, SubmitError, Taken, INPUT_FILE,
};

/// Progress reports of a running local job: cheap SQLite updates, so often
/// enough that `GET /v1/jobs/{id}` looks live.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

fn db_err(e: rusqlite::Error) -> JobError {
    JobError::Storage(format!("job database: {e}"))
}

fn io_err(what: &Path, e: &std::io::Error) -> JobError {
    JobError::Storage(format!("{}: {e}", what.display()))
}

/// The SQLite side: rows in, records out; statuses are strings only here.
struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    fn open(path: &Path) -> Result<Store, JobError> {
        let fail = |e: rusqlite::Error| JobError::Storage(format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(fail)?;
        // WAL keeps readers (API) from blocking on the writer (workers).
        // synchronous=FULL: a job answered 202 is on disk, even across a
        // power loss (NORMAL survives only a process crash in WAL mode).
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS jobs (
                 id TEXT PRIMARY KEY,
                 status TEXT NOT NULL,
                 params TEXT NOT NULL,
                 frames_done INTEGER NOT NULL DEFAULT 0,
                 frames_total INTEGER,
                 error TEXT,
                 created_ms INTEGER NOT NULL,
                 finished_ms INTEGER
             );
             CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_ms);",
        )
        .map_err(fail)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<usize, JobError> {
        self.conn().execute(sql, p).map_err(db_err)
    }

    fn insert(&self, r: &JobRecord) -> Result<(), JobError> {
        let p = serde_json::to_string(&r.params)
            .map_err(|e| JobError::Storage(format!("job parameters: {e}")))?;
        self.exec(
            "INSERT INTO jobs (id, status, params, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![r.id, r.status.as_str(), p, r.created_ms],
        )
        .map(|_| ())
    }

    /// `queued` → `running`; false when the job is not queued (any more).
    fn start(&self, id: &str) -> Result<bool, JobError> {
        self.exec(
            "UPDATE jobs SET status = ?2, frames_done = 0, frames_total = NULL, error = NULL
             WHERE id = ?1 AND status = ?3",
            params![id, JobStatus::Running.as_str(), JobStatus::Queued.as_str()],
        )
        .map(|n| n == 1)
    }

    fn set_progress(&self, id: &str, done: u64, total: Option<u64>) -> Result<(), JobError> {
        self.exec(
            "UPDATE jobs SET frames_done = ?2, frames_total = ?3 WHERE id = ?1 AND status = ?4",
            params![
                id,
                i64::try_from(done).unwrap_or(i64::MAX),
                total.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                JobStatus::Running.as_str()
            ],
        )
        .map(|_| ())
    }

    /// `running` → final; false when the job was not running.
    fn finish(
        &self,
        id: &str,
        status: JobStatus,
        frames_done: u64,
        frames_total: Option<u64>,
        error: Option<&str>,
    ) -> Result<bool, JobError> {
        self.exec(
            "UPDATE jobs SET status = ?2, frames_done = ?3, frames_total = ?4, error = ?5, finished_ms = ?6
             WHERE id = ?1 AND status = ?7",
            params![
                id,
                status.as_str(),
                i64::try_from(frames_done).unwrap_or(i64::MAX),
                frames_total.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                error,
                now_ms(),
                JobStatus::Running.as_str()
            ],
        )
        .map(|n| n == 1)
    }

    /// Puts a running job back in the queue (interrupted by a shutdown).
    fn requeue(&self, id: &str) -> Result<(), JobError> {
        self.exec(
            "UPDATE jobs SET status = ?2, frames_done = 0 WHERE id = ?1 AND status = ?3",
            params![id, JobStatus::Queued.as_str(), JobStatus::Running.as_str()],
        )
        .map(|_| ())
    }

    /// At start-up: jobs that were running when the daemon died run again;
    /// returns every queued job, oldest first.
    fn recover(&self) -> Result<Vec<String>, JobError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE jobs SET status = ?1, frames_done = 0 WHERE status = ?2",
            params![JobStatus::Queued.as_str(), JobStatus::Running.as_str()],
        )
        .map_err(db_err)?;
        let mut stmt = conn
            .prepare("SELECT id FROM jobs WHERE status = ?1 ORDER BY created_ms, id")
            .map_err(db_err)?;
        let ids = stmt
            .query_map(params![JobStatus::Queued.as_str()], |r| {
                r.get::<_, String>(0)
            })
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(ids)
    }

    fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        let row = self
            .conn()
            .query_row(
                "SELECT id, status, params, frames_done, frames_total, error, created_ms, finished_ms
                 FROM jobs WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                    ))
                },
            )
            .optional()
            .map_err(db_err)?;
        let Some((id, status, params, done, total, error, created_ms, finished_ms)) = row else {
            return Ok(None);
        };
        let status = status
            .parse::<JobStatus>()
            .map_err(|e| JobError::Storage(format!("job {id}: {e}")))?;
        let params = serde_json::from_str(&params)
            .map_err(|e| JobError::Storage(format!("job {id}: stored parameters: {e}")))?;
        Ok(Some(JobRecord {
            status,
            params,
            frames_done: u64::try_from(done).unwrap_or(0),
            frames_total: total.map(|t| u64::try_from(t).unwrap_or(0)),
            error,
            created_ms,
            finished_ms,
            worker: None,
            attempt: 0,
            id,
        }))
    }

    fn counts(&self) -> Result<JobCounts, JobError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        let mut c = JobCounts::default();
        let mut fin = FinishedCounts::default();
        for (status, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            match status.parse::<JobStatus>() {
                Ok(JobStatus::Queued) => c.queued = n,
                Ok(JobStatus::Running) => c.running = n,
                Ok(JobStatus::Succeeded) => fin.succeeded = n,
                Ok(JobStatus::Failed) => fin.failed = n,
                Err(e) => tracing::warn!(error = %e, "job database holds an unknown status"),
            }
        }
        c.finished = Some(fin);
        Ok(c)
    }

    /// Finished jobs that finished before `cutoff_ms`.
    fn expired(&self, cutoff_ms: i64) -> Result<Vec<String>, JobError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id FROM jobs WHERE status IN (?1, ?2) AND finished_ms < ?3")
            .map_err(db_err)?;
        let ids = stmt
            .query_map(
                params![
                    JobStatus::Succeeded.as_str(),
                    JobStatus::Failed.as_str(),
                    cutoff_ms
                ],
                |r| r.get::<_, String>(0),
            )
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(ids)
    }

    fn delete(&self, id: &str) -> Result<(), JobError> {
        self.exec("DELETE FROM jobs WHERE id = ?1", params![id])
            .map(|_| ())
    }
}

/// SQLite + local disk; this daemon's own workers run the jobs.
#[derive(Clone)]
pub struct LocalQueue(Arc<Inner>);

struct Inner {
    store: Store,
    /// `storage.dir/jobs`.
    dir: PathBuf,
    queue_size: usize,
    retention_hours: u64,
    tx: mpsc::UnboundedSender<String>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    /// Jobs queued and not yet taken by a worker. The room check and the
    /// take in `submit` go through this counter, so the queue never holds
    /// more than `queue_size`.
    queued: AtomicUsize,
}

impl LocalQueue {
    /// Opens (or creates) `storage/jobs.sqlite3` and `storage/jobs/`, and
    /// queues again the jobs interrupted by the last shutdown or crash.
    pub fn open(
        storage: &Path,
        queue_size: usize,
        retention_hours: u64,
    ) -> Result<LocalQueue, JobError> {
        let dir = storage.join("jobs");
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, &e))?;
        let store = Store::open(&storage.join("jobs.sqlite3"))?;
        let recovered = store.recover()?;
        if !recovered.is_empty() {
            tracing::info!(jobs = recovered.len(), "re-queued jobs from the last run");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let n = recovered.len();
        for id in recovered {
            // The receiver lives in `Inner` itself: the channel cannot be closed.
            let _ = tx.send(id);
        }
        Ok(LocalQueue(Arc::new(Inner {
            store,
            dir,
            queue_size,
            retention_hours,
            tx,
            rx: tokio::sync::Mutex::new(rx),
            queued: AtomicUsize::new(n),
        })))
    }

    /// `storage.dir/jobs/<id>`: the upload and, once succeeded, the results.
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.0.dir.join(id)
    }

    /// Runs a blocking closure on the queue's inner state off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, JobError> + Send + 'static,
    ) -> Result<T, JobError> {
        let inner = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| JobError::Storage(format!("job database task: {e}")))?
    }

    fn full(&self) -> SubmitError {
        SubmitError::Full(self.0.queued.load(Ordering::SeqCst) as u64)
    }
}

impl Inner {
    /// Takes a queue place, or says the queue is full.
    fn reserve(&self) -> bool {
        let max = self.queue_size;
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q < max).then_some(q + 1)
            })
            .is_ok()
    }
}

#[async_trait::async_trait]
impl JobQueue for LocalQueue {
    async fn check_room(&self) -> Result<(), SubmitError> {
        if self.0.queued.load(Ordering::SeqCst) >= self.0.queue_size {
            return Err(self.full());
        }
        Ok(())
    }

    async fn submit(
        &self,
        id: &str,
        params: JobParams,
        input: &Path,
    ) -> Result<JobRecord, SubmitError> {
        if !self.0.reserve() {
            return Err(self.full());
        }
        let record = JobRecord::queued(id, params, now_ms());
        let (rec, input) = (record.clone(), input.to_path_buf());
        let stored = self
            .blocking(move |inner| {
                let dir = inner.dir.join(&rec.id);
                std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, &e))?;
                let dest = dir.join(INPUT_FILE);
                let stored = vigil_core::fsutil::rename_durable(&input, &dest)
                    .map_err(|e| io_err(&dest, &e))
                    .and_then(|()| inner.store.insert(&rec));
                if stored.is_err() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                stored
            })
            .await;
        match stored {
            Ok(()) => {
                // The receiver lives in `Inner` itself: the channel cannot be closed.
                let _ = self.0.tx.send(record.id.clone());
                Ok(record)
            }
            Err(e) => {
                self.0.queued.fetch_sub(1, Ordering::SeqCst);
                Err(e.into())
            }
        }
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        let id = id.to_string();
        self.blocking(move |inner| inner.store.get(&id)).await
    }

    async fn open_result(
        &self,
        record: &JobRecord,
        name: &str,
    ) -> Result<Option<ResultFile>, JobError> {
        let path = self.job_dir(&record.id).join(name);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, &e)),
        };
        let len = file.metadata().await.map_err(|e| io_err(&path, &e))?.len();
        Ok(Some(ResultFile {
            len,
            body: ResultBody::File(file),
        }))
    }

    async fn counts(&self) -> Result<JobCounts, JobError> {
        self.blocking(|inner| inner.store.counts()).await
    }

    async fn next(&self, _worker: &str, wait: Duration) -> Result<Option<Taken>, JobError> {
        let received = tokio::time::timeout(wait, async {
            let mut rx = self.0.rx.lock().await;
            rx.recv().await
        })
        .await;
        let Ok(Some(id)) = received else {
            return Ok(None);
        };
        self.0.queued.fetch_sub(1, Ordering::SeqCst);
        let started = self
            .blocking(move |inner| {
                if !inner.store.start(&id)? {
                    return Ok(None); // deleted or finished meanwhile
                }
                inner.store.get(&id)
            })
            .await?;
        Ok(started.map(|record| {
            Taken::Claim(Box::new(LocalClaim {
                queue: self.clone(),
                record,
            }))
        }))
    }

    async fn sweep(&self) -> usize {
        if self.0.retention_hours == 0 {
            return 0;
        }
        let hours = i64::try_from(self.0.retention_hours).unwrap_or(i64::MAX / 3_600_000);
        let cutoff = now_ms().saturating_sub(hours.saturating_mul(3_600_000));
        let swept = self
            .blocking(move |inner| {
                let mut n = 0;
                for id in inner.store.expired(cutoff)? {
                    let dir = inner.dir.join(&id);
                    if let Err(e) = std::fs::remove_dir_all(&dir) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!(job = %id, error = %e, "cannot delete job files");
                            continue;
                        }
                    }
                    match inner.store.delete(&id) {
                        Ok(()) => {
                            tracing::info!(job = %id, "job expired and deleted");
                            n += 1;
                        }
                        Err(e) => tracing::warn!(job = %id, error = %e, "cannot delete job"),
                    }
                }
                Ok(n)
            })
            .await;
        swept.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "retention sweep failed");
            0
        })
    }

    fn progress_every(&self) -> Duration {
        PROGRESS_EVERY
    }
}

/// A local job being run by this daemon.
struct LocalClaim {
    queue: LocalQueue,
    record: JobRecord,
}

impl LocalClaim {
    async fn finish(
        self,
        status: JobStatus,
        frames: u64,
        total: Option<u64>,
        error: Option<String>,
    ) -> Result<bool, JobError> {
        let id = self.record.id;
        self.queue
            .blocking(move |inner| {
                inner
                    .store
                    .finish(&id, status, frames, total, error.as_deref())
            })
            .await
    }
}

#[async_trait::async_trait]
impl JobClaim for LocalClaim {
    fn record(&self) -> &JobRecord {
        &self.record
    }

    async fn prepare(&mut self, _scratch_root: &Path) -> Result<JobDir, JobError> {
        Ok(JobDir {
            dir: self.queue.job_dir(&self.record.id),
            scratch: false,
        })
    }

    async fn progress(&mut self, done: u64, total: Option<u64>) -> Result<bool, JobError> {
        let id = self.record.id.clone();
        self.queue
            .blocking(move |inner| inner.store.set_progress(&id, done, total))
            .await?;
        // Only this daemon runs its local jobs: the claim is never lost.
        Ok(true)
    }

    async fn succeed(
        self: Box<Self>,
        frames: u64,
        _files: &[(&str, &Path)],
    ) -> Result<bool, JobError> {
        // The results were written in the job's own directory already.
        self.finish(JobStatus::Succeeded, frames, Some(frames), None)
            .await
    }

    async fn fail(self: Box<Self>, error: String) -> Result<bool, JobError> {
        self.finish(JobStatus::Failed, 0, None, Some(error)).await
    }

    /// Only a shutdown gives a local job back: it runs again at the next start.
    async fn release(self: Box<Self>) -> Result<(), JobError> {
        let id = self.record.id;
        self.queue
            .blocking(move |inner| inner.store.requeue(&id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"video bytes").unwrap();
        p
    }

    async fn claim(q: &LocalQueue) -> Box<dyn JobClaim> {
        match q.next("w", Duration::from_secs(5)).await.unwrap() {
            Some(Taken::Claim(c)) => c,
            _ => panic!("no job"),
        }
    }

    #[tokio::test]
    async fn a_job_runs_once_and_interrupted_jobs_are_recovered() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let q = LocalQueue::open(tmp.path(), 8, 0).unwrap();
            for id in ["a", "b", "c"] {
                let r = q
                    .submit(id, JobParams::default(), &spool(tmp.path(), id))
                    .await
                    .unwrap();
                assert_eq!(r.status, JobStatus::Queued);
            }
            assert!(q.job_dir("a").join(INPUT_FILE).is_file());
            let mut a = claim(&q).await;
            assert_eq!(a.record().id, "a");
            let dir = a.prepare(tmp.path()).await.unwrap();
            assert!(!dir.scratch && dir.dir.join(INPUT_FILE).is_file());
            assert!(a.progress(5, Some(10)).await.unwrap());
            let got = q.get("a").await.unwrap().unwrap();
            assert_eq!(
                (got.status, got.frames_done, got.progress()),
                (JobStatus::Running, 5, 0.5)
            );
            let b = claim(&q).await;
            assert!(b.succeed(3, &[]).await.unwrap());
            let c = claim(&q).await;
            assert!(c.fail("bad".into()).await.unwrap());
            let counts = q.counts().await.unwrap();
            assert_eq!((counts.queued, counts.running), (0, 1));
            assert_eq!(
                counts.finished,
                Some(FinishedCounts {
                    succeeded: 1,
                    failed: 1
                })
            );
            // `a` is left running, as by a crash.
            drop(a);
        }
        let q = LocalQueue::open(tmp.path(), 8, 0).unwrap();
        let a = q.get("a").await.unwrap().unwrap();
        assert_eq!((a.status, a.frames_done), (JobStatus::Queued, 0));
        let b = q.get("b").await.unwrap().unwrap();
        assert_eq!(
            (b.status, b.frames_total, b.progress()),
            (JobStatus::Succeeded, Some(3), 1.0)
        );
        let c = q.get("c").await.unwrap().unwrap();
        assert_eq!(
            (c.status, c.error.as_deref()),
            (JobStatus::Failed, Some("bad"))
        );
        assert_eq!(claim(&q).await.record().id, "a");
        assert!(q.get("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_released_job_is_queued_again() {
        let tmp = tempfile::tempdir().unwrap();
        let q = LocalQueue::open(tmp.path(), 1, 0).unwrap();
        q.check_room().await.unwrap();
        q.submit("a", JobParams::default(), &spool(tmp.path(), "a"))
            .await
            .unwrap();
        assert!(matches!(q.check_room().await, Err(SubmitError::Full(1))));
        let b = spool(tmp.path(), "b");
        assert!(matches!(
            q.submit("b", JobParams::default(), &b).await,
            Err(SubmitError::Full(1))
        ));
        assert!(b.is_file(), "a refused upload is left to the caller");
        let a = claim(&q).await;
        q.check_room().await.unwrap();
        a.release().await.unwrap();
        assert_eq!(q.get("a").await.unwrap().unwrap().status, JobStatus::Queued);
        assert!(q
            .next("w", Duration::from_millis(10))
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_missing_upload_is_a_storage_error_and_frees_its_place() {
        let tmp = tempfile::tempdir().unwrap();
        let q = LocalQueue::open(tmp.path(), 1, 0).unwrap();
        let err = q
            .submit("a", JobParams::default(), &tmp.path().join("gone"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SubmitError::Queue(JobError::Storage(_))),
            "{err}"
        );
        assert!(!q.job_dir("a").exists());
        assert!(q.get("a").await.unwrap().is_none());
        q.check_room().await.unwrap();
    }

    #[tokio::test]
    async fn expired_jobs_are_swept_with_their_files() {
        let tmp = tempfile::tempdir().unwrap();
        let q = LocalQueue::open(tmp.path(), 4, 1).unwrap();
        q.submit("a", JobParams::default(), &spool(tmp.path(), "a"))
            .await
            .unwrap();
        let a = claim(&q).await;
        assert!(a.succeed(1, &[]).await.unwrap());
        assert_eq!(q.sweep().await, 0, "finished just now: kept");
        q.0.store
            .exec("UPDATE jobs SET finished_ms = 0", [])
            .unwrap();
        assert_eq!(q.sweep().await, 1);
        assert!(q.get("a").await.unwrap().is_none());
        assert!(!q.job_dir("a").exists());
    }
}
