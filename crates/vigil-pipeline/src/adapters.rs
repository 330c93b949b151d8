//! Plugs the stage crates into the pipeline's seams: video decoding as a
//! [`FrameSource`], ByteTrack as a [`TrackStage`].

use vigil_core::config::TrackerConfig;
use vigil_core::{Detection, Track};
use vigil_track::ByteTracker;
use vigil_video::VideoSource;

use crate::error::PipelineError;
use crate::types::{FrameSource, SourceFrame, TrackOutput, TrackStage};

/// A file or RTSP stream decoded by OpenCV/FFmpeg.
pub struct VideoFrameSource {
    inner: VideoSource,
}

impl VideoFrameSource {
    pub fn new(inner: VideoSource) -> Self {
        Self { inner }
    }
}

impl FrameSource for VideoFrameSource {
    fn next_frame(&mut self) -> Result<Option<SourceFrame>, PipelineError> {
        match self.inner.read() {
            Ok(Some(f)) => Ok(Some(SourceFrame {
                index: f.index,
                pts: f.pts,
                captured_at: f.captured_at,
                captured: f.captured,
                image: f.image,
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(PipelineError::Source(e.to_string())),
        }
    }

    fn is_live(&self) -> bool {
        self.inner.info().live
    }

    fn fps(&self) -> f64 {
        self.inner.info().fps
    }
}

struct ByteTrackStage(ByteTracker);

impl TrackStage for ByteTrackStage {
    fn update(&mut self, detections: &[Detection], elapsed_frames: u32) -> TrackOutput {
        let out = self.0.update(detections, f64::from(elapsed_frames.max(1)));
        TrackOutput {
            tracks: out.tracks,
            started: out.started,
            ended: out.ended,
        }
    }

    fn predict(&self, frames_ahead: u32) -> Vec<Track> {
        self.0.predicted(f64::from(frames_ahead))
    }
}

/// A fresh ByteTrack instance for one stream (own ids from 1).
pub fn tracker(cfg: &TrackerConfig, fps: f64) -> Result<Box<dyn TrackStage>, PipelineError> {
    ByteTracker::new(cfg.clone(), fps)
        .map(|t| Box::new(ByteTrackStage(t)) as Box<dyn TrackStage>)
        .map_err(|e| PipelineError::Tracker(e.to_string()))
}
