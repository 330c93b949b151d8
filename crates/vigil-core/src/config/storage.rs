use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[storage]`: where the daemon keeps durable state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Job database, uploads, results and the event outbox live here;
    /// relative paths are relative to the working directory.
    pub dir: PathBuf,
    /// Free space (MiB) kept on the file system of `dir`: below it uploads
    /// get 507 and event clips/snapshots pause (events themselves are still
    /// recorded), so a full disk never loses an event record silently.
    pub min_free_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("var/vigil"),
            min_free_mb: 256,
        }
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if self.dir.as_os_str().is_empty() {
            e.push(InvalidValue::new("storage.dir", "must not be empty"));
        }
        if self.min_free_mb > 1 << 30 {
            e.push(InvalidValue::new(
                "storage.min_free_mb",
                format!("must be at most 1073741824, got {}", self.min_free_mb),
            ));
        }
        e
    }
}
