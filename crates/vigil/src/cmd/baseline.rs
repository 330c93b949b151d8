//! `vigil baseline save`: a drift baseline from a reference video, so a
//! camera is compared against footage known to be good from its first
//! minute, instead of against whatever its first window happened to show.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use vigil_monitor::Baseline;
use vigil_pipeline::{
    Engine, EngineConfig, FrameResult, FrameSink, SkipPolicy, StreamOptions, StreamSummary,
};
use vigil_video::{SourceOptions, VideoSource};

use crate::settings::{self, GlobalArgs};

#[derive(Subcommand, Debug)]
pub enum BaselineCommand {
    /// Run the detector over a reference video and save its class mix and
    /// confidence histogram as a stream's drift baseline.
    Save(SaveArgs),
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Reference video: a file, or an RTSP URL (then bound it with --max-frames).
    pub input: String,
    /// The stream the baseline is for; `vigil serve` loads
    /// `<drift.baseline_dir>/<ID>.json` for it at start.
    #[arg(long, value_name = "ID")]
    pub stream: String,
    /// Write here instead of the stream's baseline path from the config.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run the detector on every Nth frame.
    #[arg(long, value_name = "N", conflicts_with = "fps", value_parser = clap::value_parser!(u32).range(1..))]
    pub every: Option<u32>,
    /// Run the detector at this many frames per second of video time.
    #[arg(long, value_name = "F")]
    pub fps: Option<f64>,
    /// Stop after this many decoded frames (needed for live sources).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_frames: Option<u64>,
}

pub fn run(g: &GlobalArgs, c: &BaselineCommand) -> anyhow::Result<ExitCode> {
    match c {
        BaselineCommand::Save(a) => save(g, a),
    }
}

fn save(g: &GlobalArgs, a: &SaveArgs) -> anyhow::Result<ExitCode> {
    let cfg = settings::load(g)?;
    vigil_core::config::check_stream_id(&a.stream)
        .map_err(|reason| anyhow::anyhow!("--stream: {reason}"))?;
    if let Some(f) = a.fps {
        if !(f > 0.0 && f.is_finite()) {
            bail!("--fps must be a positive number, got {f}");
        }
    }
    let path = a
        .output
        .clone()
        .unwrap_or_else(|| vigil_server::baseline_path(&cfg, &a.stream));
    let source = VideoSource::open(&a.input, &SourceOptions::default())?;
    let (engine, _backend) = Engine::load(
        &cfg.model,
        EngineConfig {
            batch: cfg.batch.clone(),
            ..EngineConfig::default()
        },
    )?;
    let counted = Arc::new(Mutex::new(Counted::default()));
    let stop: Arc<OnceLock<Arc<AtomicBool>>> = Arc::new(OnceLock::new());
    let sink = BaselineSink {
        counted: Arc::clone(&counted),
        max_frames: a.max_frames,
        stop: Arc::clone(&stop),
    };
    let mut opts = StreamOptions::new(a.stream.clone());
    opts.skip = SkipPolicy::from_options(a.every, a.fps);
    let handle = engine.add_stream(
        Box::new(vigil_pipeline::VideoFrameSource::new(source)),
        Box::new(sink),
        None,
        opts,
    );
    let _ = stop.set(handle.stop_flag());
    let summary = handle.join();
    engine.shutdown();
    if let Some(e) = summary.error {
        bail!("{}: {e}", a.input);
    }
    let counted = std::mem::take(&mut *counted.lock().unwrap_or_else(|p| p.into_inner()));
    let b = counted.baseline;
    if b.detections == 0 {
        bail!(
            "{}: no detections in {} processed frames; a baseline needs some (nothing written)",
            a.input,
            counted.processed
        );
    }
    if b.detections < cfg.drift.min_detections {
        tracing::warn!(
            detections = b.detections,
            min_detections = cfg.drift.min_detections,
            "fewer detections than drift.min_detections: no PSI is reported until the baseline has that many; use a longer video"
        );
    }
    b.save(&path)
        .with_context(|| format!("cannot save the baseline to {}", path.display()))?;
    eprintln!(
        "{}: {} detections over {} processed frames ({:.1} s of video) -> {}",
        a.input,
        b.detections,
        counted.processed,
        counted.last_pts_ms / 1000.0,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Counted {
    baseline: Baseline,
    processed: u64,
    last_pts_ms: f64,
}

/// Counts the raw detections of processed frames, exactly what the
/// daemon's drift window counts.
struct BaselineSink {
    counted: Arc<Mutex<Counted>>,
    max_frames: Option<u64>,
    /// The stream's stop flag: a live source ends at `max_frames`.
    stop: Arc<OnceLock<Arc<AtomicBool>>>,
}

impl FrameSink for BaselineSink {
    fn on_frame(&mut self, r: FrameResult) -> Result<(), vigil_pipeline::PipelineError> {
        if self.max_frames.is_some_and(|m| r.frame.index.0 + 1 >= m) {
            if let Some(stop) = self.stop.get() {
                stop.store(true, Ordering::SeqCst);
            }
            if self.max_frames.is_some_and(|m| r.frame.index.0 >= m) {
                return Ok(());
            }
        }
        let mut c = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        c.last_pts_ms = r.frame.pts.0;
        if r.processed {
            c.processed += 1;
            c.baseline.record(&r.detections);
        }
        Ok(())
    }

    fn finish(&mut self, _summary: &StreamSummary) -> Result<(), vigil_pipeline::PipelineError> {
        Ok(())
    }
}
