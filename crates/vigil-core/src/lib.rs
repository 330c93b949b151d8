//! Plain data shared by every vigil stage.
//!
//! Stages exchange these owned values over channels; no stage reaches into
//! another's internals, so this crate has no heavy dependencies (no OpenCV, no
//! ONNX Runtime) and every other crate can depend on it cheaply.

pub mod config;
pub mod fsutil;
mod geometry;
mod image;
mod job;
mod types;

pub use geometry::BBox;
pub use image::{ImageBgr, ImageError};
pub use job::JobParams;
pub use types::{ClassId, Detection, Frame, FrameIndex, PtsMs, StreamId, Track, TrackId};
