//! A stream's per-frame rules (zones, lines, object filters, masks, event
//! settings) as one immutable value that a live edit swaps whole.
//!
//! The decoder and the tracker never restart for a rule change: the post
//! thread reads the current [`Rules`] once per processed frame through a
//! [`RulesCell`], so an edit applies from the next frame on and track ids
//! continue.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use prometheus::IntCounter;
use vigil_core::config::{
    InvalidValue, MaskConfig, MaskTest, MaskUnits, ObjectFilter, StreamConfig,
};
use vigil_core::{BBox, Detection, TrackId};
use vigil_events::{lines_from_tables, zones_from_tables, LineConfig, ZoneConfig};
use vigil_pipeline::{TrackOutput, TrackStage};

use crate::metrics::{Metrics, FILTER_REASONS};

/// Why a detection was dropped before tracking (the `reason` label of
/// `vigil_detections_filtered_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterReason {
    Score,
    Area,
    Ratio,
    Mask,
}

impl FilterReason {
    const ALL: [FilterReason; 4] = [Self::Score, Self::Area, Self::Ratio, Self::Mask];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::Area => "area",
            Self::Ratio => "ratio",
            Self::Mask => "mask",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The checked, ready-to-apply rules of one stream.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub zones: Vec<ZoneConfig>,
    pub lines: Vec<LineConfig>,
    /// `"*"` merged under every class entry, so a lookup is one map access.
    any: ObjectFilter,
    classes: HashMap<String, ObjectFilter>,
    masks: Vec<MaskConfig>,
    /// Event types raised; empty = all.
    event_types: HashSet<vigil_core::EventType>,
}

impl Rules {
    /// Checks and compiles the rule fields of `cfg`; errors name the key
    /// under `key` (e.g. `streams[door].lines[0].a`).
    pub fn compile(cfg: &StreamConfig, key: &str) -> Result<Rules, Vec<InvalidValue>> {
        let zones = zones_from_tables(key, &cfg.zones)?;
        let lines = lines_from_tables(key, &cfg.lines)?;
        let problems = vigil_events::validate_all(key, &zones, &lines);
        if !problems.is_empty() {
            return Err(problems);
        }
        let any = cfg.filters.get("*").cloned().unwrap_or_default();
        let classes = cfg
            .filters
            .iter()
            .filter(|(k, _)| k.as_str() != "*")
            .map(|(k, f)| (k.clone(), f.over(&any)))
            .collect();
        Ok(Rules {
            zones,
            lines,
            any,
            classes,
            masks: cfg.masks.clone(),
            event_types: vigil_core::config::event_types(&cfg.events.types)
                .into_iter()
                .collect(),
        })
    }

    /// The zones and lines that become Home Assistant entities.
    pub fn entities(&self) -> vigil_events::homeassistant::Entities {
        vigil_events::homeassistant::Entities {
            zones: self.zones.iter().map(|z| z.name.clone()).collect(),
            lines: self.lines.iter().map(|l| l.name.clone()).collect(),
        }
    }

    fn filter(&self, label: &str) -> &ObjectFilter {
        self.classes.get(label).unwrap_or(&self.any)
    }

    /// Processed frames a track of this class must be seen in before it
    /// raises events.
    pub fn min_frames(&self, label: &str) -> u32 {
        self.filter(label).min_frames.unwrap_or(0)
    }

    /// Whether events of this type are raised.
    pub fn raises(&self, kind: vigil_core::EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&kind)
    }

    /// `None` when the detection passes the filters and masks of a
    /// `width` × `height` frame, else the first reason it fails.
    pub fn reject(&self, d: &Detection, width: u32, height: u32) -> Option<FilterReason> {
        let f = self.filter(&d.label);
        let (w, h) = (f64::from(width), f64::from(height));
        if f.min_score.is_some_and(|s| f64::from(d.score) < s) {
            return Some(FilterReason::Score);
        }
        let area = f64::from(d.bbox.area());
        // Values up to 1 are fractions of the frame, above 1 pixels.
        let in_px = |v: f64| if v <= 1.0 { v * w * h } else { v };
        if f.min_area.is_some_and(|a| area < in_px(a))
            || f.max_area.is_some_and(|a| area > in_px(a))
        {
            return Some(FilterReason::Area);
        }
        let bh = f64::from(d.bbox.height());
        let ratio = if bh > 0.0 {
            f64::from(d.bbox.width()) / bh
        } else {
            f64::INFINITY
        };
        if f.min_ratio.is_some_and(|r| ratio < r) || f.max_ratio.is_some_and(|r| ratio > r) {
            return Some(FilterReason::Ratio);
        }
        let masked = self.masks.iter().any(|m| {
            (m.classes.is_empty() || m.classes.contains(&d.label))
                && in_mask(m, &d.bbox, w as f32, h as f32)
        });
        masked.then_some(FilterReason::Mask)
    }
}

/// Whether `bbox` lies in mask `m` by the mask's own test.
fn in_mask(m: &MaskConfig, bbox: &BBox, w: f32, h: f32) -> bool {
    let poly: Vec<[f32; 2]> = m
        .points
        .iter()
        .map(|p| match m.units {
            MaskUnits::Px => *p,
            MaskUnits::Norm => [p[0] * w, p[1] * h],
        })
        .collect();
    match m.test {
        MaskTest::BottomCenter => point_in_polygon([(bbox.x1 + bbox.x2) * 0.5, bbox.y2], &poly),
        MaskTest::Overlap => {
            let area = bbox.area();
            if area <= 0.0 {
                return point_in_polygon([bbox.x1, bbox.y1], &poly);
            }
            let inside = polygon_area(&clip_to_box(&poly, bbox));
            inside / area >= m.min_overlap
        }
    }
}

/// Even-odd rule; points on an edge count as inside the lower/left side,
/// as in any ray-casting test.
pub fn point_in_polygon(p: [f32; 2], poly: &[[f32; 2]]) -> bool {
    let mut inside = false;
    let mut j = poly.len().wrapping_sub(1);
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0];
            if p[0] < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Absolute area by the shoelace formula.
fn polygon_area(poly: &[[f32; 2]]) -> f32 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let twice: f32 = (0..n)
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    (twice * 0.5).abs()
}

/// Sutherland–Hodgman: the part of `poly` inside the box (exact for any
/// simple polygon against a convex clip region, which a box is).
fn clip_to_box(poly: &[[f32; 2]], b: &BBox) -> Vec<[f32; 2]> {
    type Edge = (fn([f32; 2], f32) -> bool, usize, f32);
    let edges: [Edge; 4] = [
        (|p, v| p[0] >= v, 0, b.x1),
        (|p, v| p[0] <= v, 0, b.x2),
        (|p, v| p[1] >= v, 1, b.y1),
        (|p, v| p[1] <= v, 1, b.y2),
    ];
    let mut out = poly.to_vec();
    for (inside, axis, v) in edges {
        let input = std::mem::take(&mut out);
        let Some(&last) = input.last() else { break };
        let mut prev = last;
        for &cur in &input {
            let cross = |a: [f32; 2], c: [f32; 2]| {
                let t = (v - a[axis]) / (c[axis] - a[axis]);
                [a[0] + t * (c[0] - a[0]), a[1] + t * (c[1] - a[1])]
            };
            match (inside(cur, v), inside(prev, v)) {
                (true, true) => out.push(cur),
                (true, false) => {
                    out.push(cross(prev, cur));
                    out.push(cur);
                }
                (false, true) => out.push(cross(prev, cur)),
                (false, false) => {}
            }
            prev = cur;
        }
    }
    out
}

/// The current rules of one stream, shared by its sink, its tracker stage
/// and the API. A read clones an `Arc` under a read lock held for
/// nanoseconds, once per frame, so edits never stall the pipeline.
#[derive(Debug, Default)]
pub struct RulesCell {
    current: RwLock<Arc<Rules>>,
}

impl RulesCell {
    pub fn new(rules: Rules) -> Self {
        Self {
            current: RwLock::new(Arc::new(rules)),
        }
    }

    pub fn load(&self) -> Arc<Rules> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn store(&self, rules: Rules) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }
}

/// Applies a stream's filters and masks where detections enter its tracker,
/// so a filtered detection never starts or feeds a track.
pub struct FilteredTracker {
    inner: Box<dyn TrackStage>,
    rules: Arc<RulesCell>,
    /// One counter per [`FilterReason`], bound to the stream's label once.
    filtered: Vec<IntCounter>,
}

impl FilteredTracker {
    pub fn new(
        inner: Box<dyn TrackStage>,
        rules: Arc<RulesCell>,
        stream: &str,
        metrics: &Metrics,
    ) -> Self {
        debug_assert_eq!(FILTER_REASONS.len(), FilterReason::ALL.len());
        let filtered = FilterReason::ALL
            .iter()
            .map(|r| {
                metrics
                    .detections_filtered_total
                    .with_label_values(&[stream, r.as_str()])
            })
            .collect();
        Self {
            inner,
            rules,
            filtered,
        }
    }
}

impl TrackStage for FilteredTracker {
    fn update(&mut self, detections: &[Detection], elapsed_frames: u32) -> TrackOutput {
        // Without a frame size only pixel rules could apply; the pipeline
        // always calls `update_in_frame`, so pass through unfiltered.
        self.inner.update(detections, elapsed_frames)
    }

    fn update_in_frame(
        &mut self,
        (width, height): (u32, u32),
        detections: &[Detection],
        elapsed_frames: u32,
    ) -> TrackOutput {
        let rules = self.rules.load();
        let kept: Vec<Detection> = detections
            .iter()
            .filter(|d| match rules.reject(d, width, height) {
                None => true,
                Some(r) => {
                    if let Some(c) = self.filtered.get(r.index()) {
                        c.inc();
                    }
                    false
                }
            })
            .cloned()
            .collect();
        self.inner.update(&kept, elapsed_frames)
    }

    fn predict(&self, frames_ahead: u32) -> Vec<vigil_core::Track> {
        self.inner.predict(frames_ahead)
    }
}

/// Holds back a track's events until it has been seen in `min_frames`
/// processed frames (per class, from the stream's filters).
#[derive(Debug, Default)]
pub struct Confirmation {
    seen: HashMap<TrackId, u32>,
}

impl Confirmation {
    /// The objects of a processed frame whose tracks may raise events now.
    /// Tracks held back stay unknown to the event generator, so their
    /// `track.started` comes with their first released frame and a track
    /// that ends before that raises nothing at all.
    pub fn release(
        &mut self,
        rules: &Rules,
        objects: &[Detection],
        ended: &[TrackId],
    ) -> Vec<Detection> {
        let out = objects
            .iter()
            .filter(|d| {
                let Some(id) = d.track_id else { return true };
                let n = self.seen.entry(id).or_insert(0);
                *n = n.saturating_add(1);
                *n >= rules.min_frames(&d.label)
            })
            .cloned()
            .collect();
        for id in ended {
            self.seen.remove(id);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::config::MaskUnits;

    fn det(label: &str, score: f32, b: [f32; 4]) -> Detection {
        Detection {
            class_id: 0,
            label: label.into(),
            score,
            bbox: BBox::new(b[0], b[1], b[2], b[3]),
            track_id: None,
        }
    }

    fn rules(toml_text: &str) -> Rules {
        let cfg: StreamConfig =
            toml::from_str(&format!("id = \"s\"\nurl = \"x.mp4\"\n{toml_text}")).unwrap();
        Rules::compile(&cfg, "s").unwrap()
    }

    #[test]
    fn class_entries_override_star_field_by_field() {
        let r = rules(
            "[filters.\"*\"]\nmin_score = 0.5\nmin_area = 100\n[filters.car]\nmin_score = 0.2\n",
        );
        // person: star rules; car: own score, star's area.
        assert_eq!(
            r.reject(&det("person", 0.4, [0., 0., 20., 20.]), 100, 100),
            Some(FilterReason::Score)
        );
        assert_eq!(
            r.reject(&det("car", 0.4, [0., 0., 20., 20.]), 100, 100),
            None
        );
        assert_eq!(
            r.reject(&det("car", 0.4, [0., 0., 5., 5.]), 100, 100),
            Some(FilterReason::Area)
        );
    }

    #[test]
    fn area_is_a_fraction_up_to_one_and_pixels_above() {
        let r = rules("[filters.\"*\"]\nmin_area = 0.25\nmax_area = 5000\n");
        // 100×100 frame: min 2500 px, max 5000 px.
        assert_eq!(
            r.reject(&det("a", 0.9, [0., 0., 49., 50.]), 100, 100),
            Some(FilterReason::Area)
        );
        assert_eq!(r.reject(&det("a", 0.9, [0., 0., 50., 50.]), 100, 100), None);
        assert_eq!(
            r.reject(&det("a", 0.9, [0., 0., 100., 51.]), 100, 100),
            Some(FilterReason::Area)
        );
    }

    #[test]
    fn ratio_is_width_over_height() {
        let r = rules("[filters.person]\nmin_ratio = 0.2\nmax_ratio = 1.0\n");
        assert_eq!(
            r.reject(&det("person", 0.9, [0., 0., 10., 40.]), 100, 100),
            None
        );
        assert_eq!(
            r.reject(&det("person", 0.9, [0., 0., 40., 10.]), 100, 100),
            Some(FilterReason::Ratio)
        );
        assert_eq!(
            r.reject(&det("person", 0.9, [0., 0., 1., 40.]), 100, 100),
            Some(FilterReason::Ratio)
        );
        // Other classes are untouched.
        assert_eq!(
            r.reject(&det("car", 0.9, [0., 0., 40., 10.]), 100, 100),
            None
        );
    }

    #[test]
    fn masks_by_bottom_centre_or_by_overlap() {
        let left_half =
            "points = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]\nunits = \"norm\"\n";
        let r = rules(&format!("[[masks]]\n{left_half}"));
        // Bottom-centre at x = 45 (masked) vs 55 (kept) in a 100-wide frame.
        assert_eq!(
            r.reject(&det("a", 0.9, [40., 0., 50., 10.]), 100, 100),
            Some(FilterReason::Mask)
        );
        assert_eq!(
            r.reject(&det("a", 0.9, [40., 0., 70., 10.]), 100, 100),
            None
        );
        let r = rules(&format!(
            "[[masks]]\n{left_half}test = \"overlap\"\nmin_overlap = 0.6\n"
        ));
        // 40..70: a third inside; 20..60: three quarters inside.
        assert_eq!(
            r.reject(&det("a", 0.9, [40., 0., 70., 10.]), 100, 100),
            None
        );
        assert_eq!(
            r.reject(&det("a", 0.9, [20., 0., 60., 10.]), 100, 100),
            Some(FilterReason::Mask)
        );
        let r = rules(
            "[[masks]]\npoints = [[0, 0], [50, 0], [50, 100], [0, 100]]\nclasses = [\"car\"]\n",
        );
        assert_eq!(
            r.reject(&det("person", 0.9, [10., 0., 20., 10.]), 100, 100),
            None
        );
        assert_eq!(
            r.reject(&det("car", 0.9, [10., 0., 20., 10.]), 100, 100),
            Some(FilterReason::Mask)
        );
        let _ = MaskUnits::Px;
    }

    #[test]
    fn clipping_measures_the_overlap_exactly() {
        let tri = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let b = BBox::new(0.0, 0.0, 5.0, 5.0);
        // The triangle covers the whole 5×5 box.
        assert!((polygon_area(&clip_to_box(&tri, &b)) - 25.0).abs() < 1e-3);
        let b = BBox::new(5.0, 5.0, 10.0, 10.0);
        // Only the corner point touches.
        assert!(polygon_area(&clip_to_box(&tri, &b)).abs() < 1e-3);
    }

    #[test]
    fn confirmation_holds_events_back_per_class() {
        let r = rules("[filters.person]\nmin_frames = 3\n");
        let mut c = Confirmation::default();
        let mut p = det("person", 0.9, [0., 0., 10., 10.]);
        p.track_id = Some(1);
        let mut car = det("car", 0.9, [0., 0., 10., 10.]);
        car.track_id = Some(2);
        let objs = [p, car];
        assert_eq!(c.release(&r, &objs, &[]).len(), 1);
        assert_eq!(c.release(&r, &objs, &[]).len(), 1);
        assert_eq!(c.release(&r, &objs, &[]).len(), 2);
        c.release(&r, &[], &[1]);
        assert!(!c.seen.contains_key(&1));
    }
}
