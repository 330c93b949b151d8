//! Event generation from synthetic, jittery confirmed tracks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::time::{Duration, SystemTime};

use vigil_core::{BBox, Detection, StreamId, Track};
use vigil_events::{
    Anchor, Direction, Event, EventGenerator, EventType, FrameMeta, LineConfig, Units, ZoneConfig,
};

fn meta(i: u64) -> FrameMeta {
    FrameMeta {
        width: 1000,
        height: 1000,
        pts_ms: i as f64 * 40.0,
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i),
    }
}

/// A 20×40 box whose bottom-centre anchor is at (x, y).
fn track_at(id: u64, label: &str, score: f32, x: f32, y: f32) -> Track {
    Track {
        id,
        class_id: 0,
        label: label.into(),
        score,
        bbox: BBox::new(x - 10.0, y - 40.0, x + 10.0, y),
        matched: true,
        age: 5,
    }
}

fn line(name: &str, a: [f32; 2], b: [f32; 2]) -> LineConfig {
    LineConfig {
        name: name.into(),
        a,
        b,
        units: Units::Px,
        classes: vec![],
        min_score: 0.0,
        anchor: Anchor::BottomCenter,
        min_distance: Some(10.0),
        cooldown_frames: 10,
    }
}

fn zone(name: &str, pts: &[[f32; 2]]) -> ZoneConfig {
    ZoneConfig {
        name: name.into(),
        points: pts.to_vec(),
        units: Units::Px,
        classes: vec![],
        min_score: 0.0,
        min_frames: 3,
        anchor: Anchor::BottomCenter,
    }
}

fn square(x1: f32, y1: f32, x2: f32, y2: f32) -> Vec<[f32; 2]> {
    vec![[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
}

/// Runs one track along `ys` (anchor x = 500) and returns every event.
fn run_y(g: &mut EventGenerator, id: u64, ys: &[f32], start_frame: u64) -> Vec<Event> {
    let mut out = Vec::new();
    for (k, y) in ys.iter().enumerate() {
        let f = start_frame + k as u64;
        out.extend(g.on_frame(
            &meta(f),
            &[track_at(id, "person", 0.9, 500.0, *y)],
            &[],
            &[],
        ));
    }
    out
}

fn of(events: &[Event], kind: EventType) -> Vec<&Event> {
    events.iter().filter(|e| e.kind == kind).collect()
}

#[test]
fn a_track_jittering_on_a_line_counts_once() {
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![],
        vec![line("gate", [0.0, 500.0], [1000.0, 500.0])],
    );
    let mut ys = vec![400.0, 450.0, 480.0, 498.0, 503.0, 515.0];
    // Jitter inside the band, then across it both ways, faster than the cooldown.
    ys.extend([
        495.0, 505.0, 499.0, 501.0, 485.0, 515.0, 485.0, 515.0, 489.0, 512.0,
    ]);
    ys.extend([530.0, 560.0, 600.0]);
    let ev = run_y(&mut g, 1, &ys, 0);
    let crossed = of(&ev, EventType::LineCrossed);
    assert_eq!(crossed.len(), 1, "{crossed:#?}");
    assert_eq!(
        crossed[0].direction,
        Some(Direction::In),
        "moving down a left→right line is in"
    );
    assert_eq!(crossed[0].line.as_deref(), Some("gate"));
}

#[test]
fn directions_both_ways_and_after_cooldown() {
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![],
        vec![line("gate", [0.0, 500.0], [1000.0, 500.0])],
    );
    // Down (in), linger beyond the cooldown, then back up (out).
    let mut ys: Vec<f32> = (0..10).map(|k| 440.0 + 12.0 * k as f32).collect();
    ys.extend(std::iter::repeat_n(600.0, 12));
    ys.extend((0..10).map(|k| 560.0 - 12.0 * k as f32));
    let ev = run_y(&mut g, 1, &ys, 0);
    let dirs: Vec<_> = of(&ev, EventType::LineCrossed)
        .iter()
        .map(|e| e.direction)
        .collect();
    assert_eq!(dirs, [Some(Direction::In), Some(Direction::Out)]);

    // A reversed segment (b→a) flips the names.
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![],
        vec![line("gate", [1000.0, 500.0], [0.0, 500.0])],
    );
    let ev = run_y(&mut g, 2, &[450.0, 480.0, 520.0, 550.0], 0);
    let dirs: Vec<_> = of(&ev, EventType::LineCrossed)
        .iter()
        .map(|e| e.direction)
        .collect();
    assert_eq!(dirs, [Some(Direction::Out)]);
}

#[test]
fn a_return_within_the_cooldown_is_counted_once_it_sticks() {
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![],
        vec![line("gate", [0.0, 500.0], [1000.0, 500.0])],
    );
    // In at frame 1, straight back out at frame 2 and staying out.
    let mut ys = vec![450.0, 550.0, 450.0];
    ys.extend(std::iter::repeat_n(440.0, 12));
    let ev = run_y(&mut g, 1, &ys, 0);
    let crossed = of(&ev, EventType::LineCrossed);
    assert_eq!(crossed.len(), 2);
    assert_eq!(crossed[1].direction, Some(Direction::Out));
    assert!(
        crossed[1].pts_ms >= 40.0 * 11.0,
        "held back until the cooldown passed"
    );
}

#[test]
fn passing_beside_the_segment_is_not_a_crossing() {
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![],
        vec![line("gate", [0.0, 500.0], [300.0, 500.0])],
    );
    let ev = run_y(&mut g, 1, &[400.0, 450.0, 550.0, 600.0], 0);
    assert!(of(&ev, EventType::LineCrossed).is_empty());
}

#[test]
fn zone_entry_and_exit_are_debounced() {
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![zone("pen", &square(400.0, 400.0, 600.0, 600.0))],
        vec![],
    );
    let inside = 500.0;
    let outside = 700.0;
    // 2 frames inside is not enough; then 3 in a row is.
    let ys = [
        outside, inside, inside, outside, inside, inside, inside, outside, inside, outside,
        outside, outside,
    ];
    let mut evs = Vec::new();
    for (k, y) in ys.iter().enumerate() {
        let e = g.on_frame(
            &meta(k as u64),
            &[track_at(1, "person", 0.9, 500.0, *y)],
            &[],
            &[],
        );
        evs.push(e);
    }
    let kinds: Vec<(usize, EventType)> = evs
        .iter()
        .enumerate()
        .flat_map(|(k, es)| es.iter().map(move |e| (k, e.kind)))
        .collect();
    assert_eq!(
        kinds,
        [(6, EventType::ZoneEntered), (11, EventType::ZoneLeft)]
    );
    assert_eq!(evs[6][0].zone.as_deref(), Some("pen"));
}

#[test]
fn ending_inside_a_zone_leaves_it_with_the_last_box() {
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![zone("pen", &square(400.0, 400.0, 600.0, 600.0))],
        vec![],
    );
    let t = track_at(9, "dog", 0.7, 500.0, 500.0);
    let first = g.on_frame(&meta(0), std::slice::from_ref(&t), &[9], &[]);
    assert_eq!(of(&first, EventType::TrackStarted).len(), 1);
    for f in 1..3 {
        g.on_frame(&meta(f), std::slice::from_ref(&t), &[], &[]);
    }
    assert_eq!(g.tracked(), 1);
    // Ended in a frame where it is no longer matched.
    let ev = g.on_frame(&meta(10), &[], &[], &[9]);
    let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventType::ZoneLeft, EventType::TrackEnded]);
    assert_eq!(ev[1].bbox, Some(t.bbox));
    assert_eq!(ev[1].label.as_deref(), Some("dog"));
    assert_eq!(ev[1].score, Some(0.7));
    assert_eq!(ev[1].pts_ms, 400.0);
    assert_eq!(g.tracked(), 0, "state dropped with the track");
}

#[test]
fn normalised_coordinates_scale_with_the_frame() {
    let mut z = zone("n", &square(0.4, 0.4, 0.6, 0.6));
    z.units = Units::Norm;
    z.min_frames = 1;
    let mut l = line("nl", [0.0, 0.5], [1.0, 0.5]);
    l.units = Units::Norm;
    l.min_distance = None; // 2 % of the diagonal
    let mut g = EventGenerator::new(StreamId("cam".into()), vec![z], vec![l]);
    let wide = |i: u64| FrameMeta {
        width: 2000,
        height: 500,
        ..meta(i)
    };
    // Anchor (1000, 240): inside the scaled zone (800..1200, 200..300), above the line y=250.
    let e = g.on_frame(
        &wide(0),
        &[track_at(1, "person", 0.9, 1000.0, 240.0)],
        &[],
        &[],
    );
    assert_eq!(of(&e, EventType::ZoneEntered).len(), 1);
    // Diagonal ≈ 2062 px → band ≈ 41 px: 280 is still inside the band, 300 is past it.
    let e = g.on_frame(
        &wide(1),
        &[track_at(1, "person", 0.9, 1000.0, 280.0)],
        &[],
        &[],
    );
    assert!(of(&e, EventType::LineCrossed).is_empty());
    // First committed side needs |d| ≥ 41: 240 was only 10 px away, so commit at 150 first.
    let mut g2 = g;
    g2.on_frame(
        &wide(2),
        &[track_at(1, "person", 0.9, 1000.0, 150.0)],
        &[],
        &[],
    );
    let e = g2.on_frame(
        &wide(3),
        &[track_at(1, "person", 0.9, 1000.0, 300.0)],
        &[],
        &[],
    );
    assert_eq!(of(&e, EventType::LineCrossed).len(), 1);
}

#[test]
fn class_and_score_filters() {
    let mut z = zone("cars", &square(400.0, 400.0, 600.0, 600.0));
    z.classes = vec!["car".into()];
    z.min_score = 0.5;
    z.min_frames = 1;
    let mut l = line("cars", [0.0, 500.0], [1000.0, 500.0]);
    l.classes = vec!["car".into()];
    l.min_score = 0.5;
    let mut g = EventGenerator::new(StreamId("cam".into()), vec![z], vec![l]);
    let path = [450.0, 550.0];
    let mut all = Vec::new();
    for (f, y) in path.iter().enumerate() {
        let tracks = [
            track_at(1, "person", 0.9, 500.0, *y),
            track_at(2, "car", 0.3, 500.0, *y),
            track_at(3, "car", 0.8, 500.0, *y),
        ];
        all.extend(g.on_frame(&meta(f as u64), &tracks, &[], &[]));
    }
    assert!(all.iter().all(|e| e.track_id == Some(3)), "{all:#?}");
    assert_eq!(of(&all, EventType::ZoneEntered).len(), 1);
    assert_eq!(of(&all, EventType::LineCrossed).len(), 1);
}

#[test]
fn only_tracks_passed_in_count() {
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![],
        vec![line("gate", [0.0, 500.0], [1000.0, 500.0])],
    );
    // Started but not passed (e.g. the caller filtered it): nothing yet.
    assert!(g.on_frame(&meta(0), &[], &[4], &[]).is_empty());
    // Ended without ever being observed: nothing, and no state kept.
    assert!(g.on_frame(&meta(1), &[], &[], &[4, 77]).is_empty());
    assert_eq!(g.tracked(), 0);
    // Detections without track ids (tracking off / unconfirmed) are ignored.
    let dets = [Detection {
        class_id: 0,
        label: "person".into(),
        score: 0.9,
        bbox: BBox::new(490.0, 410.0, 510.0, 450.0),
        track_id: None,
    }];
    assert!(g.on_objects(&meta(2), &dets, &[], &[]).is_empty());
    assert_eq!(g.tracked(), 0);
    // With a track id it is a confirmed track.
    let with_id = [Detection {
        track_id: Some(5),
        ..dets[0].clone()
    }];
    let ev = g.on_objects(&meta(3), &with_id, &[5], &[]);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, EventType::TrackStarted);
}

#[test]
fn anchor_choice_changes_membership() {
    let mut bottom = zone("floor", &square(0.0, 480.0, 1000.0, 520.0));
    bottom.min_frames = 1;
    let mut center = bottom.clone();
    center.anchor = Anchor::Center;
    let mut g1 = EventGenerator::new(StreamId("a".into()), vec![bottom], vec![]);
    let mut g2 = EventGenerator::new(StreamId("b".into()), vec![center], vec![]);
    // Bottom at y=530 (outside 480..520), centre at y=510 (inside).
    let t = [track_at(1, "person", 0.9, 500.0, 530.0)];
    assert!(g1.on_frame(&meta(0), &t, &[], &[]).is_empty());
    let e = g2.on_frame(&meta(0), &t, &[], &[]);
    assert_eq!(of(&e, EventType::ZoneEntered).len(), 1);
}

#[test]
fn event_json_has_the_contract_shape() {
    let mut g = EventGenerator::new(
        StreamId("door".into()),
        vec![],
        vec![line("gate", [0.0, 500.0], [1000.0, 500.0])],
    );
    let ev = run_y(&mut g, 3, &[450.0, 550.0], 0);
    let v = serde_json::to_value(&ev[0]).expect("json");
    let obj = v.as_object().expect("object");
    let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "at",
            "bbox",
            "direction",
            "id",
            "label",
            "line",
            "pts_ms",
            "score",
            "stream",
            "track_id",
            "type"
        ]
    );
    assert_eq!(v["type"], "line.crossed");
    assert_eq!(v["direction"], "in");
    assert_eq!(v["stream"], "door");
    assert_eq!(v["at"], "2023-11-14T22:13:21.000Z");
    assert_eq!(v["bbox"].as_array().map(Vec::len), Some(4));
    assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap_or_default()).is_ok());
}

#[test]
fn moving_a_line_live_judges_the_next_crossing_by_the_new_line() {
    let mut g = EventGenerator::new(
        StreamId("cam".into()),
        vec![zone("yard", &square(0.0, 0.0, 1000.0, 1000.0))],
        vec![line("gate", [0.0, 500.0], [1000.0, 500.0])],
    );
    // Settles above the old line (y = 500) and inside the zone.
    let ev = run_y(&mut g, 1, &[300.0, 310.0, 320.0, 330.0], 0);
    assert_eq!(of(&ev, EventType::ZoneEntered).len(), 1, "{ev:#?}");
    // The line moves to y = 200, above the track: moving it is no crossing.
    g.set_rules(
        vec![zone("yard", &square(0.0, 0.0, 1000.0, 1000.0))],
        vec![line("gate", [0.0, 200.0], [1000.0, 200.0])],
    );
    let ev = run_y(&mut g, 1, &[340.0, 350.0, 360.0], 4);
    assert!(of(&ev, EventType::LineCrossed).is_empty(), "{ev:#?}");
    // Crossing the old line's place counts nothing; crossing the new one
    // upwards counts one "out", and the zone state carried over (no second
    // zone.entered for the same stay).
    let ev = run_y(&mut g, 1, &[480.0, 520.0, 560.0, 300.0, 150.0, 100.0], 7);
    let crossed = of(&ev, EventType::LineCrossed);
    assert_eq!(crossed.len(), 1, "{ev:#?}");
    assert_eq!(crossed[0].direction, Some(Direction::Out));
    assert!(of(&ev, EventType::ZoneEntered).is_empty(), "{ev:#?}");
    assert_eq!(g.tracked(), 1);
}
