//! Bare inference throughput: session calls alone, on frames decoded and
//! letterboxed beforehand, for comparison with `vigil annotate` (the whole
//! pipeline) at the same batch size and thread count.
//!
//! Usage: bare-inference VIDEO [--batch B] [--frames N] [--threads T] [--sessions S]
//!        [--device cpu|openvino|cuda] [--precision fp32|bf16|...] [--model PATH]
//! Prints one JSON line: {"frames", "seconds", "fps", "p50_ms", "p95_ms", "batch",
//! "threads", "sessions", ...}; p50/p95 are per session call, the floor
//! for a `POST /v1/detect` request (benches/detect_vs_bare.sh).
//!
//! With S sessions, S threads each run their own session (T threads each)
//! on an equal share of the calls, all at once: the floor for
//! `model.sessions = S`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::time::Instant;

use vigil_core::config::{Count, Device, ModelConfig, Precision};
use vigil_detect::{preprocess, Detector, DetectorOptions};
use vigil_video::{SourceOptions, VideoSource};

fn arg(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

fn text_arg<T: std::str::FromStr<Err: std::fmt::Display>>(
    args: &[String],
    name: &str,
    default: T,
) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value"))?
            .parse()
            .map_err(|e: T::Err| e.to_string()),
        None => Ok(default),
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let video = args.get(1).ok_or(
        "usage: bare-inference VIDEO [--batch B] [--frames N] [--threads T] [--sessions S]",
    )?;
    let batch = arg(&args, "--batch", 4)?.max(1);
    let frames = arg(&args, "--frames", 200)?.max(batch);
    let threads = arg(&args, "--threads", 0)?;
    let sessions = arg(&args, "--sessions", 1)?.max(1);
    let device = text_arg(&args, "--device", Device::Cpu)?;
    let precision = text_arg(&args, "--precision", Precision::Auto)?;
    let path = match args.iter().position(|a| a == "--model") {
        Some(i) => std::path::PathBuf::from(args.get(i + 1).ok_or("--model needs a path")?),
        None => vigil_benches::require("models/yolov12n-dyn.onnx"),
    };
    let cfg = ModelConfig {
        path,
        device,
        precision,
        intra_threads: Count::Fixed(threads),
        ..ModelConfig::default()
    };
    let mut dets = (0..sessions)
        .map(|_| Detector::load(&DetectorOptions::from_config(&cfg)).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let (w, h) = dets[0].input_size();
    let backend = dets[0].info().backend.clone();

    // Decode and letterbox up front so only session calls are timed. A
    // small set of distinct frames is cycled through: the inputs stay in
    // cache and memory stays small (795 frames would be 3.9 GB of tensors),
    // which favours the bare loop, as a floor should.
    const DISTINCT: usize = 32;
    let mut src = VideoSource::open(video, &SourceOptions::default()).map_err(|e| e.to_string())?;
    let mut tensors = Vec::new();
    while tensors.len() < DISTINCT.max(batch) {
        match src.read().map_err(|e| e.to_string())? {
            Some(f) => tensors.push(
                preprocess::preprocess(&f.image, w, h)
                    .map_err(|e| e.to_string())?
                    .tensor,
            ),
            None => break,
        }
    }
    if tensors.len() < batch {
        return Err(format!("{video}: fewer than {batch} frames"));
    }
    let batches: Vec<Vec<f32>> = tensors
        .chunks(batch)
        .filter(|c| c.len() == batch)
        .map(|c| c.concat())
        .collect();
    let per_session = frames / batch / sessions;
    for d in &mut dets {
        d.warm_up().map_err(|e| e.to_string())?;
    }
    let start = std::sync::Barrier::new(sessions + 1);
    let mut t = Instant::now();
    let mut latencies: Vec<f64> = Vec::new();
    std::thread::scope(|scope| -> Result<(), String> {
        let runs: Vec<_> = dets
            .iter_mut()
            .map(|det| {
                let (batches, start) = (&batches, &start);
                scope.spawn(move || -> Result<Vec<f64>, String> {
                    start.wait();
                    let mut calls = Vec::with_capacity(per_session);
                    for b in batches.iter().cycle().take(per_session) {
                        // No output copy: session calls alone.
                        let c = Instant::now();
                        det.run_only(b, batch).map_err(|e| e.to_string())?;
                        calls.push(c.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok(calls)
                })
            })
            .collect();
        start.wait();
        t = Instant::now();
        for r in runs {
            latencies.extend(
                r.join()
                    .map_err(|_| "a session thread panicked".to_string())??,
            );
        }
        Ok(())
    })?;
    latencies.sort_by(f64::total_cmp);
    // Per session call (one batch): the floor for a request's latency.
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).copied().unwrap_or(f64::NAN)
    };
    let secs = t.elapsed().as_secs_f64();
    let n = per_session * sessions * batch;
    println!(
        "{{\"frames\": {n}, \"seconds\": {secs:.3}, \"fps\": {:.3}, \"p50_ms\": {:.2}, \"p95_ms\": {:.2}, \"batch\": {batch}, \"threads\": {threads}, \"sessions\": {sessions}, \"device\": \"{}\", \"precision\": \"{}\", \"backend\": \"{}\"}}",
        n as f64 / secs,
        pct(0.5),
        pct(0.95),
        backend.device,
        backend.precision,
        backend.runtime
    );
    Ok(())
}
