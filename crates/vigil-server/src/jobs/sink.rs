//! The sink that turns a job's frames into its result files.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vigil_pipeline::{FileOutputs, FrameResult, FrameSink, PartialFile, StreamSummary};
use vigil_video::VideoWriter;

use crate::metrics::Metrics;

pub struct JobSink {
    outputs: FileOutputs,
    done: Arc<AtomicU64>,
    /// A per-job threshold above `model.conf` (the detector's own cut).
    conf: Option<f32>,
    metrics: Arc<Metrics>,
}

impl JobSink {
    pub fn new(
        writer: VideoWriter,
        jsonl: PartialFile,
        done: Arc<AtomicU64>,
        conf: Option<f32>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            outputs: FileOutputs::new(Some(writer), Some(jsonl)),
            done,
            conf,
            metrics,
        }
    }
}

impl FrameSink for JobSink {
    fn on_frame(&mut self, mut r: FrameResult) -> Result<(), vigil_pipeline::PipelineError> {
        self.metrics.observe_frame(None, &r);
        if let Some(c) = self.conf {
            r.objects.retain(|d| d.score >= c);
        }
        self.outputs.write(&r)?;
        self.done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn finish(&mut self, summary: &StreamSummary) -> Result<(), vigil_pipeline::PipelineError> {
        // A failed or interrupted job leaves no result files: the partial
        // outputs are dropped, which deletes them.
        self.outputs
            .finish(summary.error.is_none() && !summary.stopped)
    }
}
