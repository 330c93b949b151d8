//! Plain data shared by every vigil stage.
//!
//! Stages exchange these owned values over channels; no stage reaches into
//! another's internals, so this crate has no heavy dependencies (no OpenCV, no
//! ONNX Runtime) and every other crate can depend on it cheaply.

mod backoff;
pub mod config;
mod event_type;
pub mod fsutil;
mod geometry;
mod image;
mod job;
mod time;
mod types;
mod url;

pub use backoff::Backoff;
pub use event_type::{EventType, UnknownEventType};
pub use geometry::BBox;
pub use image::{ImageBgr, ImageError};
pub use job::JobParams;
pub use time::{now_ms, to_ms};
pub use types::{ClassId, Detection, Frame, FrameIndex, PtsMs, StreamId, Track, TrackId};
pub use url::mask_url;
