//! The values that flow in and out of the pipeline, and the two seams where
//! other crates plug in: [`FrameSource`] (decoders) and [`FrameSink`]
//! (annotated video, JSON lines, events, snapshots).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use vigil_core::{Detection, Frame, FrameIndex, ImageBgr, PtsMs, Track, TrackId};

use crate::error::PipelineError;

/// A decoded frame as a source hands it over.
#[derive(Debug)]
pub struct SourceFrame {
    pub index: FrameIndex,
    pub pts: PtsMs,
    pub captured_at: SystemTime,
    pub captured: Instant,
    pub image: ImageBgr,
}

/// Anything that yields frames: a file, an RTSP camera, a test pattern.
///
/// Runs on its own decoder thread, so `next_frame` may block.
pub trait FrameSource: Send + 'static {
    /// The next frame, `Ok(None)` at the end of the source.
    fn next_frame(&mut self) -> Result<Option<SourceFrame>, PipelineError>;
    /// Live sources drop old frames when the pipeline is behind; files wait.
    fn is_live(&self) -> bool;
    /// Nominal frame rate, used to scale the tracker's lost-track buffer.
    fn fps(&self) -> f64;
    /// How much of the last `next_frame` call was spent waiting on purpose
    /// (pacing a file to its frame rate, a reconnect backoff) rather than
    /// reading and decoding; left out of the `decode` stage time, which
    /// would otherwise show a 10 fps file as a 100 ms decode.
    fn idle(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// Where one frame's time went; feeds the stage latency metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub decode: Duration,
    pub preprocess: Duration,
    /// From selection for inference to the start of its batch.
    pub queue: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
    pub track: Duration,
    /// Frames in the batch this frame was inferred in (0 for skipped frames).
    pub batch_size: usize,
}

/// Tracker output for one frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackOutput {
    /// Confirmed tracks matched in this frame.
    pub tracks: Vec<Track>,
    /// Tracks confirmed in this update (first appearance of their ids).
    pub started: Vec<TrackId>,
    /// Confirmed tracks removed in this update.
    pub ended: Vec<TrackId>,
}

/// Per-stream object tracking behind one interface, so the pipeline does not
/// know which tracker (or none) it drives.
pub trait TrackStage: Send + 'static {
    /// Updates with a processed frame's detections; `elapsed_frames` is how
    /// many source frames passed since the previous update (≥ 1), so skipped
    /// or dropped frames are predicted across correctly.
    fn update(&mut self, detections: &[Detection], elapsed_frames: u32) -> TrackOutput;
    /// [`Self::update`] told the frame's size (`width`, `height`), for
    /// stages that judge boxes against the picture (area fractions,
    /// normalised masks) before tracking. The pipeline calls this one.
    fn update_in_frame(
        &mut self,
        frame_size: (u32, u32),
        detections: &[Detection],
        elapsed_frames: u32,
    ) -> TrackOutput {
        let _ = frame_size;
        self.update(detections, elapsed_frames)
    }
    /// Where the current tracks are expected `frames_ahead` frames after the
    /// last update, without changing state (drawn on skipped frames).
    fn predict(&self, frames_ahead: u32) -> Vec<Track>;
}

/// One source frame leaving the pipeline, in source order.
#[derive(Debug, Clone)]
pub struct FrameResult {
    pub frame: Frame,
    /// Whether the detector ran on this frame (false for skipped frames).
    pub processed: bool,
    /// What to draw and report: confirmed tracks (as detections with
    /// `track_id`) when tracking is on, otherwise detections. For skipped
    /// frames: predicted tracks, or the latest processed frame's detections.
    pub objects: Vec<Detection>,
    /// Raw detections of this frame (processed frames only).
    pub detections: Vec<Detection>,
    /// Tracks confirmed at this frame (tracking on, processed frames only).
    pub started_tracks: Vec<TrackId>,
    /// Tracks ended at this frame (tracking on, processed frames only).
    pub ended_tracks: Vec<TrackId>,
    pub timings: Timings,
}

/// Consumes a stream's results, in order, on the stream's own thread.
pub trait FrameSink: Send + 'static {
    fn on_frame(&mut self, result: FrameResult) -> Result<(), PipelineError>;
    /// Called once when the stream ends (normally, on error, or when stopped).
    fn finish(&mut self, summary: &StreamSummary) -> Result<(), PipelineError>;
}

/// Live counters for one stream, readable from any thread (API, metrics).
#[derive(Debug, Default)]
pub struct StreamStats {
    pub decoded: AtomicU64,
    pub processed: AtomicU64,
    pub skipped: AtomicU64,
    /// Selected frames gated out by motion gating (nothing moved).
    pub still: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// Milliseconds since the Unix epoch of the last decoded frame (0 = none).
    pub last_frame_unix_ms: AtomicU64,
    pub(crate) error: Mutex<Option<String>>,
}

impl StreamStats {
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_error(&self, e: String) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }

    pub fn summary(&self, stopped: bool) -> StreamSummary {
        StreamSummary {
            decoded: self.decoded.load(Ordering::Relaxed),
            processed: self.processed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            still: self.still.load(Ordering::Relaxed),
            dropped: self.dropped(),
            error: self.error(),
            stopped,
        }
    }
}

/// How a stream ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSummary {
    pub decoded: u64,
    pub processed: u64,
    pub skipped: u64,
    /// Selected frames gated out because nothing moved.
    pub still: u64,
    pub dropped: u64,
    /// The first error (decode, inference or sink), if any.
    pub error: Option<String>,
    /// Stopped on request (Ctrl-C, API) rather than at the end of the source.
    pub stopped: bool,
}

/// Who a frame is detected for; decides its place in the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Cameras: their configured rate first.
    Live,
    /// Single images (`/v1/detect`): before jobs, within a share while
    /// cameras are busy.
    Interactive,
    /// Jobs and files: the spare capacity.
    Background,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Live => "live",
            Priority::Interactive => "interactive",
            Priority::Background => "background",
        }
    }
}
