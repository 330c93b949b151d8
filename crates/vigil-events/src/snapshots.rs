//! Event snapshots on disk: one annotated JPEG per event, as
//! `<dir>/<event id>.jpg`, served as `GET /v1/events/{id}/snapshot.jpg` and
//! deleted after `retention`.
//!
//! A frame that produced several events is encoded once: the JPEG is written
//! under the first event's id (to a temporary name, then renamed, so a reader
//! never sees half a file) and hard-linked under the others, so each event
//! owns a name and the sweep needs no index.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where event snapshots live and how long they are kept. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
    retention: Duration,
}

impl SnapshotStore {
    /// Creates `dir` if needed.
    pub fn open(dir: impl Into<PathBuf>, retention: Duration) -> std::io::Result<Self> {
        let s = Self::new(dir, retention);
        std::fs::create_dir_all(&s.dir)?;
        Ok(s)
    }

    /// Like [`SnapshotStore::open`] without touching the disk (for readers).
    pub fn new(dir: impl Into<PathBuf>, retention: Duration) -> Self {
        Self {
            dir: dir.into(),
            retention,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URL path an event's snapshot is served under.
    pub fn url(id: &str) -> String {
        format!("/v1/events/{id}/snapshot.jpg")
    }

    /// The file of event `id`; `None` for anything that is not an event id
    /// (hex digits and dashes only), so a request cannot name another path.
    pub fn path(&self, id: &str) -> Option<PathBuf> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        ok.then(|| self.dir.join(format!("{id}.jpg")))
    }

    /// Stores `jpeg` for every id in `ids` (written once, linked for the rest).
    pub fn save(&self, ids: &[&str], jpeg: &[u8]) -> std::io::Result<()> {
        let Some((first, rest)) = ids.split_first() else {
            return Ok(());
        };
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an event id");
        let main = self.path(first).ok_or_else(bad)?;
        let tmp = self.dir.join(format!(".{first}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(jpeg)?;
        }
        vigil_core::fsutil::rename_durable(&tmp, &main)?;
        for id in rest {
            let p = self.path(id).ok_or_else(bad)?;
            if std::fs::hard_link(&main, &p).is_err() {
                std::fs::copy(&main, &p)?;
            }
        }
        if !rest.is_empty() {
            vigil_core::fsutil::sync_dir_of(&main)?;
        }
        Ok(())
    }

    /// The JPEG of event `id`, or `None` when there is none or it expired
    /// (expired files may linger until the next [`SnapshotStore::sweep`]).
    pub fn load(&self, id: &str, now: SystemTime) -> Option<Vec<u8>> {
        let p = self.path(id)?;
        let meta = std::fs::metadata(&p).ok()?;
        if self.expired(&meta, now) {
            return None;
        }
        std::fs::read(&p).ok()
    }

    fn expired(&self, meta: &std::fs::Metadata, now: SystemTime) -> bool {
        meta.modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > self.retention)
    }

    /// Deletes snapshots older than the retention (and stale temporary
    /// files); returns how many files went.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut n = 0;
        for entry in rd.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file()
                && self.expired(&meta, now)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                n += 1;
            }
        }
        if n > 0 {
            tracing::info!(dir = %self.dir.display(), deleted = n, "expired event snapshots deleted");
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_link_and_sweep() {
        let d = tempfile::tempdir().unwrap();
        let s = SnapshotStore::open(d.path().join("snaps"), Duration::from_secs(3600)).unwrap();
        let a = "0f6f1c9e-1111-4a2b-8c3d-000000000001";
        let b = "0f6f1c9e-1111-4a2b-8c3d-000000000002";
        s.save(&[a, b], b"\xff\xd8jpeg").unwrap();
        let now = SystemTime::now();
        assert_eq!(s.load(a, now).unwrap(), b"\xff\xd8jpeg");
        assert_eq!(s.load(b, now).unwrap(), b"\xff\xd8jpeg");
        assert!(s.load("ffff", now).is_none());
        assert!(s.load("../../etc/passwd", now).is_none());
        assert!(s.path("a/b").is_none());
        assert_eq!(s.sweep(now), 0);
        let later = now + Duration::from_secs(7200);
        assert!(s.load(a, later).is_none());
        assert_eq!(s.sweep(later), 2);
        assert!(s.load(a, now).is_none());
        assert_eq!(
            SnapshotStore::url(a),
            format!("/v1/events/{a}/snapshot.jpg")
        );
    }
}
