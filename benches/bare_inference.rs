//! Bare inference throughput: session calls alone, on frames decoded and
//! letterboxed beforehand, for comparison with `vigil annotate` (the whole
//! pipeline) at the same batch size and thread count.
//!
//! Usage: bare-inference VIDEO [--batch B] [--frames N] [--threads T]
//! Prints one JSON line: {"frames", "seconds", "fps", "batch", "threads"}.

use std::time::Instant;

use vigil_core::config::{Device, ModelConfig};
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

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let video = args
        .get(1)
        .ok_or("usage: bare-inference VIDEO [--batch B] [--frames N] [--threads T]")?;
    let batch = arg(&args, "--batch", 4)?.max(1);
    let frames = arg(&args, "--frames", 200)?.max(batch);
    let threads = arg(&args, "--threads", 0)?;
    let cfg = ModelConfig {
        path: vigil_benches::require("models/yolov12n-dyn.onnx"),
        device: Device::Cpu,
        intra_threads: threads,
        ..ModelConfig::default()
    };
    let mut det = Detector::load(&DetectorOptions::from_config(&cfg)).map_err(|e| e.to_string())?;
    let (w, h) = det.input_size();

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
    let calls = frames / batch;
    det.warm_up().map_err(|e| e.to_string())?;
    let t = Instant::now();
    for b in batches.iter().cycle().take(calls) {
        // No output copy: session calls alone.
        det.run_only(b, batch).map_err(|e| e.to_string())?;
    }
    let secs = t.elapsed().as_secs_f64();
    let n = calls * batch;
    println!(
        "{{\"frames\": {n}, \"seconds\": {secs:.3}, \"fps\": {:.3}, \"batch\": {batch}, \"threads\": {threads}}}",
        n as f64 / secs
    );
    Ok(())
}
