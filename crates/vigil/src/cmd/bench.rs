//! `vigil bench`: how many cameras this box sustains, and what they cost.
//! Wiring only; the measurement lives in `vigil-bench`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::settings::{self, GlobalArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The clip every stream plays, looped at its own frame rate.
    #[arg(long, value_name = "FILE", default_value = "data/video/vtest.avi")]
    clip: PathBuf,
    /// Detection rate asked of each stream.
    #[arg(long, value_name = "F", default_value_t = 5.0)]
    fps: f64,
    /// Most streams tried (the bench stops at the first N that fails).
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_streams: usize,
    /// P95 end-to-end latency bound in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000.0)]
    p95_ms: f64,
    /// Measured seconds per step (after a warm-up of a quarter of it, 3-15 s).
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    duration: f64,
    /// Motion gating on the streams (the default for cameras).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    motion: OnOff,
    /// The machine's price in USD per hour, for the cost section.
    #[arg(long, value_name = "USD")]
    price_per_hour: Option<f64>,
    /// A cloud vision API's price in USD per 1,000 images (default: Amazon
    /// Rekognition DetectLabels' list price, see the report for the source).
    #[arg(long, value_name = "USD", default_value_t = vigil_bench::API_PRICE_PER_1000)]
    api_price_per_1000: f64,
    /// Where report.md, report.json, report.svg and the raw scrapes go.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        default_value = "bench-report"
    )]
    out: PathBuf,
}

pub fn run(g: &GlobalArgs, a: &BenchArgs) -> anyhow::Result<ExitCode> {
    let cfg = settings::load(g)?;
    let opts = vigil_bench::BenchOptions {
        clip: a.clip.clone(),
        fps: a.fps,
        max_streams: a.max_streams,
        p95_ms: a.p95_ms,
        duration_s: a.duration,
        motion: a.motion == OnOff::On,
        price_per_hour: a.price_per_hour,
        api_price_per_1000: a.api_price_per_1000,
        out_dir: a.out.clone(),
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let bar = if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(1000);
        pb.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {percent}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let report = vigil_bench::run(&cfg, &opts, &command, &mut |p| {
        bar.set_position((p.done_s / p.total_s.max(1e-9) * 1000.0) as u64);
        bar.set_message(format!("{} stream(s): {}", p.streams, p.phase));
    });
    bar.finish_and_clear();
    let report = report?;
    eprintln!(
        "capacity: {} stream(s) at {} fps (motion gating {}) -> {}",
        report.capacity,
        report.target_fps,
        if report.motion { "on" } else { "off" },
        a.out.join("report.md").display()
    );
    Ok(ExitCode::SUCCESS)
}
