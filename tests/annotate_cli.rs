//! `vigil annotate` end to end: the real binary, model, runtime and media
//! (`data/video/vtest.avi`: 768x576, 10 fps, 795 frames; clips cut from it
//! with the local FFmpeg).
//!
//! Every child process runs under a wall-clock limit (killed and reported
//! when it overruns), every polling loop has a deadline, and every run's
//! stderr is checked for panics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{data, ffmpeg, vigil};
/// Decodes the whole first video stream with ffprobe and counts its frames.
use vigil_testkit::probe_video as probe;

/// Limit for a run over the whole of vtest.avi (about 20-40 s in a debug build
/// on an idle machine; tests run in parallel on few cores).
const FULL_RUN: Duration = Duration::from_secs(600);
/// Limit for a run over a short clip.
const SHORT_RUN: Duration = Duration::from_secs(300);
/// Limit for an FFmpeg / ffprobe call or a run that must fail quickly.
const TOOL_RUN: Duration = Duration::from_secs(120);

const VTEST_FRAMES: u64 = 795;

// --- bounded process runs ---------------------------------------------------

type Run = vigil_testkit::Finished;

/// Runs `cmd` to completion within `limit` (output captured, killed on
/// overrun), asserting it did not panic.
fn run_bounded(cmd: Command, limit: Duration) -> Run {
    let what = vigil_testkit::describe(&cmd);
    let r = support::run_bounded(cmd, limit);
    assert!(
        !r.stderr.contains("panicked"),
        "{what} panicked:\n{}",
        r.stderr
    );
    r
}

/// Runs `vigil ARGS` (cwd: the repository root) within `limit`.
fn vigil_run(args: &[&str], limit: Duration) -> Run {
    let mut cmd = vigil();
    cmd.args(args);
    run_bounded(cmd, limit)
}

/// Runs `vigil ARGS` and asserts success.
fn vigil_ok(args: &[&str], limit: Duration) -> Run {
    let r = vigil_run(args, limit);
    assert!(
        r.status.success(),
        "vigil {args:?} failed ({}):\n{}",
        r.status,
        r.stderr
    );
    r
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// --- FFmpeg helpers -----------------------------------------------------------

/// The first `frames` frames of vtest.avi as lossless FFV1 in Matroska, so
/// frames extracted from the clip later have exactly the decoder's pixels.
fn short_clip(dir: &Path, name: &str, frames: u32) -> PathBuf {
    let out = dir.join(name);
    support::sample_clip(&out, frames, &["-c:v", "ffv1"]);
    assert!(out.is_file());
    out
}

// --- JSON helpers ---------------------------------------------------------------

fn read_jsonl(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

fn frame_of(line: &Value) -> u64 {
    line["frame"].as_u64().expect("frame index")
}

fn dets(line: &Value) -> &Vec<Value> {
    line["detections"].as_array().expect("detections array")
}

fn bbox(d: &Value) -> [f64; 4] {
    let v: Vec<f64> = d["bbox"]
        .as_array()
        .expect("bbox array")
        .iter()
        .map(|x| x.as_f64().expect("bbox number"))
        .collect();
    assert_eq!(v.len(), 4, "bbox {d}");
    [v[0], v[1], v[2], v[3]]
}

fn score(d: &Value) -> f64 {
    d["score"].as_f64().expect("score")
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// One-to-one matching of two detection lists: same length, and every
/// detection of `a` pairs with a distinct one of `b` that `same` accepts.
fn assert_same_detections(
    a: &[Value],
    b: &[Value],
    same: impl Fn(&Value, &Value) -> bool,
    ctx: &str,
) {
    assert_eq!(
        a.len(),
        b.len(),
        "{ctx}: detection counts differ\n{a:?}\n{b:?}"
    );
    let mut used = vec![false; b.len()];
    for da in a {
        let hit = (0..b.len()).find(|&j| !used[j] && same(da, &b[j]));
        match hit {
            Some(j) => used[j] = true,
            None => panic!("{ctx}: no counterpart for {da}\nin {b:?}"),
        }
    }
}

fn has_positive_track_id(d: &Value) -> bool {
    d.get("track_id")
        .and_then(Value::as_u64)
        .is_some_and(|t| t > 0)
}

/// Names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

// --- 1. --every 5 over the whole clip -----------------------------------------

#[test]
fn every_5_writes_159_tracked_lines_and_a_full_h264_video() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let mp4 = dir.path().join("out.mp4");
    let jsonl = dir.path().join("out.jsonl");
    let vtest = data("video/vtest.avi");
    vigil_ok(
        &[
            "annotate",
            s(&vtest),
            "--every",
            "5",
            "-o",
            s(&mp4),
            "--jsonl",
            s(&jsonl),
        ],
        FULL_RUN,
    );

    let lines = read_jsonl(&jsonl);
    assert_eq!(lines.len(), 159, "one line per processed frame");
    let frames: Vec<u64> = lines.iter().map(frame_of).collect();
    let expected: Vec<u64> = (0..VTEST_FRAMES).step_by(5).collect();
    assert_eq!(frames, expected);
    assert_eq!(*frames.last().expect("lines"), 790);

    let mut prev_pts = f64::NEG_INFINITY;
    let mut n_dets = 0;
    let mut lines_of_track: std::collections::HashMap<u64, usize> = Default::default();
    for line in &lines {
        let pts = line["pts_ms"].as_f64().expect("pts_ms");
        assert!(pts > prev_pts, "pts_ms not increasing at {line}");
        // 10 fps: frame N is presented at N * 100 ms.
        let want = frame_of(line) as f64 * 100.0;
        assert!((pts - want).abs() < 0.5, "pts_ms {pts} != {want} in {line}");
        prev_pts = pts;
        // The plaza always has people in view (2 to 7 a frame).
        assert!(!dets(line).is_empty(), "nobody tracked in {line}");
        for d in dets(line) {
            assert!(has_positive_track_id(d), "no positive track_id: {d}");
            n_dets += 1;
            *lines_of_track
                .entry(d["track_id"].as_u64().expect("track_id"))
                .or_default() += 1;
        }
    }
    // Identities hold across the clip: some track is present in most of
    // the 159 processed frames, and ids are reused far more often than
    // created (a tracker handing out fresh ids would have one per box).
    let longest = lines_of_track.values().max().copied().unwrap_or(0);
    assert!(
        longest >= 100,
        "the longest track spans {longest} of 159 lines"
    );
    assert!(
        lines_of_track.len() * 5 <= n_dets,
        "{} ids for {n_dets} boxes",
        lines_of_track.len()
    );

    let p = probe(&mp4);
    assert_eq!(p.codec, "h264");
    assert_eq!((p.width, p.height), (768, 576));
    assert_eq!(p.frames, VTEST_FRAMES, "every source frame is kept");
    assert_eq!(entries(dir.path()), ["out.jsonl", "out.mp4"], "leftovers");
    eprintln!("every_5 took {:?}", t0.elapsed());
}

// --- 2. parity with `vigil detect` on lossless frames ---------------------------

#[test]
fn annotate_no_track_matches_detect_on_the_same_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = short_clip(dir.path(), "short.mkv", 60);
    let pngs = dir.path().join("png");
    fs::create_dir(&pngs).expect("mkdir");
    // PNG is lossless: the pixels are exactly what the decoder gives.
    ffmpeg(&["-i", s(&clip), "-vsync", "0", s(&pngs.join("f%03d.png"))]);
    assert_eq!(entries(&pngs).len(), 60, "the clip has 60 frames");

    let jsonl = dir.path().join("short.jsonl");
    vigil_ok(
        &[
            "annotate",
            s(&clip),
            "--no-track",
            "--every",
            "1",
            "--jsonl",
            s(&jsonl),
        ],
        SHORT_RUN,
    );
    let lines = read_jsonl(&jsonl);
    assert_eq!(
        lines.iter().map(frame_of).collect::<Vec<_>>(),
        (0..60).collect::<Vec<u64>>()
    );

    let picks = [0u64, 17, 33, 59];
    // ffmpeg numbers the images from 1.
    let images: Vec<PathBuf> = picks
        .iter()
        .map(|i| pngs.join(format!("f{:03}.png", i + 1)))
        .collect();
    let mut args = vec!["detect"];
    args.extend(images.iter().map(|p| s(p)));
    let r = vigil_ok(&args, SHORT_RUN);
    let detected: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("detect JSON line"))
        .collect();
    assert_eq!(detected.len(), picks.len(), "{}", r.stdout);

    let mut total = 0;
    for (k, &idx) in picks.iter().enumerate() {
        let d = &detected[k];
        assert!(
            d["source"]
                .as_str()
                .expect("source")
                .ends_with(&format!("f{:03}.png", idx + 1)),
            "{d}"
        );
        assert_eq!(
            (d["width"].as_u64(), d["height"].as_u64()),
            (Some(768), Some(576))
        );
        let a = &lines[idx as usize];
        assert_eq!(frame_of(a), idx);
        for det in dets(a) {
            assert!(det.get("track_id").is_none(), "--no-track gave {det}");
        }
        total += dets(d).len();
        assert_same_detections(
            dets(d),
            dets(a),
            |x, y| {
                x["class_id"] == y["class_id"]
                    && x["label"] == y["label"]
                    && iou(bbox(x), bbox(y)) >= 0.99
                    && (score(x) - score(y)).abs() <= 1e-3
            },
            &format!("frame {idx}"),
        );
    }
    assert!(total > 0, "no detections at all in the picked frames");
}

// --- 3. --fps --------------------------------------------------------------------

#[test]
fn fps_2_on_a_10_fps_video_processes_every_fifth_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jsonl = dir.path().join("fps.jsonl");
    let vtest = data("video/vtest.avi");
    vigil_ok(
        &["annotate", s(&vtest), "--fps", "2", "--jsonl", s(&jsonl)],
        FULL_RUN,
    );
    let lines = read_jsonl(&jsonl);
    assert_eq!(lines.len(), 159);
    let frames: Vec<u64> = lines.iter().map(frame_of).collect();
    assert_eq!(frames, (0..VTEST_FRAMES).step_by(5).collect::<Vec<_>>());
    for line in &lines {
        let pts = line["pts_ms"].as_f64().expect("pts_ms");
        let want = frame_of(line) as f64 * 100.0;
        assert!((pts - want).abs() < 0.5, "{line}");
    }
    // --jsonl alone: no video written anywhere in the output directory.
    assert_eq!(entries(dir.path()), ["fps.jsonl"]);
}

#[test]
fn every_and_fps_together_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jsonl = dir.path().join("x.jsonl");
    let mp4 = dir.path().join("x.mp4");
    let vtest = data("video/vtest.avi");
    let r = vigil_run(
        &[
            "annotate",
            s(&vtest),
            "--every",
            "5",
            "--fps",
            "2",
            "-o",
            s(&mp4),
            "--jsonl",
            s(&jsonl),
        ],
        TOOL_RUN,
    );
    assert!(!r.status.success(), "accepted --every with --fps");
    assert!(r.stderr.contains("error"), "{}", r.stderr);
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

// --- 4. bad inputs ------------------------------------------------------------------

/// Deterministic noise (xorshift), so a failure is reproducible.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn bad_inputs_fail_cleanly_and_leave_no_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = dir.path().join("in");
    fs::create_dir(&inputs).expect("mkdir");

    let noise_mp4 = inputs.join("x.mp4");
    fs::write(&noise_mp4, noise(64 * 1024)).expect("write noise");
    let notes = inputs.join("notes.txt");
    fs::write(&notes, "meeting notes\nnot a video at all\n").expect("write notes");
    let empty = inputs.join("empty.mp4");
    fs::write(&empty, b"").expect("write empty");

    // An MP4 without faststart keeps its moov atom at the end; cutting it to
    // 30% leaves the media data without the index.
    let whole = dir.path().join("whole.mp4");
    support::sample_clip(&whole, 60, &["-an"]);
    let bytes = fs::read(&whole).expect("read mp4");
    let cut = &bytes[..bytes.len() * 3 / 10];
    assert!(
        bytes.windows(4).any(|w| w == b"moov"),
        "the whole MP4 has a moov atom"
    );
    assert!(
        !cut.windows(4).any(|w| w == b"moov"),
        "the cut MP4 must lack its moov atom (ffmpeg wrote it first?)"
    );
    let truncated = inputs.join("truncated.mp4");
    fs::write(&truncated, cut).expect("write truncated");
    fs::remove_file(&whole).expect("rm whole");

    let missing = inputs.join("missing.mp4");

    let outdir = dir.path().join("out");
    fs::create_dir(&outdir).expect("mkdir");
    let mp4 = outdir.join("result.mp4");
    let jsonl = outdir.join("result.jsonl");
    for input in [&noise_mp4, &notes, &truncated, &empty, &missing] {
        let r = vigil_run(
            &["annotate", s(input), "-o", s(&mp4), "--jsonl", s(&jsonl)],
            TOOL_RUN,
        );
        let ctx = input.display();
        assert!(!r.status.success(), "{ctx}: accepted");
        let line = r
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{ctx}: no `error:` line in:\n{}", r.stderr));
        assert!(
            line.contains(s(input)),
            "{ctx}: error line {line:?} does not name the input"
        );
        assert_eq!(
            r.stderr.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{ctx}: one error line expected:\n{}",
            r.stderr
        );
        assert!(!mp4.exists(), "{ctx}: left {}", mp4.display());
        assert!(!jsonl.exists(), "{ctx}: left {}", jsonl.display());
        assert!(
            entries(&outdir).is_empty(),
            "{ctx}: left {:?} behind (partial files?)",
            entries(&outdir)
        );
        assert!(
            !entries(&inputs).iter().any(|e| e.contains("partial")),
            "{ctx}: {:?}",
            entries(&inputs)
        );
    }
    // The inputs themselves are untouched.
    assert_eq!(
        entries(&inputs),
        ["empty.mp4", "notes.txt", "truncated.mp4", "x.mp4"]
    );
}

// --- 5. Ctrl-C ------------------------------------------------------------------------

#[test]
fn sigint_closes_a_playable_mp4_and_exits_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let mp4 = dir.path().join("int.mp4");
    let partial = dir.path().join(".int.partial.mp4");
    let vtest = data("video/vtest.avi");
    let mut cmd = vigil();
    cmd.args(["annotate", s(&vtest), "-o", s(&mp4), "--every", "1"]);
    let err = logs.path().join("stderr");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err).expect("stderr log"))
        .spawn()
        .expect("spawn vigil annotate");
    let mut child = support::ChildGuard::new(child);

    // Wait (at most 60 s) for the temporary output to appear and then grow
    // past the container header: by then frames are flowing and the Ctrl-C
    // handler is installed. Should growth not show, interrupt anyway.
    let mut first_size = None;
    let _ = support::try_wait_until(Duration::from_secs(60), || {
        if let Some(status) = child.exited() {
            panic!(
                "annotate exited ({status}) before it was interrupted:\n{}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        let m = fs::metadata(&partial).ok()?;
        let first = *first_size.get_or_insert(m.len());
        (m.len() > first).then_some(())
    });
    assert!(
        first_size.is_some(),
        "{} never appeared within 60 s",
        partial.display()
    );

    child.signal("INT");
    // The frames already in flight (up to the stream's in-flight cap) are
    // finished and written first: a hang guard, not a speed check (on a
    // loaded 2-core machine that took over 30 s).
    let status = child
        .wait_exit(Duration::from_secs(180))
        .unwrap_or_else(|| {
            panic!(
                "interrupted annotate did not finish within 180 s; stderr:\n{}",
                fs::read_to_string(&err).unwrap_or_default()
            )
        });
    let stderr = fs::read_to_string(&err).expect("stderr");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(130), "{status}; stderr:\n{stderr}");

    assert!(
        mp4.is_file(),
        "no {} after Ctrl-C:\n{stderr}",
        mp4.display()
    );
    assert!(!partial.exists(), "partial file left behind");
    assert!(
        !entries(dir.path()).iter().any(|e| e.contains("partial")),
        "{:?}",
        entries(dir.path())
    );
    let p = probe(&mp4);
    eprintln!("interrupted output holds {} frames", p.frames);
    assert_eq!(p.codec, "h264");
    assert_eq!((p.width, p.height), (768, 576));
    assert!(
        p.frames >= 1 && p.frames < VTEST_FRAMES,
        "{} frames after an interruption",
        p.frames
    );
}

// --- 6. tracking on/off, default output name ---------------------------------------

#[test]
fn no_track_omits_track_ids_and_tracking_adds_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = short_clip(dir.path(), "clip.mkv", 30);
    let raw = dir.path().join("raw.jsonl");
    let tracked = dir.path().join("tracked.jsonl");
    vigil_ok(
        &["annotate", s(&clip), "--no-track", "--jsonl", s(&raw)],
        SHORT_RUN,
    );
    vigil_ok(&["annotate", s(&clip), "--jsonl", s(&tracked)], SHORT_RUN);

    let raw = read_jsonl(&raw);
    let tracked = read_jsonl(&tracked);
    assert_eq!(raw.len(), 30);
    assert_eq!(tracked.len(), 30);
    let mut n_raw = 0;
    for line in &raw {
        for d in dets(line) {
            assert!(d.get("track_id").is_none(), "--no-track gave {d}");
            n_raw += 1;
        }
    }
    let mut n_tracked = 0;
    for line in &tracked {
        for d in dets(line) {
            assert!(has_positive_track_id(d), "tracking on, no track_id: {d}");
            n_tracked += 1;
        }
    }
    // Tracking only relabels detections: every tracked box is (close to) a
    // raw detection of the same class in the same frame, no frame has more
    // tracks than detections, and nearly every detection is tracked (the
    // few left are objects in their first frame or a brief mismatch).
    for (r, t) in raw.iter().zip(&tracked) {
        assert_eq!(frame_of(r), frame_of(t));
        assert!(
            dets(t).len() <= dets(r).len(),
            "frame {}: more tracks than detections",
            frame_of(r)
        );
        for d in dets(t) {
            let best = dets(r)
                .iter()
                .filter(|x| x["class_id"] == d["class_id"])
                .map(|x| iou(bbox(x), bbox(d)))
                .fold(0.0, f64::max);
            assert!(
                best >= 0.5,
                "frame {}: tracked {d} matches no detection (IoU {best:.2})",
                frame_of(r)
            );
        }
    }
    assert!(
        n_raw >= 150,
        "about 6 people a frame over 30 frames: {n_raw}"
    );
    assert!(
        n_tracked * 10 >= n_raw * 9,
        "only {n_tracked} of {n_raw} detections tracked"
    );
    // --jsonl alone writes no video.
    assert_eq!(
        entries(dir.path()),
        ["clip.mkv", "raw.jsonl", "tracked.jsonl"]
    );
}

#[test]
fn without_o_or_jsonl_the_video_goes_to_stem_annotated_mp4_in_cwd() {
    let src = tempfile::tempdir().expect("tempdir");
    let clip = short_clip(src.path(), "walk.mkv", 20);
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut cmd = vigil();
    cmd.current_dir(cwd.path()).args(["annotate", s(&clip)]);
    let r = run_bounded(cmd, SHORT_RUN);
    assert!(r.status.success(), "{}", r.stderr);

    assert_eq!(entries(cwd.path()), ["walk.annotated.mp4"]);
    assert_eq!(
        entries(src.path()),
        ["walk.mkv"],
        "nothing beside the input"
    );
    let p = probe(&cwd.path().join("walk.annotated.mp4"));
    assert_eq!(p.codec, "h264");
    assert_eq!((p.width, p.height), (768, 576));
    assert_eq!(p.frames, 20);
}

// --- 7. batching does not change results ------------------------------------------

/// The `largest_batch=N` that `vigil annotate` logs at the end (info level).
fn largest_batch(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains("pipeline finished"))
        .find_map(|l| l.split("largest_batch=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no largest_batch in the log:\n{stderr}"))
}

#[test]
fn batch_1_and_batch_8_give_the_same_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Every frame processed: with skipped frames in between, the stream's
    // in-flight cap (32 frames) would leave fewer than 8 processed frames
    // in flight, and a batch of 8 could never form.
    let clip = short_clip(dir.path(), "clip.mkv", 48);
    let mut results = Vec::new();
    for (b, want_largest) in [("1", 1), ("8", 8)] {
        let out = dir.path().join(format!("b{b}.jsonl"));
        let mut cmd = vigil();
        // A long batch wait, so --batch 8 fills its batches rather than
        // sending singles that time out.
        cmd.env("VIGIL_BATCH_MAX_WAIT_MS", "2000")
            .env("RUST_LOG", "info")
            .args([
                "annotate",
                s(&clip),
                "--no-track",
                "--batch",
                b,
                "--jsonl",
                s(&out),
            ]);
        let r = run_bounded(cmd, SHORT_RUN);
        assert!(r.status.success(), "--batch {b}: {}", r.stderr);
        assert_eq!(
            largest_batch(&r.stderr),
            want_largest,
            "--batch {b}: the largest inference call"
        );
        results.push(read_jsonl(&out));
    }
    let (one, eight) = (&results[0], &results[1]);
    assert_eq!(one.len(), 48);
    assert_eq!(
        one.iter().map(frame_of).collect::<Vec<_>>(),
        (0..48).collect::<Vec<u64>>()
    );
    assert_eq!(
        one.iter().map(frame_of).collect::<Vec<_>>(),
        eight.iter().map(frame_of).collect::<Vec<_>>()
    );
    let mut total = 0;
    for (a, b) in one.iter().zip(eight) {
        assert_eq!(a["pts_ms"], b["pts_ms"]);
        total += dets(a).len();
        assert!(
            !dets(a).is_empty(),
            "every frame of the clip shows people: {a}"
        );
        assert_same_detections(
            dets(a),
            dets(b),
            |x, y| {
                x["class_id"] == y["class_id"]
                    && x.get("track_id").is_none()
                    && y.get("track_id").is_none()
                    && (score(x) - score(y)).abs() <= 1e-4
                    && bbox(x)
                        .iter()
                        .zip(bbox(y))
                        .all(|(p, q)| (p - q).abs() <= 0.01)
            },
            &format!("frame {}", frame_of(a)),
        );
    }
    eprintln!("{total} detections in 48 frames, batch 1 = batch 8");
}

#[test]
fn two_inference_sessions_give_the_same_tracks_in_source_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = short_clip(dir.path(), "clip.mkv", 80);
    let mut results = Vec::new();
    for sessions in ["1", "2"] {
        let out = dir.path().join(format!("s{sessions}.jsonl"));
        let mut cmd = vigil();
        // Two single-thread sessions finish batches in any order; the
        // stream's post thread must restore source order before tracking.
        cmd.env("VIGIL_MODEL_SESSIONS", sessions)
            .env("VIGIL_MODEL_INTRA_THREADS", "1")
            .args([
                "annotate",
                s(&clip),
                "--every",
                "2",
                "--batch",
                "1",
                "--jsonl",
                s(&out),
            ]);
        let r = run_bounded(cmd, SHORT_RUN);
        assert!(r.status.success(), "sessions {sessions}: {}", r.stderr);
        results.push(read_jsonl(&out));
    }
    let (one, two) = (&results[0], &results[1]);
    assert_eq!(one.len(), 40);
    assert_eq!(
        two.iter().map(frame_of).collect::<Vec<_>>(),
        (0..80).step_by(2).collect::<Vec<u64>>(),
        "frames out of source order"
    );
    let mut tracked = 0;
    for (a, b) in one.iter().zip(two) {
        tracked += dets(a).len();
        assert_same_detections(
            dets(a),
            dets(b),
            |x, y| {
                x["class_id"] == y["class_id"]
                    && x["track_id"] == y["track_id"]
                    && bbox(x)
                        .iter()
                        .zip(bbox(y))
                        .all(|(p, q)| (p - q).abs() <= 0.01)
            },
            &format!("frame {}", frame_of(a)),
        );
    }
    assert!(tracked > 0, "no tracks at all");
}
