//! The frame pipeline: decoder threads → bounded rings → frame skipping →
//! preprocessing pool → one batched detector shared by all streams →
//! per-stream tracking → ordered sinks.
//!
//! See `ARCHITECTURE.md` at the repository root for the threads and
//! channels, and who owns what.

mod adapters;
mod engine;
pub mod motion;
mod outputs;
pub mod ring;
pub mod skip;
mod stream;
mod types;

pub use adapters::{tracker, VideoFrameSource};
pub use engine::{
    collect_batch, collect_batch_while, Engine, EngineConfig, Priority, SchedulerStats,
    BACKGROUND_SHARE, INTERACTIVE_SHARE,
};
pub use motion::{Gate, MotionGate, MotionMask};
pub use outputs::{FileOutputs, PartialFile};
pub use skip::{FrameSkipper, SkipPolicy};
pub use stream::{StreamHandle, StreamOptions};
pub use types::{
    FrameResult, FrameSink, FrameSource, SourceFrame, StreamStats, StreamSummary, Timings,
    TrackOutput, TrackStage,
};
