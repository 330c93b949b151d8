//! The inference seam: what the batcher needs from a detector. The ONNX
//! [`Detector`] implements it; [`crate::fake::FakeDetector`] implements it
//! without a model file, so the scheduler, batcher and ordering are tested
//! in milliseconds.

use vigil_core::Detection;
use vigil_detect::{BatchTiming, DetectError, Detector, Prepared};

/// A detector the engine can drive: one call per batch of letterboxed
/// frames, each answered with its detections in source pixels. One instance
/// per inference thread (`&mut self`: ONNX Runtime sessions are not
/// re-entrant).
pub trait BatchDetector: Send + 'static {
    /// The `(width, height)` frames are letterboxed to before inference.
    fn input_size(&self) -> (u32, u32);
    /// Runs one batch; the result has one entry per frame, in order.
    fn detect_batch(
        &mut self,
        frames: &[Prepared],
    ) -> Result<(Vec<Vec<Detection>>, BatchTiming), DetectError>;
}

impl BatchDetector for Detector {
    fn input_size(&self) -> (u32, u32) {
        Detector::input_size(self)
    }

    fn detect_batch(
        &mut self,
        frames: &[Prepared],
    ) -> Result<(Vec<Vec<Detection>>, BatchTiming), DetectError> {
        self.run_prepared_timed(frames)
    }
}
