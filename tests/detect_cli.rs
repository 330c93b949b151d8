//! `vigil detect` end to end: the real binary, model, runtime and photos.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use serde_json::Value;
use support::{assert_clean_error, data, model_fixed, run};

struct Expect {
    label: &'static str,
    score: f32,
    bbox: [f32; 4],
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

fn bbox(d: &Value) -> [f32; 4] {
    let v: Vec<f32> = d["bbox"]
        .as_array()
        .expect("bbox array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect();
    [v[0], v[1], v[2], v[3]]
}

/// The reference detections from the data README (Ultralytics-style pipeline).
fn assert_matches(line: &Value, expected: &[Expect]) {
    let dets = line["detections"].as_array().expect("detections");
    assert_eq!(dets.len(), expected.len(), "{line}");
    for e in expected {
        let hit = dets.iter().find(|d| {
            d["label"] == e.label
                && iou(bbox(d), e.bbox) >= 0.9
                && (d["score"].as_f64().expect("score") as f32 - e.score).abs() <= 0.02
        });
        assert!(
            hit.is_some(),
            "no match for {} {:?} in {line}",
            e.label,
            e.bbox
        );
    }
}

#[test]
fn photos_match_the_reference_detections() {
    let photos = ["dog.jpg", "person.jpg", "giraffe.jpg", "horses.jpg"]
        .map(|p| data(&format!("photos/{p}")));
    let mut args = vec!["detect", "--model", model_fixed().to_str().expect("utf8")]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(photos.iter().map(|p| p.display().to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, stdout, stderr) = run(&argv);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["width"], 768);
    assert_eq!(lines[0]["height"], 576);
    assert!(lines[0]["source"]
        .as_str()
        .expect("source")
        .ends_with("dog.jpg"));
    let e = |label, score, bbox| Expect { label, score, bbox };
    assert_matches(
        &lines[0],
        &[
            e("bicycle", 0.913, [127., 128., 567., 420.]),
            e("dog", 0.868, [131., 222., 311., 543.]),
            e("car", 0.715, [469., 73., 688., 171.]),
        ],
    );
    assert_matches(
        &lines[1],
        &[
            e("horse", 0.929, [406., 139., 601., 347.]),
            e("person", 0.912, [191., 98., 275., 376.]),
            e("dog", 0.856, [65., 265., 206., 346.]),
        ],
    );
    assert_matches(
        &lines[2],
        &[
            e("giraffe", 0.891, [167., 28., 451., 442.]),
            e("zebra", 0.874, [247., 204., 427., 440.]),
        ],
    );
    // benches/reference.py (onnxruntime + OpenCV, nothing from vigil) on the
    // same model: five horses, the two at the left edge clipped to x = 0.
    assert_matches(
        &lines[3],
        &[
            e("horse", 0.937, [0., 187., 314., 410.]),
            e("horse", 0.915, [436., 212., 596., 348.]),
            e("horse", 0.863, [233., 197., 419., 363.]),
            e("horse", 0.811, [0., 187., 154., 282.]),
            e("horse", 0.621, [371., 211., 457., 324.]),
        ],
    );
    assert_eq!(
        (&lines[3]["width"], &lines[3]["height"]),
        (&773.into(), &512.into())
    );
    for h in lines[3]["detections"].as_array().expect("detections") {
        assert_eq!(h["class_id"], 17, "{h}");
        let b = bbox(h);
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= 773.0 && b[3] <= 512.0,
            "not clipped to the image: {h}"
        );
    }
}

fn labels(stdout: &str) -> Vec<String> {
    let line: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    line["detections"]
        .as_array()
        .expect("detections")
        .iter()
        .map(|d| d["label"].as_str().expect("label").to_string())
        .collect()
}

#[test]
fn conf_flag_and_classes_setting_filter_the_detections() {
    let dog = data("photos/dog.jpg");
    let model = model_fixed();
    let (dog, model) = (dog.to_str().expect("utf8"), model.to_str().expect("utf8"));
    // Unfiltered: bicycle 0.91, dog 0.87, car 0.72 (see above).
    let (out, stdout, stderr) = run(&["detect", dog, "--model", model]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(labels(&stdout), ["bicycle", "dog", "car"]);

    let (out, stdout, stderr) = run(&["detect", dog, "--model", model, "--conf", "0.8"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        labels(&stdout),
        ["bicycle", "dog"],
        "--conf 0.8 drops the car"
    );

    // model.classes keeps only the listed COCO ids: 16 = dog, 2 = car.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("classes.toml");
    std::fs::write(&cfg, "[model]\nclasses = [16, 2]\n").expect("write config");
    let cfg = cfg.to_str().expect("utf8");
    let (out, stdout, stderr) = run(&["--config", cfg, "detect", dog, "--model", model]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(labels(&stdout), ["dog", "car"], "classes = [16, 2]");
}

#[test]
fn missing_image_is_a_clean_error() {
    let (out, _, stderr) = run(&[
        "detect",
        "--model",
        model_fixed().to_str().expect("utf8"),
        "no/such/photo.jpg",
    ]);
    assert_clean_error(&out, &stderr, "no/such/photo.jpg");
}

#[test]
fn empty_and_text_images_are_clean_errors_and_good_ones_still_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").expect("write");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"this is not a picture\n").expect("write");
    let dog = data("photos/dog.jpg");
    let (out, stdout, stderr) = run(&[
        "detect",
        "--model",
        model_fixed().to_str().expect("utf8"),
        empty.to_str().expect("utf8"),
        dog.to_str().expect("utf8"),
        text.to_str().expect("utf8"),
    ]);
    assert_clean_error(&out, &stderr, "empty.jpg");
    assert!(stderr.contains("empty.jpg: file is empty"), "{stderr}");
    assert!(
        stderr.contains("notes.jpg: not a readable image"),
        "{stderr}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "the good image is still reported"
    );
    assert!(stdout.contains("dog.jpg"));
}

#[test]
fn random_bytes_as_model_is_a_clean_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("garbage.onnx");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&model, bytes).expect("write");
    let (out, _, stderr) = run(&[
        "detect",
        "--model",
        model.to_str().expect("utf8"),
        data("photos/dog.jpg").to_str().expect("utf8"),
    ]);
    assert_clean_error(&out, &stderr, "garbage.onnx");
}

#[test]
fn valid_onnx_with_wrong_output_shape_is_a_clean_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("identity.onnx");
    std::fs::write(&model, support::identity_model(&[1, 3, 640, 640])).expect("write");
    let (out, _, stderr) = run(&[
        "detect",
        "--model",
        model.to_str().expect("utf8"),
        data("photos/dog.jpg").to_str().expect("utf8"),
    ]);
    assert_clean_error(&out, &stderr, "identity.onnx");
    assert!(
        stderr.contains("output") && stderr.contains("4+classes"),
        "{stderr}"
    );
}

#[test]
fn missing_model_says_to_run_setup() {
    let (out, _, stderr) = run(&[
        "detect",
        "--model",
        "models/nope.onnx",
        data("photos/dog.jpg").to_str().expect("utf8"),
    ]);
    assert_clean_error(&out, &stderr, "models/nope.onnx");
    assert!(stderr.contains("make setup"), "{stderr}");
}

#[test]
fn bad_flag_values_name_the_flag() {
    let (out, _, stderr) = run(&[
        "detect",
        "--conf",
        "7",
        data("photos/dog.jpg").to_str().expect("utf8"),
    ]);
    assert_clean_error(&out, &stderr, "model.conf");
    let (out, _, stderr) = run(&[
        "detect",
        "--device",
        "tpu",
        data("photos/dog.jpg").to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    assert!(stderr.contains("tpu"), "{stderr}");
}

#[test]
fn config_check_names_bad_keys_including_zones() {
    let (out, _, stderr) = run(&["config", "check", "configs/vigil.toml"]);
    assert!(out.status.success(), "{stderr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[streams]]\nid = \"door\"\nurl = \"x.mp4\"\n\
         zones = [{ name = \"z\", points = [[0, 0], [1, 0], [1, 1]], bogus = 1 }]\n",
    )
    .expect("write");
    let (out, _, stderr) = run(&["config", "check", bad.to_str().expect("utf8")]);
    assert_clean_error(&out, &stderr, "streams[door].zones[0]");
    assert!(stderr.contains("bogus"), "{stderr}");
    std::fs::write(&bad, "[model]\nconf = 2.0\n[batch]\nmax_size = 0\n").expect("write");
    let (out, _, stderr) = run(&["config", "check", bad.to_str().expect("utf8")]);
    assert_clean_error(&out, &stderr, "model.conf");
    assert!(stderr.contains("batch.max_size"), "{stderr}");
}
