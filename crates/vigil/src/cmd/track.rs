//! `vigil track --mot DET.txt [--fps F]`: ByteTrack over MOTChallenge
//! detections. Wiring only; parsing, tracking and formatting live in
//! `vigil_track::mot`, where they are tested.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use vigil_core::config::TrackerConfig;

#[derive(Args, Debug)]
pub struct TrackArgs {
    /// Detections in MOTChallenge format: `frame,id,x,y,w,h,score,...`
    /// (frames 1-based, id ignored).
    #[arg(long, value_name = "DET.txt")]
    pub mot: PathBuf,
    /// Frame rate of the sequence; scales the lost-track buffer
    /// (`tracker.track_buffer` is given at 30 fps).
    #[arg(long, value_name = "F", default_value_t = 30.0)]
    pub fps: f64,
}

/// Writes `frame,track_id,x,y,w,h,score,-1,-1,-1` lines to stdout; errors
/// name the file and, for bad input, the line.
pub fn run(args: &TrackArgs, cfg: &TrackerConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.fps.is_finite() && args.fps > 0.0,
        "--fps must be a positive number, got {}",
        args.fps
    );
    let path = args.mot.display().to_string();
    let input = BufReader::new(File::open(&args.mot).with_context(|| path.clone())?);
    let stdout = std::io::stdout();
    let out = BufWriter::new(stdout.lock());
    let summary = vigil_track::mot::run(input, out, cfg, args.fps).context(path)?;
    tracing::info!(
        frames = summary.frames,
        detections = summary.detections,
        result_lines = summary.result_lines,
        tracks = summary.tracks,
        "tracked"
    );
    Ok(())
}
