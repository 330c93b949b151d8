//! `vigil`: the command-line front end. Wiring only — every stage lives in a
//! `vigil-*` library crate; this binary parses flags, loads config, and hands
//! plain values between them.

mod cmd;
mod logging;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::GlobalArgs;

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version,
    about = "Real-time video object detection (YOLO on ONNX Runtime)"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Detect objects in still images; one JSON line per image on stdout.
    Detect(cmd::detect::DetectArgs),
    /// Run the full pipeline over a video file: annotated MP4 and/or JSON lines.
    Annotate(cmd::annotate::AnnotateArgs),
    /// ByteTrack over MOTChallenge detections; MOTChallenge results on stdout.
    Track(cmd::track::TrackArgs),
    /// The daemon: camera streams, video jobs, HTTP API and metrics.
    Serve(cmd::serve::ServeArgs),
    /// A job worker for the NATS JetStream backend ([queue] backend = "nats").
    Worker(cmd::worker::WorkerArgs),
    /// Capacity and cost planning: the most cameras this machine sustains.
    Bench(cmd::bench::BenchArgs),
    /// Drift baselines (see [drift] in the config).
    #[command(subcommand)]
    Baseline(cmd::baseline::BaselineCommand),
    /// Model tooling.
    #[command(subcommand)]
    Model(cmd::model::ModelCommand),
    /// Configuration tooling.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.global);
    let result = match &cli.command {
        Command::Detect(a) => cmd::detect::run(&cli.global, a),
        Command::Annotate(a) => cmd::annotate::run(&cli.global, a),
        Command::Track(a) => settings::load(&cli.global)
            .and_then(|cfg| cmd::track::run(a, &cfg.tracker))
            .map(|()| ExitCode::SUCCESS),
        Command::Serve(a) => cmd::serve::run(&cli.global, a),
        Command::Worker(a) => cmd::worker::run(&cli.global, a),
        Command::Bench(a) => cmd::bench::run(&cli.global, a),
        Command::Baseline(c) => cmd::baseline::run(&cli.global, c),
        Command::Model(c) => cmd::model::run(c).map(|()| ExitCode::SUCCESS),
        Command::Config(c) => cmd::config::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
