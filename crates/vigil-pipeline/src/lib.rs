//! The frame pipeline: decoder threads → bounded rings → frame skipping →
//! preprocessing pool → one batched detector shared by all streams →
//! per-stream tracking → ordered sinks.
//!
//! One module per stage, as `ARCHITECTURE.md` draws them: `decode`
//! threads, the `scheduler`, `preprocess`, `inference` (behind the
//! [`BatchDetector`] trait), and `post`; `ctx` holds what the stages hand
//! each other, and the [`Engine`] wires them. See `ARCHITECTURE.md` at the
//! repository root for the threads and channels, and who owns what.

mod adapters;
mod ctx;
mod decode;
mod engine;
mod error;
pub mod fake;
mod infer;
mod inference;
pub mod motion;
mod outputs;
mod post;
mod preprocess;
pub mod ring;
mod scheduler;
pub mod skip;
mod stream;
mod types;

pub use adapters::{tracker, VideoFrameSource};
pub use engine::{Engine, EngineConfig};
pub use error::PipelineError;
pub use infer::BatchDetector;
pub use motion::{Gate, MotionGate, MotionMask};
pub use outputs::{FileOutputs, PartialFile};
pub use scheduler::{SchedulerStats, BACKGROUND_SHARE, INTERACTIVE_SHARE};
pub use skip::{FrameSkipper, SkipPolicy};
pub use stream::{StreamHandle, StreamOptions};
pub use types::{
    FrameResult, FrameSink, FrameSource, Priority, SourceFrame, StreamStats, StreamSummary,
    Timings, TrackOutput, TrackStage,
};
