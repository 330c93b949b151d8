//! `prepare` against the real default model and the real ONNX Runtime
//! (installed by `make setup`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod common;

use std::path::Path;

use common::*;
use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use prost::Message;
use vigil_core::config::Device;
use vigil_detect::runtime::{create_session, SessionOptions};
use vigil_model::onnx::tensor_proto::DataType;
use vigil_model::{decode_model, prepare, ModelError, PrepareOptions, BATCH_PARAM};

fn session(bytes: &[u8]) -> Session {
    let opts = SessionOptions {
        device: Device::Cpu,
        precision: vigil_core::config::Precision::Fp32,
        intra_threads: 0,
        intra_spinning: true,
        ort_library: None,
    };
    create_session(bytes, &opts).unwrap().0
}

/// Letterboxed 640×640 tensors of the sample photos.
fn photo_tensors(n: usize) -> Vec<Vec<f32>> {
    photos()
        .iter()
        .cycle()
        .take(n)
        .map(|p| {
            let img = vigil_detect::image_io::load_image(p).unwrap();
            vigil_detect::preprocess::preprocess(&img, 640, 640)
                .unwrap()
                .tensor
        })
        .collect()
}

fn run(s: &mut Session, frames: &[Vec<f32>], hw: usize) -> (Vec<i64>, Vec<f32>) {
    let batch: Vec<f32> = frames.iter().flatten().copied().collect();
    let input = s.inputs()[0].name().to_string();
    let t = TensorRef::from_array_view(([frames.len(), 3, hw, hw], &batch[..])).unwrap();
    let out = s.run(ort::inputs![input.as_str() => t]).unwrap();
    let (shape, data) = out[0].try_extract_tensor::<f32>().unwrap();
    (shape.to_vec(), data.to_vec())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn leading_symbol(vt: &ValueType) -> (i64, String) {
    match vt {
        ValueType::Tensor {
            shape,
            dimension_symbols,
            ..
        } => (shape[0], dimension_symbols[0].clone()),
        other => panic!("not a tensor: {other:?}"),
    }
}

#[test]
fn default_model_becomes_batch_dynamic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("yolov12n-dyn.onnx");
    let t0 = std::time::Instant::now();
    let report = prepare(&default_model(), &out, &PrepareOptions::default()).unwrap();
    eprintln!(
        "{} ({:?}; frames {:?}; stats {:?})",
        report.summary(),
        t0.elapsed(),
        report.frames,
        report.stats
    );
    assert!(out.is_file());
    assert_eq!(report.stats.old_batch, Some(1));
    assert_eq!(report.stats.reshape_targets_rewritten, 9);
    assert!(
        report.stats.warnings.is_empty(),
        "{:?}",
        report.stats.warnings
    );
    assert!(report.stats.lossless_roundtrip);
    assert_eq!(report.check_batch, 3);
    assert!(report.max_abs_diff < 1e-3, "{}", report.max_abs_diff);
    assert!(
        report.frames.iter().all(|f| f.ends_with(".jpg")),
        "{:?}",
        report.frames
    );
    assert!(report.summary().contains("9 Reshape targets rewritten"));
    // No temporary file left beside the output.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);

    // Metadata (class names etc.) and the opset survive.
    let orig = decode_model(&std::fs::read(default_model()).unwrap()).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let new = decode_model(&bytes).unwrap();
    assert_eq!(new.metadata_props, orig.metadata_props);
    assert!(new
        .metadata_props
        .iter()
        .any(|kv| kv.key.as_deref() == Some("names")
            && kv.value.as_deref().is_some_and(|v| v.contains("'person'"))));
    assert_eq!(new.opset_import, orig.opset_import);

    // ONNX Runtime sees a symbolic batch on the input and the output.
    let mut dynamic = session(&bytes);
    assert_eq!(
        leading_symbol(dynamic.inputs()[0].dtype()),
        (-1, BATCH_PARAM.to_string())
    );
    assert_eq!(
        leading_symbol(dynamic.outputs()[0].dtype()),
        (-1, BATCH_PARAM.to_string())
    );

    // A batch of 4 equals 4 single runs of the original.
    let frames = photo_tensors(4);
    let (shape, batched) = run(&mut dynamic, &frames, 640);
    assert_eq!(shape, vec![4, 84, 8400]);
    let mut original = session(&std::fs::read(default_model()).unwrap());
    let per = batched.len() / 4;
    let mut worst = 0f32;
    let mut singles = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let (s1, single) = run(&mut original, std::slice::from_ref(f), 640);
        assert_eq!(s1, vec![1, 84, 8400]);
        worst = worst.max(max_diff(&batched[i * per..(i + 1) * per], &single));
        singles.push(single);
    }
    // The frames really differ, so swapped or mixed frames would show.
    for i in 1..singles.len() {
        assert!(max_diff(&singles[0], &singles[i]) > 1.0);
    }
    eprintln!("batch 4 vs single runs: max abs diff {worst:.2e}");
    assert!(worst < 1e-3, "{worst}");
}

#[test]
fn decode_encode_roundtrip_is_exact() {
    let bytes = std::fs::read(default_model()).unwrap();
    let again = decode_model(&bytes).unwrap().encode_to_vec();
    // Byte-identical re-encoding is the whole claim: every field, unknown
    // ones included, survives decode + encode (running both copies through
    // ONNX Runtime would compare the model with itself).
    assert_eq!(again.len(), bytes.len());
    assert!(again == bytes, "re-encoding changed the model bytes");
}

#[test]
fn already_dynamic_model_is_verified_and_copied() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.onnx");
    std::fs::write(&tiny, tiny_model().encode_to_vec()).unwrap();
    let dyn1 = dir.path().join("tiny-dyn.onnx");
    prepare(&tiny, &dyn1, &PrepareOptions::default()).unwrap();
    let dyn2 = dir.path().join("tiny-dyn2.onnx");
    let report = prepare(&dyn1, &dyn2, &PrepareOptions::default()).unwrap();
    assert!(report.stats.already_dynamic);
    assert!(report.summary().contains("already has a dynamic batch"));
    assert_eq!(std::fs::read(&dyn1).unwrap(), std::fs::read(&dyn2).unwrap());
}

#[test]
fn tiny_model_with_shared_and_cloned_targets_passes_the_check() {
    // The hand-built graph exercises cloning, in-place sharing, a Constant
    // target and a `4 × batch` output; ORT must agree frame by frame.
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.onnx");
    std::fs::write(&tiny, tiny_model().encode_to_vec()).unwrap();
    let out = dir.path().join("tiny-dyn.onnx");
    let opts = PrepareOptions {
        check_batch: 4,
        ..PrepareOptions::default()
    };
    let report = prepare(&tiny, &out, &opts).unwrap();
    assert_eq!(report.check_batch, 4);
    assert_eq!(report.stats.reshape_targets_rewritten, 5);
    assert!(report.max_abs_diff < 1e-5, "{}", report.max_abs_diff);
}

#[test]
fn synthetic_frames_are_used_without_photos() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.onnx");
    std::fs::write(&tiny, tiny_model().encode_to_vec()).unwrap();
    let out = dir.path().join("tiny-dyn.onnx");
    let missing = dir.path().join("no-such-photo.jpg");
    // An explicit but unreadable image is an error naming it...
    let opts = PrepareOptions {
        check_images: vec![missing.clone()],
        ..PrepareOptions::default()
    };
    let err = prepare(&tiny, &out, &opts).unwrap_err();
    assert!(err.to_string().contains("no-such-photo.jpg"), "{err}");
    assert!(!out.exists());
    // ...while one real image is topped up with synthetic frames.
    let opts = PrepareOptions {
        check_images: vec![photos()[0].clone()],
        ..PrepareOptions::default()
    };
    let report = prepare(&tiny, &out, &opts).unwrap();
    assert_eq!(report.frames.len(), 3);
    assert!(report.frames[1].starts_with("synthetic"));
}

fn assert_nothing_written(out: &Path) {
    assert!(!out.exists(), "{} was written", out.display());
    let dir = out.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn failed_check_writes_nothing() {
    // ReduceSum over axis 0 mixes the frames of a batch: no Reshape rewrite
    // can fix that, so the batch check must refuse to write.
    let mut m = tiny_model();
    let g = m.graph.as_mut().unwrap();
    let mut mix = node("ReduceSum", "mix", &["y", "axes0"], &["ymix"]);
    mix.attribute.push(int_attr("keepdims", 1));
    g.node.push(mix);
    g.initializer.push(shape_init("axes0", &[0]));
    g.node.push(node("Add", "y2", &["y", "ymix"], &["y2"]));
    g.output[0] = value_info("y2", DataType::Float, &[1, 192]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixing.onnx");
    std::fs::write(&input, m.encode_to_vec()).unwrap();
    let out = dir.path().join("mixing-dyn.onnx");
    let err = prepare(&input, &out, &PrepareOptions::default()).unwrap_err();
    assert!(matches!(err, ModelError::Check { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("mixing.onnx") && msg.contains("batch check failed"),
        "{msg}"
    );
    assert_nothing_written(&out);
}

#[test]
fn random_bytes_are_rejected_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("noise.onnx");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    std::fs::write(&input, noise).unwrap();
    let out = dir.path().join("out.onnx");
    let err = prepare(&input, &out, &PrepareOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("noise.onnx"), "{msg}");
    assert!(msg.contains("not an ONNX model"), "{msg}");
    assert_nothing_written(&out);
}

#[test]
fn missing_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("nope.onnx");
    let out = dir.path().join("out.onnx");
    let err = prepare(&input, &out, &PrepareOptions::default()).unwrap_err();
    assert!(matches!(err, ModelError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.onnx"), "{err}");
    assert_nothing_written(&out);
}

#[test]
fn non_image_model_is_rejected_naming_the_file() {
    let mut m = tiny_model();
    m.graph.as_mut().unwrap().input[0] = value_info("x", DataType::Float, &[1, 192]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("flat.onnx");
    std::fs::write(&input, m.encode_to_vec()).unwrap();
    let out = dir.path().join("out.onnx");
    let err = prepare(&input, &out, &PrepareOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("flat.onnx") && msg.contains("not a YOLO-style model"),
        "{msg}"
    );
    assert_nothing_written(&out);
}

#[test]
fn bad_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let opts = PrepareOptions {
        check_batch: 1,
        ..PrepareOptions::default()
    };
    let err = prepare(&default_model(), &out, &opts).unwrap_err();
    assert!(matches!(err, ModelError::Options(_)), "{err}");
    assert_nothing_written(&out);
}
