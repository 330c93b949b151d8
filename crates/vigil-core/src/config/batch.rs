use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[batch]`: how the shared inference worker groups frames from all streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most frames in one session call. 4 keeps CPU latency low while still
    /// amortising per-call overhead; raise it on a GPU.
    pub max_size: usize,
    /// Longest a frame waits for companions before a partial batch is run.
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_size: 4,
            max_wait_ms: 10,
        }
    }
}

impl BatchConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if self.max_size == 0 || self.max_size > 256 {
            e.push(InvalidValue::new(
                "batch.max_size",
                format!("must be between 1 and 256, got {}", self.max_size),
            ));
        }
        if self.max_wait_ms > 10_000 {
            e.push(InvalidValue::new(
                "batch.max_wait_ms",
                format!("must be at most 10000, got {}", self.max_wait_ms),
            ));
        }
        e
    }
}
