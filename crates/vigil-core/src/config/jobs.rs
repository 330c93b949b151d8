use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// How uploaded-video jobs share the detector with live cameras.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobPriority {
    /// Cameras are latency-bound, jobs are not: live streams get their
    /// configured rate first and jobs take the spare capacity (with a small
    /// guaranteed share, so a job always progresses).
    #[default]
    Background,
    /// Every stream, camera or job, gets one frame per scheduler sweep.
    Fair,
}

/// `[jobs]`: the uploaded-video job queue of `vigil serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs processed at once. All jobs share the one batched detector with
    /// the cameras, so more workers mainly fill batches better.
    pub workers: usize,
    /// Jobs allowed to wait (not yet running); further uploads get 429.
    pub queue_size: usize,
    /// Finished jobs and their results are deleted this many hours after
    /// they finish; 0 keeps them forever.
    pub retention_hours: u64,
    /// Uploads with more frames than this are refused (checked against the
    /// container's count at start and counted while running).
    pub max_frames: u64,
    /// Uploads longer than this many seconds of video are refused.
    pub max_duration_s: u64,
    /// Uploads whose frames have more pixels than this are refused before
    /// any output is written (7680×4320 by default).
    pub max_pixels: u64,
    /// `background` (default): jobs use what the cameras leave; `fair`:
    /// jobs and cameras take turns.
    pub priority: JobPriority,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            queue_size: 16,
            retention_hours: 24,
            max_frames: 1_000_000,
            max_duration_s: 6 * 3600,
            max_pixels: 7680 * 4320,
            priority: JobPriority::Background,
        }
    }
}

impl JobsConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if self.workers == 0 || self.workers > 64 {
            e.push(InvalidValue::new(
                "jobs.workers",
                format!("must be between 1 and 64, got {}", self.workers),
            ));
        }
        if self.queue_size == 0 || self.queue_size > 100_000 {
            e.push(InvalidValue::new(
                "jobs.queue_size",
                format!("must be between 1 and 100000, got {}", self.queue_size),
            ));
        }
        if self.retention_hours > 24 * 365 * 10 {
            e.push(InvalidValue::new(
                "jobs.retention_hours",
                format!(
                    "must be at most 87600 (ten years), got {}",
                    self.retention_hours
                ),
            ));
        }
        for (key, v, hi) in [
            ("jobs.max_frames", self.max_frames, 1u64 << 40),
            (
                "jobs.max_duration_s",
                self.max_duration_s,
                10 * 365 * 86_400,
            ),
            ("jobs.max_pixels", self.max_pixels, 1 << 30),
        ] {
            if v == 0 || v > hi {
                e.push(InvalidValue::new(
                    key,
                    format!("must be between 1 and {hi}, got {v}"),
                ));
            }
        }
        e
    }
}
