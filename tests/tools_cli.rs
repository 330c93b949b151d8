//! The tool commands end to end through the real binary: `vigil model
//! prepare` (the batch-dynamic copy `make setup` writes) and `vigil track
//! --mot` (the tracker on MOTChallenge text, which benches/mot_eval.py drives).
//! Their libraries have their own tests; these check what a user runs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use support::{assert_clean_error, data, model_fixed, run};

fn detections(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn model_prepare_writes_a_batch_dynamic_model_that_detects_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("dyn.onnx");
    let fixed = model_fixed();
    let (o, _, stderr) = run(&["model", "prepare", s(&fixed), s(&out)]);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("Reshape targets rewritten"),
        "the summary line: {stderr}"
    );
    assert!(out.is_file());
    // Nothing else left in the output directory (no temporary file).
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);

    // The copy takes a batch of 4 in one call, and its answers are the fixed
    // model's, photo by photo.
    let photos = ["dog.jpg", "person.jpg", "giraffe.jpg", "horses.jpg"]
        .map(|p| data(&format!("photos/{p}")));
    let mut base = vec!["detect", "--model"];
    let mut fixed_args = base.clone();
    fixed_args.push(s(&fixed));
    base.push(s(&out));
    base.extend(["--batch", "4"]);
    for p in &photos {
        fixed_args.push(s(p));
        base.push(s(p));
    }
    let (o1, from_fixed, e1) = run(&fixed_args);
    assert!(o1.status.success(), "{e1}");
    let (o2, from_dyn, e2) = run(&base);
    assert!(o2.status.success(), "{e2}");
    let (a, b) = (detections(&from_fixed), detections(&from_dyn));
    assert_eq!(a.len(), 4);
    assert_eq!(b.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        let (dx, dy) = (
            x["detections"].as_array().expect("dets"),
            y["detections"].as_array().expect("dets"),
        );
        assert!(!dx.is_empty(), "{x}");
        assert_eq!(dx.len(), dy.len(), "{x}\n{y}");
        for (p, q) in dx.iter().zip(dy) {
            assert_eq!(p["class_id"], q["class_id"]);
            let (sp, sq) = (
                p["score"].as_f64().expect("score"),
                q["score"].as_f64().expect("score"),
            );
            assert!((sp - sq).abs() < 1e-3, "{p} vs {q}");
            for (u, v) in p["bbox"]
                .as_array()
                .expect("bbox")
                .iter()
                .zip(q["bbox"].as_array().expect("bbox"))
            {
                let (u, v) = (u.as_f64().expect("n"), v.as_f64().expect("n"));
                assert!((u - v).abs() < 0.5, "{p} vs {q}");
            }
        }
    }
}

#[test]
fn model_prepare_refuses_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.onnx");
    let missing = dir.path().join("nope.onnx");
    let (o, _, stderr) = run(&["model", "prepare", s(&missing), s(&out)]);
    assert_clean_error(&o, &stderr, "nope.onnx");
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf model at all").expect("write");
    let (o, _, stderr) = run(&["model", "prepare", s(&junk), s(&out)]);
    assert_clean_error(&o, &stderr, "junk.onnx");
    assert!(!out.exists(), "no output after a failure");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["junk.onnx"], "nothing beside the input");
}

/// Two people walking in opposite directions, 40 frames, never overlapping:
/// `frame,-1,x,y,w,h,score` with 1-based frames.
fn two_walkers() -> String {
    let mut det = String::new();
    for f in 1..=40u32 {
        let a = 10.0 + 4.0 * f as f64;
        let b = 500.0 - 4.0 * f as f64;
        det.push_str(&format!("{f},-1,{a:.1},100.0,40.0,100.0,0.9,-1,-1,-1\n"));
        det.push_str(&format!("{f},-1,{b:.1},300.0,40.0,100.0,0.85,-1,-1,-1\n"));
    }
    det
}

#[test]
fn track_mot_follows_two_walkers_with_two_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let det = dir.path().join("det.txt");
    std::fs::write(&det, two_walkers()).expect("write");
    let (o, stdout, stderr) = run(&["track", "--mot", s(&det), "--fps", "25"]);
    assert!(o.status.success(), "{stderr}");
    // id -> (frames, the y of its boxes)
    let mut tracks: BTreeMap<u64, Vec<(u64, f64)>> = BTreeMap::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 10, "MOT result line: {line}");
        let frame: u64 = f[0].parse().expect("frame");
        let id: u64 = f[1].parse().expect("id");
        let y: f64 = f[3].parse().expect("y");
        assert!((1..=40).contains(&frame), "{line}");
        tracks.entry(id).or_default().push((frame, y));
    }
    assert_eq!(tracks.len(), 2, "two people, two ids: {tracks:?}");
    for (id, rows) in &tracks {
        // Each id stays on its own walker (y 100 or 300), frames ascending,
        // from its confirmation (at most the second frame) to the end.
        let y0 = rows[0].1;
        assert!(
            rows.iter().all(|r| (r.1 - y0).abs() < 5.0),
            "id {id} jumps between walkers: {rows:?}"
        );
        assert!(
            rows.windows(2).all(|w| w[0].0 < w[1].0),
            "id {id}: {rows:?}"
        );
        assert!(
            rows.len() >= 39,
            "id {id} covers {} of 40 frames",
            rows.len()
        );
        assert_eq!(rows.last().map(|r| r.0), Some(40));
    }
}

#[test]
fn track_mot_names_the_bad_line_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let det = dir.path().join("bad.txt");
    let mut text = two_walkers();
    text.push_str("41,-1,ten,100,40,100,0.9\n");
    std::fs::write(&det, text).expect("write");
    let (o, _, stderr) = run(&["track", "--mot", s(&det), "--fps", "25"]);
    assert_clean_error(&o, &stderr, "line 81");
    assert!(stderr.contains("bad.txt"), "{stderr}");
    let (o, _, stderr) = run(&["track", "--mot", s(&det), "--fps", "0"]);
    assert_clean_error(&o, &stderr, "--fps");
    let (o, _, stderr) = run(&["track", "--mot", s(&dir.path().join("none.txt"))]);
    assert_clean_error(&o, &stderr, "none.txt");
}
