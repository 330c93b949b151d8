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
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("var/vigil"),
        }
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if self.dir.as_os_str().is_empty() {
            e.push(InvalidValue::new("storage.dir", "must not be empty"));
        }
        e
    }
}
