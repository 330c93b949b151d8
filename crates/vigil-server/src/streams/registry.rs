//! The durable set of streams: a `streams` table in the daemon's SQLite
//! database (`storage.dir/jobs.sqlite3`, WAL, shared with the job queue).
//!
//! Every add, edit and delete is committed here before the API answers, so
//! a restart — `kill -9` included — loses nothing the API confirmed.
//!
//! # Config file and API naming the same stream
//!
//! Each row remembers the `[[streams]]` entry it was last seeded from
//! (`seed`). At start-up the newest intent wins: a config entry that is new
//! or changed since the last start replaces the stored stream (API edits to
//! it included); an unchanged one leaves the stored stream — with every API
//! edit, or deleted — as it is. A config stream deleted through the API
//! stays deleted (a tombstone row) until its entry in the file changes or a
//! `POST` adds the id again. Config rows whose entry left the file are
//! dropped.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::config::StreamConfig;

/// Where a stream came from (`"source"` in `GET /v1/streams/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A `[[streams]]` entry of the config file (possibly edited since).
    Config,
    /// Added with `POST /v1/streams`.
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }

    fn parse(s: &str) -> Origin {
        if s == "config" {
            Origin::Config
        } else {
            Origin::Api
        }
    }
}

/// A stream as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub cfg: StreamConfig,
    pub origin: Origin,
    /// Bumped by every write; the stream's `ETag`.
    pub revision: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("stream registry: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("stream registry: stored stream {id:?} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("stream registry: {0}")]
    Encode(#[from] serde_json::Error),
}

pub struct Registry {
    conn: Mutex<Connection>,
}

struct Row {
    id: String,
    origin: Origin,
    config: String,
    seed: Option<String>,
    revision: u64,
    deleted: bool,
}

impl Registry {
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        let conn = Connection::open(path)?;
        // The job store writes to the same file from its own connection;
        // wait for its (tiny) transactions instead of failing with BUSY.
        conn.busy_timeout(Duration::from_secs(5))?;
        // FULL: an edit the API confirmed survives a power cut too; stream
        // edits are rare, so the extra fsync costs nothing.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS streams (
                 id TEXT PRIMARY KEY,
                 source TEXT NOT NULL,
                 config TEXT NOT NULL,
                 seed TEXT,
                 revision INTEGER NOT NULL,
                 deleted INTEGER NOT NULL DEFAULT 0,
                 updated_ms INTEGER NOT NULL
             );",
        )?;
        Ok(Registry {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Merges the config file's streams into the registry (see the module
    /// docs for who wins) and returns every stream to run, in id order.
    pub fn reconcile(&self, config: &[StreamConfig]) -> Result<Vec<Stored>, RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for c in config {
            let seed = serde_json::to_string(c)?;
            match row(&tx, &c.id)? {
                Some(r) if seeded_from(&r, c) => {
                    if r.deleted {
                        tracing::info!(stream = %c.id, "config stream was deleted through the API; it stays deleted until its entry in the file changes");
                    }
                }
                old => {
                    if let Some(r) = old.filter(|r| !r.deleted && r.config != seed) {
                        tracing::warn!(stream = %r.id, "the config file's entry is new or changed since the last start; it replaces the stored stream and its API edits");
                    }
                    let rev = next_revision(&tx)?;
                    tx.execute(
                        "INSERT INTO streams (id, source, config, seed, revision, deleted, updated_ms)
                         VALUES (?1, 'config', ?2, ?2, ?3, 0, ?4)
                         ON CONFLICT(id) DO UPDATE SET source = 'config', config = ?2, seed = ?2,
                             revision = ?3, deleted = 0, updated_ms = ?4",
                        params![c.id, seed, rev as i64, now_ms()],
                    )?;
                }
            }
        }
        // Seeded rows whose entry left the file go with it; the registry
        // cannot tell an API edit of a removed config stream from a stale one.
        let ids: Vec<&str> = config.iter().map(|c| c.id.as_str()).collect();
        let seeded: Vec<String> = {
            let mut st = tx.prepare("SELECT id FROM streams WHERE seed IS NOT NULL")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for id in seeded.iter().filter(|id| !ids.contains(&id.as_str())) {
            tracing::info!(stream = %id, "config stream no longer in the config file; removed from the registry");
            tx.execute("DELETE FROM streams WHERE id = ?1", params![id])?;
        }
        let out = live_rows(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Stores a stream added through the API (over a tombstone, if the id
    /// was a deleted config stream); returns its revision.
    pub fn insert_api(&self, cfg: &StreamConfig) -> Result<u64, RegistryError> {
        let json = serde_json::to_string(cfg)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let rev = next_revision(&tx)?;
        tx.execute(
            "INSERT INTO streams (id, source, config, seed, revision, deleted, updated_ms)
             VALUES (?1, 'api', ?2, NULL, ?3, 0, ?4)
             ON CONFLICT(id) DO UPDATE SET source = 'api', config = ?2, revision = ?3,
                 deleted = 0, updated_ms = ?4",
            params![cfg.id, json, rev as i64, now_ms()],
        )?;
        tx.commit()?;
        Ok(rev)
    }

    /// Stores an edited stream; returns its new revision.
    pub fn update(&self, cfg: &StreamConfig) -> Result<u64, RegistryError> {
        let json = serde_json::to_string(cfg)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let rev = next_revision(&tx)?;
        let n = tx.execute(
            "UPDATE streams SET config = ?2, revision = ?3, updated_ms = ?4
             WHERE id = ?1 AND deleted = 0",
            params![cfg.id, json, rev as i64, now_ms()],
        )?;
        if n == 0 {
            // Not stored (e.g. a registry replaced under a running daemon):
            // store it now rather than lose the edit.
            tx.execute(
                "INSERT OR REPLACE INTO streams (id, source, config, seed, revision, deleted, updated_ms)
                 VALUES (?1, 'api', ?2, NULL, ?3, 0, ?4)",
                params![cfg.id, json, rev as i64, now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(rev)
    }

    /// Deletes a stream for good: a stream seeded from the config file
    /// leaves a tombstone so the next start does not bring it back.
    pub fn delete(&self, id: &str) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let rev = next_revision(&tx)?;
        tx.execute(
            "UPDATE streams SET deleted = 1, revision = ?2, updated_ms = ?3
             WHERE id = ?1 AND seed IS NOT NULL",
            params![id, rev as i64, now_ms()],
        )?;
        tx.execute(
            "DELETE FROM streams WHERE id = ?1 AND seed IS NULL",
            params![id],
        )?;
        tx.commit()?;
        Ok(())
    }
}

fn parse_cfg(json: &str) -> Result<StreamConfig, serde_json::Error> {
    serde_json::from_str(json)
}

fn row(tx: &Transaction<'_>, id: &str) -> Result<Option<Row>, RegistryError> {
    Ok(tx
        .query_row(
            "SELECT id, source, config, seed, revision, deleted FROM streams WHERE id = ?1",
            params![id],
            read_row,
        )
        .optional()?)
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        origin: Origin::parse(&r.get::<_, String>(1)?),
        config: r.get(2)?,
        seed: r.get(3)?,
        revision: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        deleted: r.get::<_, i64>(5)? != 0,
    })
}

fn live_rows(tx: &Transaction<'_>) -> Result<Vec<Stored>, RegistryError> {
    let mut st = tx.prepare(
        "SELECT id, source, config, seed, revision, deleted FROM streams
         WHERE deleted = 0 ORDER BY id",
    )?;
    let rows: Vec<Row> = st.query_map([], read_row)?.collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|r| {
            let cfg = parse_cfg(&r.config).map_err(|e| RegistryError::Corrupt {
                id: r.id.clone(),
                reason: e.to_string(),
            })?;
            Ok(Stored {
                cfg,
                origin: r.origin,
                revision: r.revision,
            })
        })
        .collect()
}

/// One counter for all rows, so an id deleted and added again never
/// reuses an `ETag`.
fn next_revision(tx: &Transaction<'_>) -> Result<u64, RegistryError> {
    let max: i64 = tx.query_row("SELECT COALESCE(MAX(revision), 0) FROM streams", [], |r| {
        r.get(0)
    })?;
    Ok(u64::try_from(max).unwrap_or(0) + 1)
}

use vigil_core::now_ms;

/// Whether the row was last seeded from exactly this config entry.
fn seeded_from(r: &Row, c: &StreamConfig) -> bool {
    r.seed
        .as_deref()
        .and_then(|s| parse_cfg(s).ok())
        .is_some_and(|seed| seed == *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: &str, url: &str) -> StreamConfig {
        StreamConfig {
            id: id.into(),
            url: url.into(),
            ..StreamConfig::default()
        }
    }

    fn ids(v: &[Stored]) -> Vec<(&str, Origin, &str)> {
        v.iter()
            .map(|s| (s.cfg.id.as_str(), s.origin, s.cfg.url.as_str()))
            .collect()
    }

    #[test]
    fn config_seeds_api_edits_persist_and_deletes_stick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sqlite3");
        let file = vec![cfg("a", "a.mp4"), cfg("b", "b.mp4")];
        {
            let r = Registry::open(&path).unwrap();
            let run = r.reconcile(&file).unwrap();
            assert_eq!(
                ids(&run),
                [
                    ("a", Origin::Config, "a.mp4"),
                    ("b", Origin::Config, "b.mp4")
                ]
            );
            r.insert_api(&cfg("c", "rtsp://h/c")).unwrap();
            let mut edited = cfg("a", "a.mp4");
            edited.every = Some(3);
            let r1 = r.update(&edited).unwrap();
            assert!(r1 > run[0].revision);
            r.delete("b").unwrap();
        }
        // Restart with the same file: the edit, the API stream and the
        // delete all survive.
        let r = Registry::open(&path).unwrap();
        let run = r.reconcile(&file).unwrap();
        assert_eq!(
            ids(&run),
            [
                ("a", Origin::Config, "a.mp4"),
                ("c", Origin::Api, "rtsp://h/c")
            ]
        );
        assert_eq!(run[0].cfg.every, Some(3));
        // The file changes entry a and b, and drops nothing else: the file
        // wins for both (b comes back).
        let file2 = vec![cfg("a", "a2.mp4"), cfg("b", "b2.mp4")];
        let run = r.reconcile(&file2).unwrap();
        assert_eq!(
            ids(&run),
            [
                ("a", Origin::Config, "a2.mp4"),
                ("b", Origin::Config, "b2.mp4"),
                ("c", Origin::Api, "rtsp://h/c")
            ]
        );
        assert_eq!(run[0].cfg.every, None);
        // An entry that leaves the file leaves the registry; API streams stay.
        let run = r.reconcile(&file2[..1]).unwrap();
        assert_eq!(ids(&run).len(), 2);
        // Deleting an API stream removes the row.
        r.delete("c").unwrap();
        assert_eq!(ids(&r.reconcile(&file2[..1]).unwrap()).len(), 1);
    }

    #[test]
    fn a_post_over_a_deleted_config_stream_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sqlite3");
        let file = vec![cfg("a", "a.mp4")];
        let r = Registry::open(&path).unwrap();
        r.reconcile(&file).unwrap();
        r.delete("a").unwrap();
        assert!(r.reconcile(&file).unwrap().is_empty());
        r.insert_api(&cfg("a", "rtsp://h/a")).unwrap();
        let run = r.reconcile(&file).unwrap();
        assert_eq!(ids(&run), [("a", Origin::Api, "rtsp://h/a")]);
        r.delete("a").unwrap();
        assert!(r.reconcile(&file).unwrap().is_empty());
    }
}
