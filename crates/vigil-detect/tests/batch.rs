//! Batched detection on the real model and runtime equals per-image detection,
//! both with the batch-dynamic model (one session call) and the fixed-batch
//! export (one call per frame).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::path::PathBuf;

use vigil_core::config::{Device, ModelConfig};
use vigil_core::ImageBgr;
use vigil_detect::{image_io, Detector, DetectorOptions};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn detector(model: &str) -> Detector {
    let path = root().join(model);
    assert!(
        path.is_file(),
        "{} missing: run `make setup`",
        path.display()
    );
    let cfg = ModelConfig {
        path,
        device: Device::Cpu,
        ..ModelConfig::default()
    };
    Detector::load(&DetectorOptions::from_config(&cfg)).expect("model loads")
}

fn photos() -> Vec<ImageBgr> {
    ["dog", "person", "horses", "giraffe"]
        .iter()
        .map(|p| image_io::load_image(&root().join(format!("data/photos/{p}.jpg"))).expect("photo"))
        .collect()
}

fn assert_same(a: &[Vec<vigil_core::Detection>], b: &[Vec<vigil_core::Detection>]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len(), "{x:?} vs {y:?}");
        for (d, e) in x.iter().zip(y) {
            assert_eq!(d.class_id, e.class_id);
            assert!((d.score - e.score).abs() < 1e-3, "{d:?} vs {e:?}");
            assert!(d.bbox.iou(&e.bbox) > 0.99, "{d:?} vs {e:?}");
        }
    }
}

#[test]
fn batch_of_four_equals_four_single_runs() {
    let imgs = photos();
    let refs: Vec<&ImageBgr> = imgs.iter().collect();
    let mut det = detector("models/yolov12n-dyn.onnx");
    assert_eq!(
        det.info().fixed_batch,
        None,
        "setup's model has a dynamic batch"
    );
    let batched = det.detect(&refs).expect("batch");
    let single: Vec<_> = refs
        .iter()
        .map(|i| det.detect(&[*i]).expect("single").remove(0))
        .collect();
    assert_same(&batched, &single);
    assert!(batched.iter().all(|d| !d.is_empty()));
}

#[test]
fn fixed_batch_model_still_batches_by_looping() {
    let imgs = photos();
    let refs: Vec<&ImageBgr> = imgs.iter().collect();
    let mut fixed = detector("models/yolov12n.onnx");
    assert_eq!(fixed.info().fixed_batch, Some(1));
    let mut dynamic = detector("models/yolov12n-dyn.onnx");
    assert_same(
        &fixed.detect(&refs).expect("fixed"),
        &dynamic.detect(&refs).expect("dynamic"),
    );
}

#[test]
fn labels_come_from_model_metadata() {
    let det = detector("models/yolov12n-dyn.onnx");
    let info = det.info();
    assert_eq!(info.num_classes, 80);
    assert_eq!(info.labels[0], "person");
    assert_eq!(info.labels[79], "toothbrush");
    assert_eq!((info.width, info.height), (640, 640));
}

#[test]
fn wrong_imgsz_for_a_fixed_model_is_an_error() {
    let cfg = ModelConfig {
        path: root().join("models/yolov12n.onnx"),
        device: Device::Cpu,
        imgsz: Some(320),
        ..ModelConfig::default()
    };
    let err = Detector::load(&DetectorOptions::from_config(&cfg))
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("fixed at 640x640") && err.contains("320"),
        "{err}"
    );
}

#[test]
fn cuda_request_without_cuda_fails_clearly_and_auto_falls_back() {
    let mut cfg = ModelConfig {
        path: root().join("models/yolov12n-dyn.onnx"),
        device: Device::Cuda,
        ..ModelConfig::default()
    };
    // The CPU wheel has no CUDA provider; on a GPU machine with onnxruntime-gpu
    // this succeeds, which is also fine.
    match Detector::load(&DetectorOptions::from_config(&cfg)) {
        Ok(d) => assert_eq!(d.info().device.to_string(), "cuda"),
        Err(e) => assert!(e.to_string().contains("cuda"), "{e}"),
    }
    cfg.device = Device::Auto;
    let d = Detector::load(&DetectorOptions::from_config(&cfg)).expect("auto loads");
    assert!(["cpu", "cuda"].contains(&d.info().device.to_string().as_str()));
}
