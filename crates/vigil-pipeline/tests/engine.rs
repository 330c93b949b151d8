//! The shared engine with the real detector, for what the fake detector of
//! `scheduler.rs` cannot show: an image submitted while a stream keeps the
//! batcher busy goes through the engine's preprocessing and batched
//! inference on the real (batch-dynamic) model and gets the detections the
//! detector gives it alone, so the engine's letterboxing, batching and
//! per-frame split of the model's output lose nothing. Scheduling itself (order, skipping, batch sizes,
//! `max_wait_ms`, fairness, drops, backpressure, stop) is proved on the
//! fake detector in `scheduler.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::time::{Duration, Instant, SystemTime};

use vigil_core::config::BatchConfig;
use vigil_core::{FrameIndex, ImageBgr, PtsMs};
use vigil_detect::{Detector, DetectorOptions};
use vigil_pipeline::{
    Engine, EngineConfig, FrameResult, FrameSink, FrameSource, SourceFrame, StreamHandle,
    StreamOptions, StreamSummary,
};

fn detector() -> Detector {
    let model = vigil_testkit::repo_root().join("models/yolov12n-dyn.onnx");
    assert!(
        model.is_file(),
        "{} missing: run `make setup`",
        model.display()
    );
    // One intra-op thread: tests run in parallel on a small machine.
    let cfg = vigil_core::config::ModelConfig {
        path: model,
        device: vigil_core::config::Device::Cpu,
        intra_threads: vigil_core::config::Count::Fixed(1),
        ..Default::default()
    };
    Detector::load(&DetectorOptions::from_config(&cfg)).expect("load model")
}

fn engine(max_size: usize, max_wait_ms: u64) -> Engine {
    Engine::start(
        detector(),
        EngineConfig {
            batch: BatchConfig {
                max_size,
                max_wait_ms,
            },
            preprocess_threads: 2,
            ..EngineConfig::default()
        },
    )
}

/// A synthetic source: `n` frames at 25 fps media time, a bright square
/// moving across a grey background.
struct Synthetic {
    n: u64,
    next: u64,
}

impl FrameSource for Synthetic {
    fn next_frame(&mut self) -> Result<Option<SourceFrame>, vigil_pipeline::PipelineError> {
        if self.next >= self.n {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        let (w, h) = (160u32, 120u32);
        let mut img = ImageBgr::filled(w, h, [90, 90, 90]);
        let x0 = (i as usize * 3) % (w as usize - 20);
        for y in 40..60 {
            for x in x0..x0 + 20 {
                let o = (y * w as usize + x) * 3;
                img.data_mut()[o..o + 3].copy_from_slice(&[250, 250, 250]);
            }
        }
        Ok(Some(SourceFrame {
            index: FrameIndex(i),
            pts: PtsMs(i as f64 * 40.0),
            captured_at: SystemTime::now(),
            captured: Instant::now(),
            image: img,
        }))
    }
    fn is_live(&self) -> bool {
        false
    }
    fn fps(&self) -> f64 {
        25.0
    }
}

/// A sink that keeps nothing: the stream only keeps the batcher busy.
struct Discard;

impl FrameSink for Discard {
    fn on_frame(&mut self, _r: FrameResult) -> Result<(), vigil_pipeline::PipelineError> {
        Ok(())
    }
    fn finish(&mut self, _s: &StreamSummary) -> Result<(), vigil_pipeline::PipelineError> {
        Ok(())
    }
}

/// Joins a stream with a time limit: a stream that never ends fails the
/// test naming it instead of hanging the run.
fn join(h: StreamHandle) -> StreamSummary {
    vigil_testkit::join_bounded(
        std::thread::spawn(move || h.join()),
        Duration::from_secs(180),
        "the stream",
    )
}

fn synthetic(n: u64) -> Box<Synthetic> {
    Box::new(Synthetic { n, next: 0 })
}

#[test]
fn still_images_ride_the_shared_batcher_with_identical_results() {
    let img = vigil_detect::image_io::load_image(&vigil_testkit::data("photos/dog.jpg"))
        .expect("dog.jpg");
    let direct = detector().detect(&[&img]).expect("direct").remove(0);
    let e = engine(4, 10);
    // A stream keeps the batcher busy while images are submitted.
    let h = e.add_stream(
        synthetic(30),
        Box::new(Discard),
        None,
        StreamOptions::new("busy"),
    );
    let via_engine = e.detect_image(img.clone()).expect("engine detect");
    join(h);
    e.shutdown();
    assert_eq!(via_engine.len(), direct.len());
    for (a, b) in via_engine.iter().zip(&direct) {
        assert_eq!(a.class_id, b.class_id);
        assert!((a.score - b.score).abs() < 1e-4);
        assert!(a.bbox.iou(&b.bbox) > 0.999);
    }
}
