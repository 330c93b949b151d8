//! Decoding real media files, and the errors for files that are not video.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod common;

use std::time::{Duration, Instant};

use common::*;
use vigil_video::{SourceOptions, VideoError, VideoSource};

/// Upper bound for every read loop, far above any real file here.
const MAX_FRAMES: u64 = 10_000;

fn open(path: &std::path::Path) -> Result<VideoSource, VideoError> {
    VideoSource::open(
        path.to_str().expect("utf-8 path"),
        &SourceOptions::default(),
    )
}

/// Reads to the end (bounded), checking indices and timestamps on the way.
fn read_all(src: &mut VideoSource) -> Vec<(u64, f64, u32, u32)> {
    let mut out = Vec::new();
    let started = Instant::now();
    while let Some(f) = src.read().expect("read must not error on a file") {
        assert_eq!(
            f.index.0,
            out.len() as u64,
            "indices count from 0 without gaps"
        );
        out.push((f.index.0, f.pts.0, f.image.width(), f.image.height()));
        assert!((out.len() as u64) < MAX_FRAMES, "runaway read loop");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "read loop too slow"
        );
    }
    for w in out.windows(2) {
        assert!(w[1].1 >= w[0].1, "pts decreased: {:?} -> {:?}", w[0], w[1]);
    }
    out
}

#[test]
fn vtest_avi_yields_all_795_frames_with_increasing_pts() {
    let mut src = open(&vtest()).expect("vtest.avi opens");
    let info = src.info().clone();
    assert_eq!((info.width, info.height), (768, 576));
    assert!((info.fps - 10.0).abs() < 1e-6, "fps {}", info.fps);
    assert_eq!(info.frame_count, Some(795));
    assert!(!info.live);

    let frames = read_all(&mut src);
    assert_eq!(frames.len(), 795);
    assert!(frames.iter().all(|f| f.2 == 768 && f.3 == 576));
    for w in frames.windows(2) {
        assert!(w[1].1 > w[0].1, "pts not strictly increasing: {w:?}");
    }
    assert_eq!(frames[0].1, 0.0);
    assert!(
        (frames[794].1 - 79_400.0).abs() < 1.0,
        "last pts {}",
        frames[794].1
    );
    assert_eq!(src.frames_read(), 795);
    assert!(!src.truncated());
    assert_eq!(src.decode_errors(), 0);
    // The end is sticky.
    assert!(src.read().expect("read after end").is_none());
    assert!(src.read().expect("read after end").is_none());
    assert_eq!(src.frames_read(), 795);
}

#[test]
fn decoded_pixels_are_the_video_not_zeros() {
    let mut src = open(&vtest()).expect("vtest.avi opens");
    let f = src.read().expect("read").expect("first frame");
    let data = f.image.data();
    assert_eq!(data.len(), 768 * 576 * 3);
    let distinct = data
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<u8>>();
    assert!(distinct.len() > 50, "first frame looks blank");
    // captured timestamps are real.
    assert!(f.captured.elapsed() < Duration::from_secs(60));
    let frame = f.into_frame(vigil_core::StreamId("cam".into()));
    assert_eq!(frame.index.0, 0);
}

#[test]
fn ffmpeg_made_h264_mp4_with_b_frames_reads_all_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join("clip.mp4");
    make_clip(&clip, 2, &["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    let mut src = open(&clip).expect("mp4 opens");
    assert_eq!((src.info().width, src.info().height), (320, 240));
    assert!((src.info().fps - 25.0).abs() < 1e-6);
    assert_eq!(src.info().frame_count, Some(50));
    let frames = read_all(&mut src);
    assert_eq!(frames.len(), 50);
    for (i, f) in frames.iter().enumerate() {
        assert!((f.1 - i as f64 * 40.0).abs() < 1.0, "frame {i} pts {}", f.1);
    }
    assert!(!src.truncated());
}

#[test]
fn other_containers_and_codecs_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[&str]); 3] = [
        ("a.mkv", &["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
        ("b.webm", &["-c:v", "libvpx", "-b:v", "200k"]),
        ("c.ts", &["-c:v", "mpeg2video"]),
    ];
    for (name, args) in cases {
        let p = dir.path().join(name);
        make_clip(&p, 1, args);
        let mut src = open(&p).unwrap_or_else(|e| panic!("{name} should open: {e}"));
        let n = read_all(&mut src).len();
        assert!((24..=26).contains(&n), "{name}: read {n} frames");
        assert!(!src.truncated(), "{name} flagged as truncated");
    }
}

fn assert_not_readable(err: VideoError, path: &std::path::Path) {
    let msg = err.to_string();
    assert!(
        matches!(err, VideoError::NotReadable { .. }),
        "expected NotReadable, got {err:?}"
    );
    assert!(
        msg.contains(&path.display().to_string()),
        "message lacks path: {msg}"
    );
    assert!(
        msg.contains("not a readable video"),
        "unclear message: {msg}"
    );
}

#[test]
fn noise_bytes_named_mp4_are_not_a_readable_video() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("noise.mp4");
    std::fs::write(&p, noise(256 * 1024)).expect("write noise");
    assert_not_readable(open(&p).expect_err("noise must not open"), &p);
}

#[test]
fn text_file_is_not_a_readable_video() {
    let dir = tempfile::tempdir().expect("tempdir");
    // FFmpeg's tty demuxer claims .txt files as "ANSI art" video; a .mp4 name
    // goes through normal probing. Both must be refused.
    for name in ["notes.txt", "notes.mp4"] {
        let p = dir.path().join(name);
        std::fs::write(&p, "this is not a video\n".repeat(100)).expect("write text");
        assert_not_readable(open(&p).expect_err("text must not open"), &p);
    }
}

#[test]
fn empty_file_and_directory_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("empty.mp4");
    std::fs::write(&p, b"").expect("write empty");
    assert_not_readable(open(&p).expect_err("empty must not open"), &p);
    let err = open(dir.path()).expect_err("directory must not open");
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn missing_path_names_the_path() {
    let p = std::path::Path::new("/nonexistent/dir/missing-clip.mp4");
    let err = open(p).expect_err("missing file");
    assert!(matches!(err, VideoError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/dir/missing-clip.mp4"), "{msg}");
    assert!(msg.contains("no such file"), "{msg}");
    let err = VideoSource::open("", &SourceOptions::default()).expect_err("empty url");
    assert!(err.to_string().contains("no path or URL"), "{err}");
}

#[test]
fn open_file_is_open_with_defaults() {
    let src = VideoSource::open_file(&vtest()).expect("opens");
    assert_eq!(src.info().frame_count, Some(795));
    assert_eq!(
        src.frames_read(),
        0,
        "the buffered first frame is not yet handed out"
    );
}

#[test]
fn mp4_truncated_before_its_index_fails_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("full.mp4");
    make_clip(&full, 4, &["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    let cut = dir.path().join("cut.mp4");
    // ffmpeg writes the moov atom last, so the first 30% has no index at all.
    truncate_copy(&full, &cut, 0.3);
    assert_not_readable(open(&cut).expect_err("moov-less mp4 must not open"), &cut);
}

#[test]
fn faststart_mp4_truncated_mid_stream_ends_early_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("full.mp4");
    make_clip(
        &full,
        4,
        // Short GOP and high quality: enough bytes per frame that the first
        // 30% holds whole decodable frames, not just the index.
        &[
            "-c:v",
            "libx264",
            "-g",
            "10",
            "-crf",
            "5",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    );
    let cut = dir.path().join("cut.mp4");
    truncate_copy(&full, &cut, 0.3);
    let mut src = open(&cut).expect("index is intact, so it opens");
    assert_eq!(src.info().frame_count, Some(100));
    let n = read_all(&mut src).len() as u64;
    assert!(n > 0 && n < 100, "read {n} frames");
    assert_eq!(src.frames_read(), n);
    assert!(
        src.truncated(),
        "a short read must be reported as truncated"
    );
}

#[test]
fn avi_truncated_mid_stream_reads_partially_then_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cut = dir.path().join("vtest-cut.avi");
    truncate_copy(&vtest(), &cut, 0.3);
    let mut src = open(&cut).expect("header is intact, so it opens");
    let n = read_all(&mut src).len() as u64;
    assert!(n > 100 && n < 795, "read {n} frames of 795");
    assert!(
        src.truncated(),
        "frame_count {:?}, read {n}",
        src.info().frame_count
    );
    assert!(src.read().expect("sticky end").is_none());
}

#[test]
fn mpegts_truncated_mid_stream_reads_partially_then_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("full.ts");
    make_clip(&full, 4, &["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    let cut = dir.path().join("cut.ts");
    // An odd byte count also cuts a 188-byte TS packet in half.
    truncate_copy(&full, &cut, 0.4321);
    let mut src = open(&cut).expect("a cut TS still opens");
    let n = read_all(&mut src).len();
    assert!(n > 5 && n < 100, "read {n} frames of 100");
    // TS has no frame count in a header (FFmpeg estimates it from the cut
    // file's own duration), so truncation need not be detectable; it must
    // simply end cleanly.
    assert!(src.read().expect("sticky end").is_none());
}

/// A cap on frame size refuses a source whose frames are larger, naming the
/// size, before a frame is handed out; at the size exactly it opens.
#[test]
fn frames_above_max_pixels_are_refused_with_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("64x48.avi");
    let mut w = vigil_video::VideoWriter::create(&path, 64, 48, 10.0).unwrap();
    for _ in 0..3 {
        w.write(&vigil_core::ImageBgr::filled(64, 48, [10, 20, 30]))
            .unwrap();
    }
    w.finish().unwrap();
    let url = path.to_str().unwrap();
    let capped = |max| SourceOptions {
        max_pixels: Some(max),
        ..SourceOptions::default()
    };
    match VideoSource::open(url, &capped(64 * 48 - 1)) {
        Err(VideoError::FrameTooLarge {
            width,
            height,
            max_pixels,
            ..
        }) => assert_eq!((width, height, max_pixels), (64, 48, 64 * 48 - 1)),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a 64x48 source opened under a 3071-pixel cap"),
    }
    let err = VideoSource::open(url, &capped(100))
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("64x48 (3072 pixels)") && e.contains("max_pixels (100)")),
        "{err:?}"
    );
    let mut ok = VideoSource::open(url, &capped(64 * 48)).unwrap();
    assert!(ok.read().unwrap().is_some());
}
