//! `vigil track --mot` end to end at the library level: write a det file, run,
//! parse the result lines.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufReader;

use vigil_core::config::TrackerConfig;
use vigil_core::BBox;
use vigil_track::mot;

struct ResultLine {
    frame: u64,
    id: u64,
    bbox: BBox,
    score: f32,
}

fn parse_results(text: &str) -> Vec<ResultLine> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 10, "{l}");
            assert_eq!(&f[7..], ["-1", "-1", "-1"], "{l}");
            for v in &f[2..6] {
                let (_, decimals) = v.split_once('.').expect("decimal point");
                assert_eq!(decimals.len(), 2, "{l}");
            }
            let num = |i: usize| f[i].parse::<f32>().expect("number");
            ResultLine {
                frame: f[0].parse().expect("frame"),
                id: f[1].parse().expect("id"),
                bbox: BBox::from_xywh(num(2), num(3), num(4), num(5)),
                score: num(6),
            }
        })
        .collect()
}

/// Three pedestrians over 80 frames: A leaves after frame 60, B is occluded
/// on frames 30..45 and leaves after 60, C is missed on frames 61..70, when it
/// is the only object, so those frames have no rows at all.
fn write_det_file(path: &std::path::Path) -> BTreeMap<(u64, char), BBox> {
    let mut truth = BTreeMap::new();
    let mut text = String::new();
    for frame in 1..=80u64 {
        let t = frame as f32;
        let mut rows = Vec::new();
        if frame <= 60 {
            rows.push((
                'A',
                BBox::from_xywh(10.0 + 3.0 * t, 50.0, 40.0, 100.0),
                0.91,
            ));
        }
        if !(30..45).contains(&frame) && frame <= 60 {
            rows.push((
                'B',
                BBox::from_xywh(700.0 - 4.0 * t, 300.0, 50.0, 120.0),
                0.8,
            ));
        }
        if !(61..70).contains(&frame) {
            rows.push((
                'C',
                BBox::from_xywh(400.0, 600.0 + 0.5 * t, 30.0, 60.0),
                0.7,
            ));
        }
        for (name, b, score) in rows {
            // Vary the separators the way hand-made and exported files do.
            if frame % 2 == 0 {
                text += &format!(
                    "{frame},-1,{:.2},{:.2},{:.2},{:.2},{score},-1,-1,-1\n",
                    b.x1,
                    b.y1,
                    b.width(),
                    b.height()
                );
            } else {
                text += &format!(
                    "{frame}, 7, {}, {}, {}, {}, {score}\n\n",
                    b.x1,
                    b.y1,
                    b.width(),
                    b.height()
                );
            }
            truth.insert((frame, name), b);
        }
    }
    std::fs::write(path, text).unwrap();
    truth
}

#[test]
fn det_file_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("det.txt");
    let truth = write_det_file(&path);

    let cfg = TrackerConfig {
        smooth: false,
        ..TrackerConfig::default()
    };
    let mut out = Vec::new();
    let input = BufReader::new(File::open(&path).unwrap());
    let summary = mot::run(input, &mut out, &cfg, 30.0).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines = parse_results(&text);

    assert_eq!(summary.frames, 80);
    assert_eq!(summary.detections, truth.len());
    assert_eq!(summary.result_lines, lines.len());
    assert_eq!(summary.tracks, 3);
    assert!(
        lines.windows(2).all(|w| w[0].frame <= w[1].frame),
        "frames in order"
    );

    // Map each result line to the object whose box it is.
    let mut ids: HashMap<char, u64> = HashMap::new();
    let mut seen_frames: HashMap<char, usize> = HashMap::new();
    for l in &lines {
        let (name, b) = ['A', 'B', 'C']
            .iter()
            .filter_map(|&n| truth.get(&(l.frame, n)).map(|b| (n, *b)))
            .max_by(|a, b| a.1.iou(&l.bbox).total_cmp(&b.1.iou(&l.bbox)))
            .expect("a truth box on this frame");
        assert!(
            b.iou(&l.bbox) > 0.99,
            "frame {} {:?} vs {:?}",
            l.frame,
            l.bbox,
            b
        );
        assert!(l.score > 0.5);
        assert_eq!(
            *ids.entry(name).or_insert(l.id),
            l.id,
            "{name} changed id at {}",
            l.frame
        );
        *seen_frames.entry(name).or_default() += 1;
    }
    assert_eq!(ids.len(), 3);
    // Every visible frame of every object is reported (they are all confirmed
    // on frame 1), B included after its 15-frame occlusion, and C after its gap.
    assert_eq!(seen_frames[&'A'], 60);
    assert_eq!(seen_frames[&'B'], 60 - 15);
    assert_eq!(seen_frames[&'C'], 80 - 9);
}

#[test]
fn empty_frames_step_the_lost_buffer() {
    // One object, then 40 frames with no rows at all, then it reappears in
    // place: frames without detections must still count, so it gets a new id.
    let mut text = String::new();
    for frame in 1..=5 {
        text += &format!("{frame},-1,100,100,50,100,0.9\n");
    }
    for frame in 46..=50 {
        text += &format!("{frame},-1,100,100,50,100,0.9\n");
    }
    let mut out = Vec::new();
    mot::run(text.as_bytes(), &mut out, &TrackerConfig::default(), 30.0).unwrap();
    let lines = parse_results(&String::from_utf8(out).unwrap());
    let first = lines.iter().find(|l| l.frame == 5).unwrap().id;
    let last = lines.iter().find(|l| l.frame == 50).unwrap().id;
    assert_eq!((first, last), (1, 2));
    // And at 120 fps the buffer is 120 frames: same id.
    let mut out = Vec::new();
    mot::run(text.as_bytes(), &mut out, &TrackerConfig::default(), 120.0).unwrap();
    let lines = parse_results(&String::from_utf8(out).unwrap());
    assert!(lines.iter().all(|l| l.id == 1));
}

#[test]
fn malformed_file_is_an_error_naming_the_line() {
    let text = "1,-1,10,10,20,20,0.9\n2,-1,10,10,20\n";
    let err = mot::run(text.as_bytes(), Vec::new(), &TrackerConfig::default(), 30.0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "line 2: expected at least 7 fields (frame,id,x,y,w,h,score), got 5"
    );
    let err = mot::run(&b""[..], Vec::new(), &TrackerConfig::default(), 0.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fps"), "{err}");
}
