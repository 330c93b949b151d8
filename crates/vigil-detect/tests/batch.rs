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

/// Whether this run is on a GPU machine with ONNX Runtime's CUDA build
/// (`scripts/gpu-check.sh` sets `VIGIL_TEST_CUDA=1` and points
/// `ORT_DYLIB_PATH` at `third_party/onnxruntime-gpu/`). Everywhere else —
/// CI, developer machines — the CPU build is loaded and the CUDA request
/// must fail in one specific way.
fn expect_cuda() -> bool {
    match std::env::var("VIGIL_TEST_CUDA").as_deref() {
        Ok("1") => true,
        Ok("0") | Err(_) => false,
        Ok(other) => panic!("VIGIL_TEST_CUDA must be 0 or 1, is {other:?}"),
    }
}

fn cuda_config(device: Device) -> ModelConfig {
    ModelConfig {
        path: root().join("models/yolov12n-dyn.onnx"),
        device,
        ..ModelConfig::default()
    }
}

/// Without a CUDA build (CI, developer machines) a `cuda` request fails in
/// one specific way; on a GPU machine (`scripts/gpu-check.sh`) the session
/// really runs on CUDA and its boxes are the CPU session's.
#[test]
fn cuda_is_used_when_present_and_refused_naming_the_missing_library_when_not() {
    let loaded = Detector::load(&DetectorOptions::from_config(&cuda_config(Device::Cuda)));
    if !expect_cuda() {
        let err = loaded
            .err()
            .expect("the CPU build of ONNX Runtime cannot give a CUDA session")
            .to_string();
        // The request, what is missing, which library was loaded, and how
        // to get the CUDA build.
        for needle in [
            "device cuda requested but the CUDA execution provider failed",
            "has no CUDA execution provider",
            "libonnxruntime_providers_cuda.so is not beside it",
            "third_party/onnxruntime/libonnxruntime.so",
            "VIGIL_ORT_FLAVOR=gpu make setup",
        ] {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
        return;
    }
    let mut gpu = loaded.expect("a CUDA session on a GPU machine with the CUDA build");
    assert_eq!(gpu.info().device.to_string(), "cuda");
    let mut cpu = detector("models/yolov12n-dyn.onnx");
    assert_eq!(cpu.info().device.to_string(), "cpu");
    let imgs = photos();
    let refs: Vec<&ImageBgr> = imgs.iter().collect();
    let on_gpu = gpu.detect(&refs).expect("GPU batch");
    let on_cpu = cpu.detect(&refs).expect("CPU batch");
    // Same boxes; GPU kernels round differently, so a little more slack on
    // the score than between two CPU runs.
    assert_eq!(on_gpu.len(), on_cpu.len());
    for (g, c) in on_gpu.iter().zip(&on_cpu) {
        assert_eq!(g.len(), c.len(), "{g:?} vs {c:?}");
        assert!(!g.is_empty(), "every photo has objects");
        for (d, e) in g.iter().zip(c) {
            assert_eq!(d.class_id, e.class_id);
            assert!((d.score - e.score).abs() < 5e-3, "{d:?} vs {e:?}");
            assert!(d.bbox.iou(&e.bbox) > 0.98, "{d:?} vs {e:?}");
        }
    }
}

#[test]
fn auto_device_resolves_to_the_device_this_machine_has() {
    let d = Detector::load(&DetectorOptions::from_config(&cuda_config(Device::Auto)))
        .expect("auto always loads");
    let got = d.info().device.to_string();
    if expect_cuda() {
        assert_eq!(got, "cuda");
    } else {
        // Without CUDA, auto takes the CPU provider here: the harness's
        // ONNX Runtime library has no OpenVINO provider.
        assert_eq!(got, "cpu");
    }
}
