//! Job state in SQLite under `storage.dir`, so jobs survive a restart.
//!
//! One connection behind a mutex: every statement is a single-row update or
//! a small query, far from being a bottleneck next to video decoding, and it
//! keeps SQLite's locking trivially correct.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

pub use vigil_core::JobParams;

/// A job's stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub status: String,
    pub params: JobParams,
    pub frames_done: u64,
    pub frames_total: Option<u64>,
    pub error: Option<String>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
}

pub struct Store {
    conn: Mutex<Connection>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

type Result<T> = std::result::Result<T, String>;

fn db_err(e: rusqlite::Error) -> String {
    format!("job database: {e}")
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
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
        .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, id: &str, params: &JobParams) -> Result<()> {
        let p = serde_json::to_string(params).map_err(|e| e.to_string())?;
        self.conn()
            .execute(
                "INSERT INTO jobs (id, status, params, created_ms) VALUES (?1, 'queued', ?2, ?3)",
                params![id, p, now_ms()],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    pub fn set_running(&self, id: &str, frames_total: Option<u64>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE jobs SET status = 'running', frames_done = 0, frames_total = ?2, error = NULL WHERE id = ?1",
                params![id, frames_total.map(|t| t as i64)],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    pub fn set_progress(&self, id: &str, frames_done: u64) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE jobs SET frames_done = ?2 WHERE id = ?1 AND status = 'running'",
                params![id, frames_done as i64],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    pub fn finish(
        &self,
        id: &str,
        ok: bool,
        frames_done: u64,
        frames_total: Option<u64>,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE jobs SET status = ?2, frames_done = ?3, frames_total = ?4, error = ?5, finished_ms = ?6 WHERE id = ?1",
                params![
                    id,
                    if ok { "succeeded" } else { "failed" },
                    frames_done as i64,
                    frames_total.map(|t| t as i64),
                    error,
                    now_ms()
                ],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// Puts a job back in the queue (interrupted by a shutdown).
    pub fn requeue(&self, id: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE jobs SET status = 'queued', frames_done = 0 WHERE id = ?1",
                params![id],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// At start-up: jobs that were running when the daemon died run again;
    /// returns every queued job, oldest first.
    pub fn recover(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        conn.execute(
            "UPDATE jobs SET status = 'queued', frames_done = 0 WHERE status = 'running'",
            [],
        )
        .map_err(db_err)?;
        let mut stmt = conn
            .prepare("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_ms, id")
            .map_err(db_err)?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(ids)
    }

    pub fn get(&self, id: &str) -> Result<Option<JobRow>> {
        self.conn()
            .query_row(
                "SELECT id, status, params, frames_done, frames_total, error, created_ms, finished_ms FROM jobs WHERE id = ?1",
                params![id],
                |r| {
                    let params: String = r.get(2)?;
                    Ok(JobRow {
                        id: r.get(0)?,
                        status: r.get(1)?,
                        params: serde_json::from_str(&params).unwrap_or_default(),
                        frames_done: r.get::<_, i64>(3)?.max(0) as u64,
                        frames_total: r.get::<_, Option<i64>>(4)?.map(|t| t.max(0) as u64),
                        error: r.get(5)?,
                        created_ms: r.get(6)?,
                        finished_ms: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(db_err)
    }

    /// Jobs per status, for the `vigil_jobs` gauge.
    pub fn counts(&self) -> Result<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(rows)
    }

    /// Finished jobs that finished before `cutoff_ms`.
    pub fn expired(&self, cutoff_ms: i64) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id FROM jobs WHERE status IN ('succeeded', 'failed') AND finished_ms < ?1",
            )
            .map_err(db_err)?;
        let ids = stmt
            .query_map(params![cutoff_ms], |r| r.get::<_, String>(0))
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(ids)
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM jobs WHERE id = ?1", params![id])
            .map(|_| ())
            .map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_jobs_are_requeued_on_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sqlite3");
        {
            let s = Store::open(&path).unwrap();
            s.insert("a", &JobParams::default()).unwrap();
            s.insert("b", &JobParams::default()).unwrap();
            s.insert("c", &JobParams::default()).unwrap();
            s.set_running("a", Some(10)).unwrap();
            s.set_progress("a", 5).unwrap();
            s.set_running("c", None).unwrap();
            s.finish("c", true, 3, Some(3), None).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.recover().unwrap(), ["a", "b"]);
        let a = s.get("a").unwrap().unwrap();
        assert_eq!((a.status.as_str(), a.frames_done), ("queued", 0));
        assert_eq!(s.get("c").unwrap().unwrap().status, "succeeded");
        assert_eq!(s.expired(now_ms() + 1).unwrap(), ["c"]);
        s.delete("c").unwrap();
        assert!(s.get("c").unwrap().is_none());
        assert!(s.get("nope").unwrap().is_none());
    }
}
