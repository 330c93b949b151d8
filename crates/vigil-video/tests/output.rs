//! Encoding annotated output, drawing detections and JPEG snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod common;

use std::path::Path;

use common::*;
use vigil_core::{BBox, Detection, ImageBgr};
use vigil_video::{
    class_color, draw_detections, encode_jpeg, SourceOptions, VideoError, VideoSource, VideoWriter,
};

fn gradient(w: u32, h: u32, t: u32) -> ImageBgr {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&[
                ((x + t * 4) % 256) as u8,
                ((y + t * 2) % 256) as u8,
                ((x + y) % 256) as u8,
            ]);
        }
    }
    ImageBgr::new(w, h, data).expect("valid image")
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn writer_produces_h264_mp4_with_right_frames_and_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("annotated.mp4");
    let mut w = VideoWriter::create(&out, 640, 480, 25.0).expect("writer opens");
    assert_eq!(
        w.codec(),
        "h264",
        "libx264 is available here, so H.264 is expected"
    );
    for t in 0..30 {
        w.write(&gradient(640, 480, t)).expect("write frame");
    }
    assert!(!out.exists(), "output must not appear before finish");
    assert_eq!(w.finish().expect("finish"), 30);

    assert_eq!(dir_entries(dir.path()), vec!["annotated.mp4".to_owned()]);
    assert_probe(&out, "h264", (640, 480), 30);

    // And our own reader agrees.
    let mut src = VideoSource::open(out.to_str().expect("utf-8"), &SourceOptions::default())
        .expect("reopen output");
    let mut n = 0;
    while let Some(f) = src.read().expect("read") {
        assert_eq!((f.image.width(), f.image.height()), (640, 480));
        n += 1;
        assert!(n <= 100);
    }
    assert_eq!(n, 30);
}

#[test]
fn writer_dropped_without_finish_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("aborted.mp4");
    {
        let mut w = VideoWriter::create(&out, 320, 240, 10.0).expect("writer opens");
        for t in 0..5 {
            w.write(&gradient(320, 240, t)).expect("write");
        }
        assert!(
            !dir_entries(dir.path()).is_empty(),
            "temp file exists while writing"
        );
    }
    assert!(
        dir_entries(dir.path()).is_empty(),
        "left: {:?}",
        dir_entries(dir.path())
    );
}

#[test]
fn aborted_writer_does_not_clobber_an_existing_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("previous.mp4");
    std::fs::write(&out, b"previous result").expect("seed");
    {
        let mut w = VideoWriter::create(&out, 320, 240, 10.0).expect("writer opens");
        w.write(&gradient(320, 240, 0)).expect("write");
    }
    assert_eq!(
        std::fs::read(&out).expect("still there"),
        b"previous result"
    );
    assert_eq!(dir_entries(dir.path()), vec!["previous.mp4".to_owned()]);
}

#[test]
fn writer_rejects_wrong_frame_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = VideoWriter::create(&dir.path().join("x.mp4"), 320, 240, 10.0).expect("opens");
    let err = w.write(&gradient(640, 480, 0)).expect_err("size mismatch");
    assert!(matches!(err, VideoError::SizeMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("640x480"), "{err}");
    assert_eq!(w.frames_written(), 0);
}

#[test]
fn writer_reports_bad_paths_and_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing_dir = dir.path().join("no/such/dir/out.mp4");
    let err = VideoWriter::create(&missing_dir, 320, 240, 10.0).expect_err("no dir");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = VideoWriter::create(&dir.path().join("out.xyz"), 320, 240, 10.0)
        .expect_err("unknown extension");
    assert!(err.to_string().contains("out.xyz"), "{err}");
    let err = VideoWriter::create(&dir.path().join("out.mp4"), 320, 240, 0.0).expect_err("fps 0");
    assert!(err.to_string().contains("frame rate"), "{err}");
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn avi_output_uses_mjpeg() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.avi");
    let mut w = VideoWriter::create(&out, 320, 240, 10.0).expect("opens");
    assert_eq!(w.codec(), "mjpeg");
    for t in 0..7 {
        w.write(&gradient(320, 240, t)).expect("write");
    }
    w.finish().expect("finish");
    assert_probe(&out, "mjpeg", (320, 240), 7);
}

fn det(class_id: u32, bbox: BBox, track_id: Option<u64>) -> Detection {
    Detection {
        class_id,
        label: "person".into(),
        score: 0.87,
        bbox,
        track_id,
    }
}

fn px(img: &ImageBgr, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * img.width() + x) * 3) as usize;
    let d = img.data();
    [d[i], d[i + 1], d[i + 2]]
}

#[test]
fn draw_changes_box_edge_and_label_but_not_far_outside() {
    let grey = [128, 128, 128];
    let mut img = ImageBgr::filled(640, 480, grey);
    draw_detections(
        &mut img,
        &[det(0, BBox::new(100.0, 150.0, 300.0, 350.0), Some(12))],
    );
    let colour = class_color(0);
    // Left and bottom edges, mid-way along.
    assert_eq!(px(&img, 100, 250), colour);
    assert_eq!(px(&img, 200, 350), colour);
    // Interior is not filled, far outside untouched.
    assert_eq!(px(&img, 200, 250), grey);
    assert_eq!(px(&img, 500, 50), grey);
    assert_eq!(px(&img, 600, 450), grey);
    // Label background sits just above the box's top-left corner.
    assert_eq!(px(&img, 101, 146), colour);
    // Nothing changed more than a few pixels away from the box and its label.
    for y in (0..480).step_by(4) {
        for x in (0..640).step_by(4) {
            let near = (90..=310).contains(&x) && (110..=360).contains(&y);
            if !near {
                assert_eq!(px(&img, x, y), grey, "pixel ({x},{y}) changed");
            }
        }
    }
}

#[test]
fn labels_stay_inside_the_frame() {
    let grey = [128, 128, 128];
    // Box touching the top-right corner: no room above or to the right.
    let mut img = ImageBgr::filled(640, 480, grey);
    let mut d = det(5, BBox::new(600.0, 0.0, 640.0, 40.0), Some(123_456));
    d.label = "a very long label".into();
    draw_detections(&mut img, &[d]);
    let colour = class_color(5);
    // The label background was moved left/down into the frame, so a row near
    // the top, left of the box, carries the class colour.
    let row_hits = (300..600).filter(|&x| px(&img, x, 5) == colour).count();
    assert!(
        row_hits > 50,
        "label not drawn inside the frame ({row_hits} px)"
    );
}

#[test]
fn drawing_tolerates_degenerate_and_outside_boxes() {
    let grey = [128, 128, 128];
    let mut img = ImageBgr::filled(320, 240, grey);
    let before = img.clone();
    draw_detections(
        &mut img,
        &[
            det(1, BBox::new(f32::NAN, 0.0, 10.0, 10.0), None),
            det(2, BBox::new(-100.0, -100.0, -50.0, -50.0), None),
            det(3, BBox::new(1000.0, 1000.0, 2000.0, 2000.0), None),
            det(4, BBox::new(50.0, 50.0, 40.0, 40.0), None),
        ],
    );
    assert!(img == before, "nothing drawable, nothing drawn");
    draw_detections(&mut img, &[]);
    // A box larger than the frame is clipped, not rejected.
    draw_detections(
        &mut img,
        &[det(7, BBox::new(-10.0, -10.0, 400.0, 300.0), None)],
    );
    assert_eq!(px(&img, 160, 239), class_color(7));
}

#[test]
fn lines_are_thicker_on_4k_frames() {
    let grey = [128, 128, 128];
    let mut img = ImageBgr::filled(3840, 2160, grey);
    draw_detections(
        &mut img,
        &[det(9, BBox::new(1000.0, 1000.0, 2000.0, 1800.0), None)],
    );
    // 6 px line centred on x=1000: pixels 2 px either side are coloured.
    assert_eq!(px(&img, 998, 1400), class_color(9));
    assert_eq!(px(&img, 1002, 1400), class_color(9));
    assert_eq!(px(&img, 1010, 1400), grey);
}

#[test]
fn jpeg_snapshot_is_valid_and_quality_matters() {
    let img = gradient(320, 240, 3);
    let hi = encode_jpeg(&img, 95).expect("encode");
    let lo = encode_jpeg(&img, 20).expect("encode");
    assert_eq!(&hi[..2], &[0xFF, 0xD8], "JPEG SOI");
    assert_eq!(&hi[hi.len() - 2..], &[0xFF, 0xD9], "JPEG EOI");
    assert!(lo.len() < hi.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("snap.jpg");
    std::fs::write(&p, &hi).expect("write");
    assert_probe(&p, "mjpeg", (320, 240), 1);
}
