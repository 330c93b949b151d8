//! `vigil annotate`: the full pipeline over one video file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use vigil_pipeline::{
    Engine, EngineConfig, FileOutputs, FrameResult, FrameSink, PartialFile, SkipPolicy,
    StreamOptions, StreamSummary,
};
use vigil_video::{SourceOptions, VideoSource, VideoWriter};

use crate::settings::{self, GlobalArgs};

#[derive(Args, Debug)]
pub struct AnnotateArgs {
    /// Video file (any container/codec FFmpeg reads).
    pub input: PathBuf,
    /// Annotated video (MP4, H.264 when the local FFmpeg can encode it).
    /// Default when neither -o nor --jsonl is given: INPUT_STEM.annotated.mp4.
    #[arg(short = 'o', long = "output", value_name = "OUT.mp4")]
    pub output: Option<PathBuf>,
    /// JSON Lines, one per processed frame: {"frame", "pts_ms", "detections"}.
    #[arg(long, value_name = "OUT.jsonl")]
    pub jsonl: Option<PathBuf>,
    /// Run the detector on every Nth frame.
    #[arg(long, value_name = "N", conflicts_with = "fps", value_parser = clap::value_parser!(u32).range(1..))]
    pub every: Option<u32>,
    /// Run the detector at this many frames per second of video time.
    #[arg(long, value_name = "F")]
    pub fps: Option<f64>,
    /// Report raw detections instead of ByteTrack tracks.
    #[arg(long)]
    pub no_track: bool,
    /// Frames per inference call [default: batch.max_size].
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch: Option<u32>,
}

pub fn run(g: &GlobalArgs, a: &AnnotateArgs) -> anyhow::Result<ExitCode> {
    let cfg = settings::load(g)?;
    if let Some(f) = a.fps {
        if !(f > 0.0 && f.is_finite()) {
            bail!("--fps must be a positive number, got {f}");
        }
    }
    // Open the video first: a bad input must fail before any output exists.
    let source = VideoSource::open(&a.input.to_string_lossy(), &SourceOptions::default())?;
    // Install the Ctrl-C handler before any output exists, so an early
    // interrupt still goes through the clean path that removes partial files.
    let interrupted = Arc::new(AtomicBool::new(false));
    let stream_stop: Arc<OnceLock<Arc<AtomicBool>>> = Arc::new(OnceLock::new());
    {
        let interrupted = Arc::clone(&interrupted);
        let stream_stop = Arc::clone(&stream_stop);
        // A second handler cannot be installed (e.g. in tests); not fatal.
        let _ = ctrlc::set_handler(move || {
            interrupted.store(true, Ordering::SeqCst);
            if let Some(stop) = stream_stop.get() {
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    let info = source.info().clone();
    let output = match (&a.output, &a.jsonl) {
        (None, None) => Some(default_output(&a.input)),
        (o, _) => o.clone(),
    };
    let mut batch = cfg.batch.clone();
    if let Some(b) = a.batch {
        batch.max_size = b as usize;
    }
    let (engine, _backend) = Engine::load(
        &cfg.model,
        EngineConfig {
            batch,
            ..EngineConfig::default()
        },
    )?;

    let writer = match &output {
        Some(p) => {
            let w = VideoWriter::create(p, info.width, info.height, info.fps)?;
            tracing::info!(output = %p.display(), codec = w.codec(), "writing annotated video");
            Some(w)
        }
        None => None,
    };
    let jsonl = match &a.jsonl {
        Some(p) => {
            Some(PartialFile::create(p).with_context(|| format!("cannot create {}", p.display()))?)
        }
        None => None,
    };
    let progress = progress_bar(info.frame_count);
    let largest_batch = Arc::new(AtomicUsize::new(0));
    let sink = AnnotateSink {
        outputs: FileOutputs::new(writer, jsonl),
        progress: progress.clone(),
        largest_batch: Arc::clone(&largest_batch),
    };

    let skip = SkipPolicy::from_options(a.every, a.fps);
    let tracker = if a.no_track {
        None
    } else {
        Some(vigil_pipeline::tracker(&cfg.tracker, info.fps).map_err(anyhow::Error::msg)?)
    };
    let mut opts = StreamOptions::new(a.input.display().to_string());
    opts.skip = skip;
    // Throughput is timed from here: model loading is a one-off cost that
    // says nothing about how fast frames go through (benches/throughput.sh
    // compares this figure with bare inference and the Python reference).
    let started = Instant::now();
    let handle = engine.add_stream(
        Box::new(vigil_pipeline::VideoFrameSource::new(source)),
        Box::new(sink),
        tracker,
        opts,
    );
    // Whichever comes first — the signal or the stream — the stream stops.
    let _ = stream_stop.set(handle.stop_flag());
    if interrupted.load(Ordering::SeqCst) {
        handle.stop();
    }
    let summary = handle.join();
    let seconds = started.elapsed().as_secs_f64();
    engine.shutdown();
    progress.finish_and_clear();
    tracing::info!(
        frames = summary.decoded,
        processed = summary.processed,
        seconds,
        fps = summary.decoded as f64 / seconds.max(1e-9),
        largest_batch = largest_batch.load(Ordering::Relaxed),
        "pipeline finished"
    );

    if let Some(e) = summary.error {
        bail!("{}: {e}", a.input.display());
    }
    if interrupted.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted after {} frames; output closed",
            summary.decoded
        );
        return Ok(ExitCode::from(130));
    }
    if let Some(p) = &output {
        eprintln!(
            "{}: {} frames, {} processed -> {}",
            a.input.display(),
            summary.decoded,
            summary.processed,
            p.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn default_output(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map_or_else(|| "output".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from(format!("{stem}.annotated.mp4"))
}

fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::no_length(),
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames ({per_sec}, eta {eta})",
    ) {
        pb.set_style(style);
    }
    pb
}

struct AnnotateSink {
    outputs: FileOutputs,
    progress: ProgressBar,
    /// The most frames one inference call took, logged at the end: whether
    /// `--batch N` really batched (frames only batch when they arrive within
    /// `batch.max_wait_ms` of each other).
    largest_batch: Arc<AtomicUsize>,
}

impl FrameSink for AnnotateSink {
    fn on_frame(&mut self, r: FrameResult) -> Result<(), vigil_pipeline::PipelineError> {
        self.largest_batch
            .fetch_max(r.timings.batch_size, Ordering::Relaxed);
        self.outputs.write(&r)?;
        self.progress.inc(1);
        Ok(())
    }

    fn finish(&mut self, summary: &StreamSummary) -> Result<(), vigil_pipeline::PipelineError> {
        // On error the partial outputs are deleted; on success or an
        // interruption (Ctrl-C) they are closed properly and moved into place.
        self.outputs.finish(summary.error.is_none())
    }
}
