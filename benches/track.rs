//! Tracker update cost per frame in steady state: N objects moving steadily
//! with small box noise, every object matched every frame (the common case
//! for a busy camera). Goal: at most 50 µs per frame at 50 objects.
//!
//! `cargo bench -p vigil-benches --bench track`
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vigil_core::config::TrackerConfig;
use vigil_core::{BBox, Detection};
use vigil_track::ByteTracker;

/// Frames per motion period; the scene repeats seamlessly after this many, so
/// the benchmark can loop over it forever without tracks jumping.
const PERIOD: usize = 120;

/// SplitMix64, so the scene is the same on every run without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// `n` objects on a grid over a 1920×1080 frame, each circling its cell
/// (about 1 px/frame) with ±1 px box noise and scores 0.5–0.95.
fn scene(n: usize) -> Vec<Vec<Detection>> {
    let cols = (n as f32 * 16.0 / 9.0).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let (cw, ch) = (1920.0 / cols as f32, 1080.0 / rows as f32);
    let mut rng = Rng(1);
    (0..PERIOD)
        .map(|f| {
            let phase = f as f32 / PERIOD as f32 * std::f32::consts::TAU;
            (0..n)
                .map(|i| {
                    let (cx, cy) = ((i % cols) as f32 + 0.5, (i / cols) as f32 + 0.5);
                    let (w, h) = (cw * 0.35, ch * 0.6);
                    let r = cw.min(ch) * 0.1;
                    let x = cx * cw + r * (phase + i as f32).cos() - w / 2.0;
                    let y = cy * ch + r * (phase + i as f32).sin() - h / 2.0;
                    let score = 0.5 + 0.45 * rng.unit();
                    let mut noise = || rng.unit() * 2.0 - 1.0;
                    Detection {
                        class_id: (i % 3) as u32,
                        label: "object".to_string(),
                        score,
                        bbox: BBox::new(x + noise(), y + noise(), x + w + noise(), y + h + noise()),
                        track_id: None,
                    }
                })
                .collect()
        })
        .collect()
}

fn bench_update(c: &mut Criterion) {
    let mut group = c.benchmark_group("track_update");
    for n in [10usize, 50, 200] {
        let frames = scene(n);
        let mut tracker = ByteTracker::new(TrackerConfig::default(), 30.0).expect("valid config");
        // Warm up into steady state: all tracks confirmed and moving.
        for dets in frames.iter().take(10) {
            tracker.update(dets, 1.0);
        }
        let mut f = 10;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let out = tracker.update(black_box(&frames[f % PERIOD]), 1.0);
                f += 1;
                out
            })
        });
        // Sanity: the benchmark measured tracking, not track churn.
        let out = tracker.update(&frames[f % PERIOD], 1.0);
        assert_eq!(out.tracks.len(), n, "all {n} objects tracked");
        assert!(out.tracks.iter().all(|t| t.id <= n as u64), "no id churn");
    }
    group.finish();
}

criterion_group!(benches, bench_update);
criterion_main!(benches);
