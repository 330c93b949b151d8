//! A job's record and status: the one shape of a job, whatever stores it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vigil_core::JobParams;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = JobStatusDoc))]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Every state, in lifecycle order (the `vigil_jobs{status}` label set).
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
    ];

    /// The contract's spelling (JSON, SQL, metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    /// Finished jobs are never run again, whatever a queue redelivers.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status that is none of the four (a hand-edited database).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// Everything any API node needs to answer for a job, whichever process ran it.
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
    /// The worker running (or that ran) the job: `host/pid` (shared queues
    /// only; a local job runs in the daemon itself).
    pub worker: Option<String>,
    /// How many times a worker has claimed this job; a shared queue keeps
    /// the results of attempt N apart, so a slow loser never overwrites the
    /// winner.
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

    /// 0.0–1.0: frames done / frames total; 1.0 once succeeded.
    pub fn progress(&self) -> f64 {
        match (self.status, self.frames_total) {
            (JobStatus::Succeeded, _) => 1.0,
            (_, Some(t)) if t > 0 => (self.frames_done as f64 / t as f64).min(1.0),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_spelling() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(
            "done".parse::<JobStatus>(),
            Err(UnknownStatus("done".into()))
        );
        assert!(JobStatus::Failed.is_final() && !JobStatus::Running.is_final());
    }

    #[test]
    fn progress_is_bounded_and_complete_on_success() {
        let mut r = JobRecord::queued("a", JobParams::default(), 0);
        assert_eq!(r.progress(), 0.0);
        r.frames_total = Some(4);
        r.frames_done = 1;
        assert_eq!(r.progress(), 0.25);
        r.frames_done = 9;
        assert_eq!(r.progress(), 1.0);
        r.frames_total = None;
        r.status = JobStatus::Succeeded;
        assert_eq!(r.progress(), 1.0);
    }
}
