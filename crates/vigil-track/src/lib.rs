//! Multi-object tracking for vigil: ByteTrack over a time-aware Kalman filter,
//! and MOTChallenge text I/O for `vigil track --mot`.
//!
//! The crate depends only on `vigil-core` (plus a linear-assignment solver), so
//! the tracker can be tested, benchmarked and evaluated on MOTChallenge
//! detection files without video or inference code.
//!
//! ```
//! use vigil_core::{config::TrackerConfig, BBox, Detection};
//! use vigil_track::ByteTracker;
//!
//! let mut tracker = ByteTracker::new(TrackerConfig::default(), 30.0)?;
//! let person = |x: f32| Detection {
//!     class_id: 0,
//!     label: "person".into(),
//!     score: 0.9,
//!     bbox: BBox::new(x, 10.0, x + 40.0, 90.0),
//!     track_id: None,
//! };
//! let first = tracker.update(&[person(0.0)], 1.0);
//! // Only every third frame is processed: tell the tracker three frames passed.
//! let later = tracker.update(&[person(12.0)], 3.0);
//! assert_eq!(first.tracks[0].id, later.tracks[0].id);
//! # Ok::<(), vigil_track::TrackerError>(())
//! ```

#![warn(missing_docs)]

mod assign;
pub mod bytetrack;
pub mod kalman;
pub mod mot;

pub use bytetrack::{ByteTracker, TrackerError, UpdateOutput};
