//! Running one uploaded video through the shared engine into its result
//! files. Used by the local job workers and by `vigil worker` alike; how a
//! job's state is recorded differs, so that goes through [`JobControl`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::config::{JobsConfig, TrackerConfig};
use vigil_core::JobParams;
use vigil_pipeline::{Engine, PartialFile, SkipPolicy, StreamOptions, VideoFrameSource};
use vigil_video::{SourceOptions, VideoError, VideoSource, VideoWriter};

use super::sink::JobSink;
use super::{DETECTIONS_FILE, VIDEO_FILE};
use crate::metrics::Metrics;

/// How often a running job reports progress to its [`JobControl`].
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

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
    /// `[jobs]`: the caps on frames, duration and frame size.
    pub limits: &'a JobsConfig,
    pub tracker: &'a TrackerConfig,
    pub metrics: &'a Arc<Metrics>,
}

/// The job error for frames above `jobs.max_pixels` (no server path in it:
/// clients read it).
fn too_large(limits: &JobsConfig, width: u32, height: u32) -> String {
    let pixels = u64::from(width) * u64::from(height);
    format!(
        "frames are {width}x{height} ({pixels} pixels); at most jobs.max_pixels ({}) are accepted",
        limits.max_pixels
    )
}

/// Refuses an upload above the `[jobs]` caps before any output is made.
fn check_job_limits(limits: &JobsConfig, info: &vigil_video::SourceInfo) -> Result<(), String> {
    let pixels = u64::from(info.width) * u64::from(info.height);
    if pixels > limits.max_pixels {
        return Err(too_large(limits, info.width, info.height));
    }
    if let Some(n) = info.frame_count {
        if n > limits.max_frames {
            return Err(format!(
                "the video has {n} frames; at most jobs.max_frames ({}) are accepted",
                limits.max_frames
            ));
        }
        let seconds = n as f64 / info.fps;
        if seconds > limits.max_duration_s as f64 {
            return Err(format!(
                "the video is {seconds:.0} s long; at most jobs.max_duration_s ({}) are accepted",
                limits.max_duration_s
            ));
        }
    }
    Ok(())
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
    // Uploads are untrusted: plain containers only, confined to the file.
    // Frames above jobs.max_pixels are refused from the declared size,
    // before one is decoded, and on every frame after (a size change).
    let opts = SourceOptions {
        untrusted: true,
        max_pixels: Some(cx.limits.max_pixels),
        ..SourceOptions::default()
    };
    let source = match VideoSource::open(&input.to_string_lossy(), &opts) {
        Ok(s) => s,
        Err(VideoError::NotReadable { reason, .. }) => {
            return Outcome::Failed(format!("the upload is not a readable video: {reason}"));
        }
        Err(VideoError::NotFound { .. }) => {
            return Outcome::Failed("the uploaded file is missing from storage".into());
        }
        Err(VideoError::FrameTooLarge { width, height, .. }) => {
            return Outcome::Failed(too_large(cx.limits, width, height));
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let info = source.info().clone();
    if let Err(why) = check_job_limits(cx.limits, &info) {
        return Outcome::Failed(why);
    }
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
    let mut too_long = false;
    while !handle.is_finished() {
        std::thread::sleep(PROGRESS_EVERY);
        let n = done.load(Ordering::Relaxed);
        // A container can under-declare its length; count as well.
        if n > cx.limits.max_frames && !too_long {
            too_long = true;
            handle.stop();
        }
        if !ctl.progress(n) {
            handle.stop();
        }
    }
    let summary = handle.join();
    let frames = done.load(Ordering::Relaxed);
    if too_long {
        return Outcome::Failed(format!(
            "the video has more than jobs.max_frames ({}) frames",
            cx.limits.max_frames
        ));
    }
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
