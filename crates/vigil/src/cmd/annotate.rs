//! `vigil annotate`: the full pipeline over one video file.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_core::{Detection, ImageBgr};
use vigil_detect::{Detector, DetectorOptions};
use vigil_pipeline::{
    Engine, EngineConfig, FrameResult, FrameSink, SkipPolicy, StreamOptions, StreamSummary,
};
use vigil_video::{draw_detections, SourceOptions, VideoSource, VideoWriter};

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
    let detector = Detector::load(&DetectorOptions::from_config(&cfg.model))?;

    let writer = match &output {
        Some(p) => {
            let w = VideoWriter::create(p, info.width, info.height, info.fps)?;
            tracing::info!(output = %p.display(), codec = w.codec(), "writing annotated video");
            Some(w)
        }
        None => None,
    };
    let jsonl = match &a.jsonl {
        Some(p) => Some(PartialFile::create(p)?),
        None => None,
    };
    let progress = progress_bar(info.frame_count);
    let sink = AnnotateSink {
        writer,
        jsonl,
        progress: progress.clone(),
        failed: false,
    };

    let mut batch = cfg.batch.clone();
    if let Some(b) = a.batch {
        batch.max_size = b as usize;
    }
    let engine = Engine::start(
        detector,
        EngineConfig {
            batch,
            ..EngineConfig::default()
        },
    );
    let skip = match (a.every, a.fps) {
        (Some(n), _) => SkipPolicy::Every(n),
        (None, Some(f)) => SkipPolicy::Fps(f),
        (None, None) => SkipPolicy::Every(1),
    };
    let tracker = if a.no_track {
        None
    } else {
        Some(vigil_pipeline::tracker(&cfg.tracker, info.fps).map_err(anyhow::Error::msg)?)
    };
    let mut opts = StreamOptions::new(a.input.display().to_string());
    opts.skip = skip;
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
    engine.shutdown();
    progress.finish_and_clear();

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

/// A file written under a temporary name and renamed into place only on
/// success, so an error never leaves a half-written output behind.
struct PartialFile {
    final_path: PathBuf,
    tmp_path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl PartialFile {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let name = path
            .file_name()
            .with_context(|| format!("{}: not a file path", path.display()))?;
        let tmp_path = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        let f =
            File::create(&tmp_path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            final_path: path.to_path_buf(),
            tmp_path,
            out: Some(BufWriter::new(f)),
        })
    }

    fn writer(&mut self) -> Option<&mut BufWriter<File>> {
        self.out.as_mut()
    }

    fn commit(mut self) -> std::io::Result<()> {
        if let Some(mut w) = self.out.take() {
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        std::fs::rename(&self.tmp_path, &self.final_path)
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    frame: u64,
    pts_ms: f64,
    detections: &'a [Detection],
}

struct AnnotateSink {
    writer: Option<VideoWriter>,
    jsonl: Option<PartialFile>,
    progress: ProgressBar,
    failed: bool,
}

impl FrameSink for AnnotateSink {
    fn on_frame(&mut self, r: FrameResult) -> Result<(), String> {
        if r.processed {
            if let Some(w) = self.jsonl.as_mut().and_then(PartialFile::writer) {
                let line = JsonLine {
                    frame: r.frame.index.0,
                    pts_ms: r.frame.pts.0,
                    detections: &r.objects,
                };
                serde_json::to_writer(&mut *w, &line).map_err(|e| e.to_string())?;
                w.write_all(b"\n")
                    .map_err(|e| format!("writing JSON lines: {e}"))?;
            }
        }
        if let Some(writer) = self.writer.as_mut() {
            let mut img: ImageBgr = (*r.frame.image).clone();
            draw_detections(&mut img, &r.objects);
            writer.write(&img).map_err(|e| e.to_string())?;
        }
        self.progress.inc(1);
        Ok(())
    }

    fn finish(&mut self, summary: &StreamSummary) -> Result<(), String> {
        // On error the partial outputs are dropped (deleted); on success or an
        // interruption they are closed properly and moved into place.
        self.failed = summary.error.is_some();
        if self.failed {
            self.writer.take();
            self.jsonl.take();
            return Ok(());
        }
        if let Some(w) = self.writer.take() {
            w.finish().map_err(|e| e.to_string())?;
        }
        if let Some(j) = self.jsonl.take() {
            j.commit().map_err(|e| format!("writing JSON lines: {e}"))?;
        }
        Ok(())
    }
}
