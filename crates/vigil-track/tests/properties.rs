//! Invariants over random scenes (proptest), and the memory bound on an
//! endless stream.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod common;

use std::collections::HashSet;

use common::{det_class, Rng};
use proptest::prelude::*;
use vigil_core::config::TrackerConfig;
use vigil_core::{Detection, TrackId};
use vigil_track::ByteTracker;

/// One object of a random scene: it exists for `len` frames from `start`.
#[derive(Debug, Clone)]
struct Object {
    start: u32,
    len: u32,
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
    h: f32,
    class_id: u32,
}

fn object() -> impl Strategy<Value = Object> {
    (
        0u32..40,
        1u32..60,
        0.0f32..1200.0,
        0.0f32..700.0,
        -8.0f32..8.0,
        -4.0f32..4.0,
        30.0f32..160.0,
        0u32..3,
    )
        .prop_map(|(start, len, x, y, vx, vy, h, class_id)| Object {
            start,
            len,
            x,
            y,
            vx,
            vy,
            h,
            class_id,
        })
}

#[derive(Debug, Clone)]
struct Scene {
    objects: Vec<Object>,
    /// Seed for per-frame noise: dropouts, score changes, jitter, clutter.
    seed: u64,
    /// Frames between processed frames.
    every: u32,
    smooth: bool,
    per_class: bool,
}

fn scene() -> impl Strategy<Value = Scene> {
    (
        prop::collection::vec(object(), 0..14),
        any::<u64>(),
        1u32..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(objects, seed, every, smooth, per_class)| Scene {
            objects,
            seed,
            every,
            smooth,
            per_class,
        })
}

const FRAMES: u32 = 90;

/// The detections of source frame `f`.
fn detections(scene: &Scene, f: u32, rng: &mut Rng) -> Vec<Detection> {
    let mut out = Vec::new();
    for o in &scene.objects {
        if f < o.start || f >= o.start + o.len || rng.chance(0.1) {
            continue;
        }
        let t = (f - o.start) as f32;
        let jitter = o.h * 0.02;
        out.push(det_class(
            o.class_id,
            o.x + o.vx * t + rng.range(-jitter, jitter),
            o.y + o.vy * t + rng.range(-jitter, jitter),
            // Each object keeps its shape, as real ones do between frames.
            o.h * 0.5 + rng.range(-jitter, jitter),
            o.h + rng.range(-jitter, jitter),
            rng.range(0.05, 1.0),
        ));
    }
    // Clutter: weak and strong one-off boxes.
    if rng.chance(0.3) {
        out.push(det_class(
            0,
            rng.range(0.0, 1200.0),
            rng.range(0.0, 700.0),
            rng.range(10.0, 80.0),
            rng.range(10.0, 80.0),
            rng.range(0.05, 0.9),
        ));
    }
    out
}

fn check_scene(scene: &Scene) -> Result<(), TestCaseError> {
    let cfg = TrackerConfig {
        smooth: scene.smooth,
        per_class: scene.per_class,
        ..TrackerConfig::default()
    };
    let mut tracker =
        ByteTracker::new(cfg, 30.0).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut rng = Rng(scene.seed);
    let mut seen: HashSet<TrackId> = HashSet::new();
    let mut ended: HashSet<TrackId> = HashSet::new();
    let mut max_dets = 0;
    let mut f = 0;
    while f < FRAMES {
        let dets = detections(scene, f, &mut rng);
        max_dets = max_dets.max(dets.len());
        let out = tracker.update(&dets, f64::from(scene.every));

        let mut now = HashSet::new();
        for t in &out.tracks {
            prop_assert!(now.insert(t.id), "id {} twice in frame {f}", t.id);
            prop_assert!(t.id >= 1);
            prop_assert!(!ended.contains(&t.id), "ended id {} reused", t.id);
            prop_assert!(t.matched);
            if scene.smooth {
                let best = dets.iter().map(|d| d.bbox.iou(&t.bbox)).fold(0.0, f32::max);
                prop_assert!(
                    best > 0.5,
                    "smoothed box {:?} overlaps no detection (best IoU {best})",
                    t.bbox
                );
            } else {
                prop_assert!(
                    dets.iter().any(|d| d.bbox == t.bbox && d.score == t.score),
                    "box {:?} is not a detection of frame {f}",
                    t.bbox
                );
            }
        }
        for id in &out.started {
            prop_assert!(seen.insert(*id), "started id {id} was seen before");
        }
        for t in &out.tracks {
            prop_assert!(
                seen.contains(&t.id),
                "id {} output without being started",
                t.id
            );
        }
        for id in &out.ended {
            prop_assert!(seen.contains(id));
            prop_assert!(!now.contains(id), "id {id} output and ended at once");
            prop_assert!(ended.insert(*id), "id {id} ended twice");
        }
        // Every stored track came from a detection within the buffer.
        prop_assert!(tracker.len_internal() <= max_dets * 32 + 1);
        f += scene.every;
    }
    // Ids are handed out consecutively from 1.
    let mut ids: Vec<_> = seen.into_iter().collect();
    ids.sort_unstable();
    prop_assert!(
        ids.iter().enumerate().all(|(i, &id)| id == i as u64 + 1),
        "{ids:?}"
    );
    Ok(())
}

proptest! {
    // Bounded and reproducible: CI runs the same 96 scenes every time.
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EED),
        ..ProptestConfig::default()
    })]

    #[test]
    fn ids_are_unique_never_reused_and_boxes_come_from_detections(s in scene()) {
        check_scene(&s)?;
    }
}

#[test]
fn memory_stays_bounded_on_an_endless_stream_of_short_lived_objects() {
    let mut tracker = ByteTracker::new(TrackerConfig::default(), 30.0).unwrap();
    let mut rng = Rng(42);
    // (x, y, vx, frames left)
    let mut alive: Vec<(f32, f32, f32, u32)> = Vec::new();
    let mut max_internal = 0;
    let mut objects = 0u64;
    let mut last_id = 0;
    for _ in 0..10_000 {
        if alive.len() < 12 && rng.chance(0.5) {
            alive.push((
                rng.range(0.0, 1800.0),
                rng.range(0.0, 1000.0),
                rng.range(-5.0, 5.0),
                rng.range(2.0, 25.0) as u32,
            ));
            objects += 1;
        }
        let dets: Vec<Detection> = alive
            .iter()
            .map(|&(x, y, _, _)| det_class(0, x, y, 40.0, 80.0, 0.8))
            .collect();
        let out = tracker.update(&dets, 1.0);
        for t in &out.tracks {
            last_id = last_id.max(t.id);
        }
        for o in &mut alive {
            o.0 += o.2;
            o.3 -= 1;
        }
        alive.retain(|o| o.3 > 0);
        max_internal = max_internal.max(tracker.len_internal());
        // At most 12 detections a frame, each held at most buffer + 1 frames.
        assert!(tracker.len_internal() <= 12 * 32);
    }
    assert!(max_internal > 0);
    assert!(
        last_id > 100 && last_id <= objects,
        "{last_id} ids for {objects} objects"
    );
    // Once the stream goes quiet every track is ended and dropped.
    for _ in 0..40 {
        tracker.update(&[], 1.0);
    }
    assert_eq!(tracker.len_internal(), 0);
}
