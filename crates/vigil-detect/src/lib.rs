//! YOLO object detection on ONNX Runtime.
//!
//! Frames go through [`preprocess`] (Ultralytics letterbox), one batched
//! session call in [`Detector`], then [`postprocess`] (output decoding and
//! class-aware NMS) maps boxes back to source pixels. Preprocessing is a free
//! function so the pipeline can run it on other threads than inference.

pub mod agreement;
mod detector;
mod error;
pub mod image_io;
mod labels;
pub mod postprocess;
pub mod preprocess;
pub mod runtime;

pub use detector::{
    available_cores, resolved_sessions, BatchTiming, Detector, DetectorOptions, ModelInfo,
};
pub use error::DetectError;
pub use labels::{parse_names, COCO80};
pub use postprocess::{DecodeParams, NmsParams};
pub use preprocess::{Letterbox, Prepared};
pub use runtime::{Backend, CpuFeatures, ResolvedDevice};
