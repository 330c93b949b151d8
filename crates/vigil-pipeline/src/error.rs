//! The pipeline's one error type: what crosses its boundary from sources,
//! sinks, the detector and the engine itself.

use std::sync::Arc;

use vigil_detect::DetectError;

/// Why a frame, a stream or a single image could not go through.
///
/// Sources and sinks live outside this crate (decoders, the daemon's
/// event sink, the job writer), so their variants carry the implementor's
/// own message; the messages are shown to operators as they are
/// (`/v1/streams` `error`, a job's `error`), so no prefix is added.
/// `Clone` because one failed batch fails every frame in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    /// The source could not produce its next frame.
    #[error("{0}")]
    Source(String),
    /// The sink could not take a frame or finish its output.
    #[error("{0}")]
    Sink(String),
    /// Letterboxing or inference failed for the batch holding the frame.
    #[error("{0}")]
    Detect(Arc<DetectError>),
    /// Tracker settings the tracker refused.
    #[error("{0}")]
    Tracker(String),
    /// One frame of a stream failed; the stream stops with this error.
    #[error("frame {index} of stream {stream}: {error}")]
    Frame {
        stream: String,
        index: u64,
        error: Box<PipelineError>,
    },
    /// The engine is shutting down and takes no more work.
    #[error("pipeline is shutting down")]
    ShuttingDown,
    /// The engine stopped before answering a single image.
    #[error("engine stopped before the image was processed")]
    Stopped,
}

impl From<DetectError> for PipelineError {
    fn from(e: DetectError) -> Self {
        PipelineError::Detect(Arc::new(e))
    }
}
