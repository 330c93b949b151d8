//! Where a `POST /v1/detect` request's time goes, in process and without
//! HTTP: P50 of a bare session call beside the decode of the JPEG, the
//! engine's path (scheduler, letterbox, batcher, session, NMS) and both
//! together, interleaved so machine noise hits all of them alike.
//!
//! Usage: detect-path IMAGE [--threads T] [--sessions S] [--requests N]
//! (defaults: 1 thread, 2 sessions: the `auto` config on 2 cores).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench fails loudly on broken setup

use std::time::{Duration, Instant};

use vigil_core::config::{Count, Device, ModelConfig};
use vigil_detect::{image_io, preprocess, Detector, DetectorOptions};
use vigil_pipeline::{BatchDetector, Engine, EngineConfig};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn p50(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let image = args
        .get(1)
        .expect("usage: detect-path IMAGE [--threads T] [--sessions S]");
    let threads = arg(&args, "--threads", 1);
    let sessions = arg(&args, "--sessions", 2);
    let n = arg(&args, "--requests", 40);
    let cfg = ModelConfig {
        path: vigil_benches::require("models/yolov12n-dyn.onnx"),
        device: Device::Cpu,
        intra_threads: Count::Fixed(threads),
        ..ModelConfig::default()
    };
    let load = || Detector::load(&DetectorOptions::from_config(&cfg)).expect("model");
    let mut bare = load();
    let engine = Engine::start_sessions(
        (0..sessions)
            .map(|_| Box::new(load()) as Box<dyn BatchDetector>)
            .collect(),
        EngineConfig::default(),
    );
    let bytes = std::fs::read(image).expect("image");
    let (w, h) = bare.input_size();
    // What `POST /v1/detect` decodes: sized for the model's input.
    let decode = || {
        image_io::decode_upload(&bytes, "image", u64::MAX, Some((w, h)))
            .expect("decode")
            .image
    };
    let img = decode();
    let prepared = preprocess::preprocess(&img, w, h).expect("letterbox");
    let (mut t_bare, mut t_dec, mut t_pre, mut t_eng, mut t_all) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n + 3 {
        let t = Instant::now();
        bare.run_only(&prepared.tensor, 1).expect("run");
        let d_bare = t.elapsed();
        let t = Instant::now();
        let dec = decode();
        let d_dec = t.elapsed();
        let t = Instant::now();
        let _ = preprocess::preprocess(&dec, w, h).expect("letterbox");
        let d_pre = t.elapsed();
        let t = Instant::now();
        engine.detect_image(dec).expect("engine");
        let d_eng = t.elapsed();
        let t = Instant::now();
        engine.detect_image(decode()).expect("engine");
        let d_all = t.elapsed();
        if i >= 3 {
            t_bare.push(d_bare);
            t_dec.push(d_dec);
            t_pre.push(d_pre);
            t_eng.push(d_eng);
            t_all.push(d_all);
        }
    }
    let conc = arg(&args, "--concurrency", 2);
    let t = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..conc {
            sc.spawn(|| {
                for _ in 0..n / conc {
                    engine.detect_image(decode()).expect("engine");
                }
            });
        }
    });
    let rps = (n / conc * conc) as f64 / t.elapsed().as_secs_f64();
    let b = p50(&mut t_bare);
    let all = p50(&mut t_all);
    println!(
        "{{\"bare_ms\": {b:.2}, \"decode_ms\": {:.2}, \"letterbox_ms\": {:.2}, \"engine_ms\": {:.2}, \"decode_engine_ms\": {all:.2}, \"ratio\": {:.3}, \"rps_c{conc}\": {rps:.2}, \"threads\": {threads}, \"sessions\": {sessions}}}",
        p50(&mut t_dec),
        p50(&mut t_pre),
        p50(&mut t_eng),
        all / b
    );
}
