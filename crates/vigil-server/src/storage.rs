//! The free-space floor for what the daemon writes on its own.
//!
//! Below `storage.min_free_mb` under `storage.dir`, uploads get 507 (see
//! `api::limits`) and event snapshots pause (they are the bulk of what
//! streams write); event records keep going to the outbox (a few hundred
//! bytes each, and the durable record of what happened). Crossing the floor
//! raises a `storage.low` event, delivered like any other, sets
//! `vigil_storage_low` to 1 and logs a warning; coming back above it with a
//! margin (10 % of the floor, at least 16 MiB, so a disk hovering at the
//! floor does not flap) raises `storage.ok` and clears the gauge.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use vigil_core::EventType;
use vigil_events::Event;

/// The `stream` of daemon-level events (documented as reserved: a camera
/// named so would share its MQTT topic and NATS subject).
pub const SYSTEM_STREAM: &str = "_system";

const MIB: u64 = 1024 * 1024;

/// A change of the free-space state, with the reading that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Low { free: u64 },
    Ok { free: u64 },
}

/// Watches free space under `storage.dir` against the floor.
#[derive(Debug)]
pub struct StorageWatch {
    dir: PathBuf,
    floor: u64,
    low: AtomicBool,
}

impl StorageWatch {
    pub fn new(dir: PathBuf, min_free_mb: u64) -> Self {
        Self {
            dir,
            floor: min_free_mb.saturating_mul(MIB),
            low: AtomicBool::new(false),
        }
    }

    /// Whether writes that can wait (snapshots) should pause now.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    /// Free bytes above which a low state clears.
    fn recover_at(&self) -> u64 {
        self.floor.saturating_add((self.floor / 10).max(16 * MIB))
    }

    /// Feeds one reading of free bytes; returns the change it caused.
    pub fn observe(&self, free: u64) -> Option<Change> {
        let low = self.is_low();
        if !low && free < self.floor {
            self.low.store(true, Ordering::Relaxed);
            Some(Change::Low { free })
        } else if low && free >= self.recover_at() {
            self.low.store(false, Ordering::Relaxed);
            Some(Change::Ok { free })
        } else {
            None
        }
    }

    /// Reads the file system and feeds the reading (`None` when it cannot
    /// be read: the state is kept rather than guessed).
    pub fn check(&self) -> Option<Change> {
        let free = crate::api::limits::free_bytes(&self.dir)?;
        self.observe(free)
    }

    /// The change as a contract event: `free_mb` and `min_free_mb` at the
    /// top level (never the server's path).
    pub fn event(&self, change: Change) -> Event {
        let (kind, free) = match change {
            Change::Low { free } => (EventType::StorageLow, free),
            Change::Ok { free } => (EventType::StorageOk, free),
        };
        let mut extra = serde_json::Map::new();
        extra.insert("free_mb".into(), (free / MIB).into());
        extra.insert("min_free_mb".into(), (self.floor / MIB).into());
        Event::stream_level(kind, SYSTEM_STREAM, SystemTime::now(), 0.0, extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_below_the_floor_ok_only_past_the_margin() {
        let w = StorageWatch::new(PathBuf::from("/nonexistent"), 100);
        assert_eq!(w.observe(200 * MIB), None);
        assert_eq!(w.observe(99 * MIB), Some(Change::Low { free: 99 * MIB }));
        assert!(w.is_low());
        assert_eq!(w.observe(50 * MIB), None, "one event per crossing");
        // Back at the floor is not enough: 100 MiB + max(10 %, 16 MiB).
        assert_eq!(w.observe(110 * MIB), None);
        assert!(w.is_low());
        assert_eq!(w.observe(116 * MIB), Some(Change::Ok { free: 116 * MIB }));
        assert!(!w.is_low());
        let e = w.event(Change::Low { free: 5 * MIB + 7 });
        assert_eq!(e.kind, EventType::StorageLow);
        assert_eq!(e.stream.0, SYSTEM_STREAM);
        assert_eq!(e.extra["free_mb"], 5);
        assert_eq!(e.extra["min_free_mb"], 100);
        // An unreadable file system changes nothing.
        assert_eq!(w.check(), None);
    }
}
