//! Video input and output for vigil: decoding files and RTSP streams into
//! [`vigil_core::ImageBgr`] frames, encoding annotated output, and drawing
//! detections.
//!
//! Everything here is synchronous and single-threaded on purpose: the pipeline
//! crate owns the threads and channels, and each type here is `Send` so it can
//! be moved into whichever thread drives it. OpenCV (with its FFmpeg backend)
//! does the codec work because it is what the Ultralytics reference decodes
//! with, so pixels — and therefore detections — match.

mod container;
mod convert;
mod draw;
mod error;
mod faststart;
mod source;
mod url;
mod writer;

pub use container::Container;
pub use draw::{class_color, detection_label, draw_detections, encode_jpeg};
pub use error::VideoError;
pub use faststart::{faststart, FaststartError};
pub use source::{DecodedFrame, RtspTransport, SourceInfo, SourceOptions, VideoSource};
pub use url::mask_url;
pub use writer::VideoWriter;
