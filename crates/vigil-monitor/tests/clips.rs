//! Camera-health checks on real decoded video: clips made with ffmpeg
//! (black, frozen) raise exactly their anomaly, and the sample clip (a busy
//! plaza) raises none. Frames come through `vigil_video::VideoSource`, the
//! decoder the daemon uses, at the clips' own pts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::path::Path;
use std::time::SystemTime;

use vigil_monitor::{AnomalyKind, Detail, HealthMonitor, HealthParams};
use vigil_video::VideoSource;

/// A 15 s, 10 fps MPEG-4 clip of the ffmpeg `lavfi` source `color=<colour>`.
fn solid(out: &Path, colour: &str) {
    let source = format!("color={colour}:s=320x240:r=10");
    vigil_testkit::lavfi_clip(out, &source, Some(15), &["-c:v", "mpeg4", "-q:v", "2"]);
}

/// Every anomaly kind the monitor reports over the whole clip, in order.
fn anomalies(path: &Path) -> Vec<AnomalyKind> {
    let mut src = VideoSource::open_file(path).expect("open clip");
    let mut m = HealthMonitor::new("clip", HealthParams::default());
    let mut kinds = Vec::new();
    let mut frames = 0;
    while let Some(f) = src.read().expect("decode") {
        frames += 1;
        for e in m.observe(f.pts.0, SystemTime::now(), &f.image) {
            match e.detail {
                Detail::Camera { kind, .. } => kinds.push(kind),
                Detail::Drift { .. } => panic!("health monitor raised drift"),
            }
        }
    }
    assert!(frames > 100, "{}: only {frames} frames", path.display());
    kinds
}

#[test]
fn black_clip_is_black() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("black.mp4");
    solid(&clip, "black");
    assert_eq!(anomalies(&clip), vec![AnomalyKind::Black]);
}

#[test]
fn still_picture_is_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.png");
    let clip = dir.path().join("frozen.mp4");
    vigil_testkit::sample_clip(&still, 1, &[]);
    vigil_testkit::ffmpeg(&[
        "-loop",
        "1",
        "-i",
        still.to_str().unwrap(),
        "-r",
        "10",
        "-t",
        "15",
        "-c:v",
        "mpeg4",
        "-q:v",
        "2",
        clip.to_str().unwrap(),
    ]);
    assert_eq!(anomalies(&clip), vec![AnomalyKind::Frozen]);
}

#[test]
fn overexposed_clip_is_overexposed() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("white.mp4");
    solid(&clip, "white");
    assert_eq!(anomalies(&clip), vec![AnomalyKind::Overexposed]);
}

#[test]
fn sample_clip_is_healthy() {
    let kinds = anomalies(&vigil_testkit::vtest());
    assert!(kinds.is_empty(), "the sample clip raised {kinds:?}");
}
