//! The sink at the end of a camera stream: metrics, events into the durable
//! outbox, and the latest processed frame for `snapshot.jpg`.

use std::sync::{Arc, Mutex};

use vigil_core::{Detection, ImageBgr};
use vigil_events::{EventGenerator, FrameMeta, Outbox};
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
    events: EventGenerator,
    outbox: Outbox,
}

impl StreamSink {
    pub fn new(
        id: &str,
        metrics: Arc<Metrics>,
        status: Arc<StreamStatus>,
        latest: Latest,
        events: EventGenerator,
        outbox: Outbox,
    ) -> Self {
        Self {
            id: id.to_string(),
            metrics,
            status,
            latest,
            events,
            outbox,
        }
    }

    /// Turns a processed frame's confirmed tracks into events and commits them
    /// to the outbox before anything is sent. A failed write is logged and the
    /// stream goes on: losing the camera would be worse than losing events.
    fn emit(&mut self, r: &FrameResult) {
        let meta = FrameMeta {
            width: r.frame.image.width(),
            height: r.frame.image.height(),
            pts_ms: r.frame.pts.0,
            at: r.frame.captured_at,
        };
        let events = self
            .events
            .on_objects(&meta, &r.objects, &r.started_tracks, &r.ended_tracks);
        if events.is_empty() {
            return;
        }
        match self.outbox.append(&events) {
            Ok(()) => {
                for e in &events {
                    self.metrics
                        .events_total
                        .with_label_values(&[e.kind.as_str()])
                        .inc();
                }
            }
            Err(e) => {
                tracing::error!(stream = %self.id, error = %e, lost = events.len(), "cannot write events to the outbox");
            }
        }
    }
}

impl FrameSink for StreamSink {
    fn on_frame(&mut self, r: FrameResult) -> Result<(), String> {
        self.metrics.observe_frame(Some(&self.id), &r);
        if r.processed {
            self.emit(&r);
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
