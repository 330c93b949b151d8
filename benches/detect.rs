//! Hot paths of detection: letterbox preprocessing, output decoding + NMS,
//! and bare inference at batch 1 and 4 (for the pre/post share of a frame).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use vigil_core::config::{Device, ModelConfig};
use vigil_detect::postprocess::{decode, DecodeParams};
use vigil_detect::preprocess::{preprocess, preprocess_into};
use vigil_detect::{image_io, Detector, DetectorOptions};

fn detector() -> Detector {
    let cfg = ModelConfig {
        path: vigil_benches::require("models/yolov12n-dyn.onnx"),
        device: Device::Cpu,
        ..ModelConfig::default()
    };
    Detector::load(&DetectorOptions::from_config(&cfg)).expect("model")
}

fn benches(c: &mut Criterion) {
    // dog.jpg is 768x576, the size of the sample clip's frames.
    let img = image_io::load_image(&vigil_benches::require("data/photos/dog.jpg")).expect("photo");
    let jpeg = std::fs::read(vigil_benches::require("data/photos/dog.jpg")).expect("photo bytes");
    c.bench_function("decode jpeg 768x576", |b| {
        b.iter(|| image_io::decode_untrusted_image(&jpeg, "bench", u64::MAX).expect("decode"))
    });
    let mut buf = vec![0f32; 3 * 640 * 640];
    c.bench_function("preprocess 768x576->640", |b| {
        b.iter(|| preprocess_into(&img, 640, 640, &mut buf).expect("preprocess"))
    });

    let mut det = detector();
    let prepared = preprocess(&img, 640, 640).expect("preprocess");
    let (shape, out) = det.run_raw(&prepared.tensor, 1).expect("inference");
    let (nc, anchors) = (shape[1] - 4, shape[2]);
    let labels: Vec<String> = det.info().labels.clone();
    let params = DecodeParams::default();
    c.bench_function("decode+nms 8400 anchors", |b| {
        b.iter(|| decode(&out, nc, anchors, &prepared.letterbox, &params, &labels))
    });

    let mut group = c.benchmark_group("inference");
    group.sample_size(10);
    for n in [1usize, 4] {
        let input: Vec<f32> = prepared.tensor.repeat(n);
        group.bench_function(format!("batch {n}"), |b| {
            b.iter_batched(
                || (),
                |()| det.run_raw(&input, n).expect("run"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(detect_benches, benches);
criterion_main!(detect_benches);
