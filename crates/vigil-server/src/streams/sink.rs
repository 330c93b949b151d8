//! The sink at the end of a camera stream: metrics, and the latest
//! processed frame for `snapshot.jpg`.

use std::sync::{Arc, Mutex};

use vigil_core::{Detection, ImageBgr};
use vigil_pipeline::{FrameResult, FrameSink, StreamSummary};

use super::status::{StreamState, StreamStatus};
use crate::metrics::Metrics;

/// The newest processed frame and what was found in it. Drawing and JPEG
/// encoding happen only when a snapshot is requested, not for every frame.
pub type Latest = Arc<Mutex<Option<(Arc<ImageBgr>, Vec<Detection>)>>>;

pub struct StreamSink {
    id: String,
    metrics: Arc<Metrics>,
    status: Arc<StreamStatus>,
    latest: Latest,
}

impl StreamSink {
    pub fn new(id: &str, metrics: Arc<Metrics>, status: Arc<StreamStatus>, latest: Latest) -> Self {
        Self {
            id: id.to_string(),
            metrics,
            status,
            latest,
        }
    }
}

impl FrameSink for StreamSink {
    fn on_frame(&mut self, r: FrameResult) -> Result<(), String> {
        self.metrics.observe_frame(Some(&self.id), &r);
        if r.processed {
            let mut slot = self.latest.lock().unwrap_or_else(|p| p.into_inner());
            *slot = Some((Arc::clone(&r.frame.image), r.objects));
        }
        Ok(())
    }

    fn finish(&mut self, summary: &StreamSummary) -> Result<(), String> {
        match &summary.error {
            Some(e) => self.status.set_state(StreamState::Failed, Some(e)),
            None if self.status.state() != StreamState::Failed => {
                self.status.set_state(StreamState::Stopped, None);
            }
            None => {}
        }
        Ok(())
    }
}
