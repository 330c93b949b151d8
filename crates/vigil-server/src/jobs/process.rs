//! Running one uploaded video through the shared engine into its result
//! files. Used by the local job workers and by `vigil worker` alike; how a
//! job's state is recorded differs, so that goes through [`JobControl`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::config::TrackerConfig;
use vigil_core::JobParams;
use vigil_pipeline::{Engine, PartialFile, SkipPolicy, StreamOptions, VideoFrameSource};
use vigil_video::{SourceOptions, VideoError, VideoSource, VideoWriter};

use super::sink::JobSink;
use crate::metrics::Metrics;

/// How often a running job reports progress to its [`JobControl`].
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Result files of a job, in its output directory.
pub const VIDEO_FILE: &str = "video.mp4";
pub const DETECTIONS_FILE: &str = "detections.jsonl";

/// Where a running job's state goes (SQLite, or the NATS KV bucket).
pub trait JobControl {
    /// The input opened; `stop` ends the job early, `done` counts frames.
    fn started(&mut self, frames_total: Option<u64>, stop: Arc<AtomicBool>, done: Arc<AtomicU64>);
    /// Called every [`PROGRESS_EVERY`]; false stops the job.
    fn progress(&mut self, frames_done: u64) -> bool;
}

/// How a job ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Both result files are in place.
    Succeeded { frames: u64 },
    /// The input or the pipeline failed; the message says why. No result
    /// files are left behind.
    Failed(String),
    /// Stopped from outside before the end; no result files.
    Stopped,
}

/// What one job needs besides its files.
pub struct JobContext<'a> {
    pub engine: &'a Engine,
    pub tracker: &'a TrackerConfig,
    pub metrics: &'a Arc<Metrics>,
}

/// Runs `input` through the engine into `out_dir/video.mp4` and
/// `out_dir/detections.jsonl` (written under temporary names and moved into
/// place only when complete).
pub fn process_video(
    cx: &JobContext<'_>,
    id: &str,
    input: &Path,
    out_dir: &Path,
    params: &JobParams,
    ctl: &mut dyn JobControl,
) -> Outcome {
    // Open the input before creating outputs: a bad upload fails with a
    // clear message and leaves nothing behind.
    let source = match VideoSource::open(&input.to_string_lossy(), &SourceOptions::default()) {
        Ok(s) => s,
        Err(VideoError::NotReadable { reason, .. }) => {
            return Outcome::Failed(format!("the upload is not a readable video: {reason}"));
        }
        Err(VideoError::NotFound { .. }) => {
            return Outcome::Failed("the uploaded file is missing from storage".into());
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let info = source.info().clone();
    let writer =
        match VideoWriter::create(&out_dir.join(VIDEO_FILE), info.width, info.height, info.fps) {
            Ok(w) => w,
            Err(e) => return Outcome::Failed(format!("cannot create the annotated video: {e}")),
        };
    let jsonl = match PartialFile::create(&out_dir.join(DETECTIONS_FILE)) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(format!("cannot create {DETECTIONS_FILE}: {e}")),
    };
    let tracker = if params.track {
        match vigil_pipeline::tracker(cx.tracker, info.fps) {
            Ok(t) => Some(t),
            Err(e) => return Outcome::Failed(format!("tracker: {e}")),
        }
    } else {
        None
    };
    let done = Arc::new(AtomicU64::new(0));
    let sink = JobSink::new(
        writer,
        jsonl,
        Arc::clone(&done),
        params.conf,
        Arc::clone(cx.metrics),
    );
    let mut opts = StreamOptions::new(format!("job-{id}"));
    opts.skip = SkipPolicy::from_options(params.every, params.fps);
    tracing::info!(
        frames = ?info.frame_count,
        width = info.width,
        height = info.height,
        fps = info.fps,
        "job started"
    );
    // A file source is not live, so its ring blocks instead of dropping:
    // every frame of the upload is processed or deliberately skipped.
    let handle = cx.engine.add_stream(
        Box::new(VideoFrameSource::new(source)),
        Box::new(sink),
        tracker,
        opts,
    );
    ctl.started(info.frame_count, handle.stop_flag(), Arc::clone(&done));
    while !handle.is_finished() {
        std::thread::sleep(PROGRESS_EVERY);
        if !ctl.progress(done.load(Ordering::Relaxed)) {
            handle.stop();
        }
    }
    let summary = handle.join();
    let frames = done.load(Ordering::Relaxed);
    if summary.stopped {
        tracing::info!(frames_done = frames, "job stopped before the end");
        return Outcome::Stopped;
    }
    match summary.error {
        Some(e) => Outcome::Failed(e),
        None => {
            tracing::info!(frames, processed = summary.processed, "video processed");
            // moov first, so a browser plays (and seeks in) the result while
            // it downloads. A failure leaves a valid file that plays only
            // once fully fetched: worth a warning, not a failed job.
            if let Err(e) = vigil_video::faststart(&out_dir.join(VIDEO_FILE)) {
                tracing::warn!(error = %e, "cannot move the MP4 index to the front");
            }
            Outcome::Succeeded { frames }
        }
    }
}
