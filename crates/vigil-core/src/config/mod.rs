//! Configuration structs, one file per TOML section.
//!
//! Every section denies unknown keys so a typo is an error naming the key, not
//! a silently ignored setting.

mod batch;
mod load;
mod model;
mod tracker;

pub use batch::BatchConfig;
pub use load::ConfigError;
pub use model::{Device, ModelConfig};
pub use tracker::TrackerConfig;

use serde::{Deserialize, Serialize};

/// The whole `vigil.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub model: ModelConfig,
    pub batch: BatchConfig,
    pub tracker: TrackerConfig,
}

/// A config value that parsed but makes no sense; names the key and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidValue {
    pub key: String,
    pub reason: String,
}

impl InvalidValue {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl Config {
    /// Checks every section and returns all problems at once, so a user fixes a
    /// config in one round rather than one error per run.
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut errs = Vec::new();
        errs.extend(self.model.validate());
        errs.extend(self.batch.validate());
        errs.extend(self.tracker.validate());
        errs
    }
}
