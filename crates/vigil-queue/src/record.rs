//! A job's status record, as stored in the KV bucket.

use serde::{Deserialize, Serialize};
use vigil_core::JobParams;

/// The contract's job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    /// Finished jobs are never run again, whatever JetStream redelivers.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// Everything an API node needs to answer for a job it did not process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub status: JobStatus,
    pub params: JobParams,
    pub frames_done: u64,
    pub frames_total: Option<u64>,
    pub error: Option<String>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    /// The worker running (or that ran) the job: `host/pid`.
    pub worker: Option<String>,
    /// How many times a worker has claimed this job; results of attempt N
    /// live under `<id>/<N>/`, so a slow loser never overwrites the winner.
    pub attempt: u32,
}

impl JobRecord {
    pub fn queued(id: &str, params: JobParams, now_ms: i64) -> Self {
        Self {
            id: id.to_string(),
            status: JobStatus::Queued,
            params,
            frames_done: 0,
            frames_total: None,
            error: None,
            created_ms: now_ms,
            finished_ms: None,
            worker: None,
            attempt: 0,
        }
    }

    /// The object name of a result file of the winning attempt.
    pub fn result_object(&self, name: &str) -> String {
        result_object(&self.id, self.attempt, name)
    }
}

pub(crate) fn result_object(id: &str, attempt: u32, name: &str) -> String {
    format!("{id}/{attempt}/{name}")
}

pub(crate) fn input_object(id: &str) -> String {
    format!("{id}/input")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_name_their_objects() {
        let mut r = JobRecord::queued("abc", JobParams::default(), 5);
        r.attempt = 2;
        let back: JobRecord = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.result_object("video.mp4"), "abc/2/video.mp4");
        assert_eq!(input_object("abc"), "abc/input");
        assert!(JobStatus::Failed.is_final() && !JobStatus::Running.is_final());
        assert_eq!(
            serde_json::to_string(&JobStatus::Succeeded).unwrap(),
            "\"succeeded\""
        );
    }
}
