//! The OpenVINO back end on the real runtime (`onnxruntime-openvino`'s
//! library, which `make setup` fetches), the real model and the sample photos
//! and clip. ort loads one ONNX Runtime per process, so every detector in
//! this file names that library explicitly; the CPU-provider FP32 reference
//! runs on the same library, in the same test, so each agreement figure
//! compares against detections computed moments before, never stored ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::path::PathBuf;

use vigil_core::config::{Count, Device, ModelConfig, Precision};
use vigil_core::{Detection, ImageBgr};
use vigil_detect::agreement::compare;
use vigil_detect::runtime::SETUP_OPENVINO_LIBRARY;
use vigil_detect::{image_io, CpuFeatures, Detector, DetectorOptions, ResolvedDevice};
use vigil_video::{SourceOptions, VideoSource};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(device: Device, precision: Precision) -> ModelConfig {
    let lib = root().join(SETUP_OPENVINO_LIBRARY);
    assert!(lib.is_file(), "{} missing: run `make setup`", lib.display());
    let path = root().join("models/yolov12n-dyn.onnx");
    assert!(
        path.is_file(),
        "{} missing: run `make setup`",
        path.display()
    );
    ModelConfig {
        path,
        device,
        precision,
        // The tests of this file run in parallel on a shared machine.
        intra_threads: Count::Fixed(1),
        ort_library: Some(lib),
        ..ModelConfig::default()
    }
}

fn load(device: Device, precision: Precision) -> Detector {
    Detector::load(&DetectorOptions::single(&config(device, precision))).expect("model loads")
}

/// The four sample photos and every 25th frame of the sample clip (the
/// benchmark uses every 5th; this keeps the test lean).
fn images() -> Vec<ImageBgr> {
    let mut out: Vec<ImageBgr> = ["dog", "person", "horses", "giraffe"]
        .iter()
        .map(|p| image_io::load_image(&root().join(format!("data/photos/{p}.jpg"))).expect("photo"))
        .collect();
    let mut src = VideoSource::open(
        root()
            .join("data/video/vtest.avi")
            .to_str()
            .expect("utf-8 path"),
        &SourceOptions::default(),
    )
    .expect("sample clip");
    for i in 0..200 {
        match src.read().expect("decode") {
            Some(f) if i % 25 == 0 => out.push(f.image),
            Some(_) => {}
            None => break,
        }
    }
    assert!(out.len() >= 10, "too few frames: {}", out.len());
    out
}

fn detect_all(d: &mut Detector, images: &[ImageBgr]) -> Vec<Vec<Detection>> {
    images
        .iter()
        .map(|img| d.detect(&[img]).expect("detect").remove(0))
        .collect()
}

#[test]
fn openvino_agrees_with_the_cpu_provider_in_fp32_and_bf16() {
    let imgs = images();
    let mut reference = load(Device::Cpu, Precision::Fp32);
    assert_eq!(reference.info().backend.device, ResolvedDevice::Cpu);
    assert_eq!(reference.info().backend.precision, Precision::Fp32);
    let want = detect_all(&mut reference, &imgs);
    let boxes: usize = want.iter().map(Vec::len).sum();
    assert!(boxes >= 50, "the reference found only {boxes} boxes");

    let mut fp32 = load(Device::Openvino, Precision::Fp32);
    assert_eq!(fp32.info().backend.device, ResolvedDevice::Openvino);
    assert_eq!(fp32.info().backend.precision, Precision::Fp32);
    let a = compare(&want, &detect_all(&mut fp32, &imgs), 0.9);
    eprintln!("OpenVINO FP32 vs CPU FP32 at IoU 0.9: {a}");
    assert!(a.ratio() >= 0.98, "OpenVINO FP32 agreement {a}");

    if !CpuFeatures::detect().bf16 {
        eprintln!("this CPU has no BF16; the BF16 agreement is not measured here");
        return;
    }
    let mut bf16 = load(Device::Openvino, Precision::Bf16);
    assert_eq!(bf16.info().backend.precision, Precision::Bf16);
    let got = detect_all(&mut bf16, &imgs);
    let a = compare(&want, &got, 0.9);
    eprintln!("OpenVINO BF16 vs CPU FP32 at IoU 0.9: {a}");
    assert!(a.ratio() >= 0.98, "OpenVINO BF16 agreement {a}");
    // BF16 is not FP32 with another name: scores move in the third digit.
    let moved = want
        .iter()
        .flatten()
        .zip(got.iter().flatten())
        .any(|(x, y)| (x.score - y.score).abs() > 1e-4);
    assert!(
        moved,
        "BF16 scores equal FP32 to 1e-4: the hint did not apply"
    );
}

/// `auto` without CUDA, from the runtime build that has OpenVINO: OpenVINO
/// BF16 on an Intel CPU with AMX-BF16, else the CPU provider (OpenVINO ran
/// no faster end to end without AMX, BENCHMARKS.md), saying why either way.
#[test]
fn auto_takes_openvino_only_with_amx_and_the_cpu_provider_otherwise() {
    let d = load(Device::Auto, Precision::Auto);
    let b = &d.info().backend;
    assert_eq!(b.runtime, "onnxruntime-1.24.1");
    let reason = b.reason.as_deref().unwrap_or_default();
    if vigil_detect::runtime::auto_prefers_openvino(CpuFeatures::detect()) {
        assert_eq!(b.device, ResolvedDevice::Openvino, "{reason}");
        assert_eq!(b.precision, Precision::Bf16);
        assert!(
            reason.contains("CUDA unavailable") && reason.contains("AMX-BF16"),
            "auto must say why it chose OpenVINO: {reason}"
        );
    } else {
        assert_eq!(b.device, ResolvedDevice::Cpu, "{reason}");
        assert_eq!(b.precision, Precision::Fp32);
        assert!(
            reason.contains("CUDA unavailable") && reason.contains("device = \"openvino\""),
            "auto must say why it chose the CPU provider: {reason}"
        );
    }
}

#[test]
fn impossible_precisions_are_refused_naming_the_fix() {
    let e = Detector::load(&DetectorOptions::single(&config(
        Device::Openvino,
        Precision::Int8,
    )))
    .err()
    .expect("an FP32 model cannot run as INT8")
    .to_string();
    assert!(e.contains("vigil model quantize"), "{e}");
    assert!(e.contains("yolov12n-dyn.onnx"), "{e}");
    let e = Detector::load(&DetectorOptions::single(&config(
        Device::Cpu,
        Precision::Bf16,
    )))
    .err()
    .expect("the CPU provider has no BF16")
    .to_string();
    assert!(e.contains("openvino"), "{e}");
}
