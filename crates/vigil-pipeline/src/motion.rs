//! Motion gating: whether a selected frame is worth running the detector on.
//!
//! The question is asked against the frame the detector *last looked at*:
//! if nothing changed since then, its answer would be the same. The change
//! detector works on a grey thumbnail of at most 128 cells a side (each cell
//! the mean luma of its pixels, so sensor and compression noise average
//! out), removes the frame's overall brightness change by histogram
//! matching (lighting flicker, auto exposure), and
//! counts cells whose residual change is above a noise floor (the configured
//! one, raised on noisy pictures). Connected changed areas smaller than
//! `min_area` do not count, unless they touch a stationary object.
//!
//! A camera's own timestamp overlay changes every second in the same small
//! place, and the detector finds nothing there. Such *unexplained* changes
//! are learned: after [`OVERLAY_AFTER`] triggers in the same place that no
//! detection explained, the place is ignored (forgotten again slowly, one
//! step a minute). Changes a detection explains are never learned.
//!
//! Objects that stay put are handled on the tracking side
//! ([`Stationary`]): a track whose box has not moved for
//! `stationary_after_s` stops keeping the detector busy; moving and lost
//! tracks keep it running at the stream's rate so tracks start and end as
//! without gating. While nothing moves, one check frame runs every
//! `check_every_s`.

use std::collections::{HashMap, HashSet, VecDeque};

use vigil_core::config::MotionConfig;
use vigil_core::{BBox, ImageBgr, PtsMs, TrackId};

use crate::types::TrackOutput;

/// Longest side of the thumbnail, in cells.
const THUMB_MAX: usize = 128;
/// Unexplained triggers in one place before it is ignored as an overlay.
pub const OVERLAY_AFTER: u32 = 3;
/// Media time after which every learned place is one step less certain.
const OVERLAY_DECAY_MS: f64 = 60_000.0;
/// Larger changed areas (fraction of the frame) are never learned as
/// overlays: those are scene changes, not a clock.
const OVERLAY_MAX_AREA: f64 = 0.05;
/// Places remembered; the least certain is forgotten first.
const OVERLAY_SLOTS: usize = 16;
/// The noise floor rises to this many robust standard deviations of the
/// frame's residual change, but never above this many times `threshold`.
const NOISE_SIGMAS: f32 = 4.0;
const NOISE_MAX_FACTOR: f32 = 3.0;
/// A changed area touching a stationary box wakes it when it covers this
/// share of the box (a seated person standing up, a parked car's door).
const STATIONARY_WAKE_SHARE: f64 = 0.1;
/// Runs whose detections have not come back yet are remembered this long.
const PENDING_MAX: usize = 64;
/// Boxes with an IoU at least this high against where a track settled are
/// "not moved" (detector jitter on a still object stays well above it).
const STILL_IOU: f32 = 0.75;
/// A stationary track wakes when its box falls below this IoU against where
/// it settled.
const WAKE_IOU: f32 = 0.5;

/// Why the detector runs on a frame (or does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The first frame, or the picture size changed.
    First,
    /// Something moved since the detector last looked.
    Motion,
    /// A track is moving or lost: detection follows it at the stream's rate.
    Tracking,
    /// Nothing moved for `check_every_s`: the periodic check frame.
    Check,
    /// Nothing moved: the frame is skipped (`outcome="still"`).
    Still,
    /// Something is being followed, but the detector has not answered the
    /// previous frame for it yet: this one is skipped like a frame the skip
    /// policy leaves out (`outcome="skipped"`). Only on live streams whose
    /// pipeline is behind; it keeps an overloaded detector from being fed
    /// frames whose only purpose is to repeat an unanswered question.
    Deferred,
}

impl Gate {
    pub fn runs(self) -> bool {
        !matches!(self, Gate::Still | Gate::Deferred)
    }
}

/// A grey thumbnail: the mean luma of each cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    w: usize,
    h: usize,
    px: Vec<f32>,
}

impl Thumbnail {
    /// Samples every other pixel of every other row: a cell spans several
    /// pixels each way, so this halves nothing but the cost.
    pub fn of(image: &ImageBgr) -> Thumbnail {
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let scale = (THUMB_MAX as f64 / iw.max(ih) as f64).min(1.0);
        let w = ((iw as f64 * scale).round() as usize).max(1);
        let h = ((ih as f64 * scale).round() as usize).max(1);
        let step = if iw.max(ih) >= 2 * THUMB_MAX { 2 } else { 1 };
        let mut sum = vec![0u32; w * h];
        let mut count = vec![0u32; w * h];
        let data = image.data();
        let col: Vec<usize> = (0..iw).map(|x| x * w / iw).collect();
        for y in (0..ih).step_by(step) {
            let row = (y * h / ih) * w;
            let line = &data[y * iw * 3..(y + 1) * iw * 3];
            for x in (0..iw).step_by(step) {
                let p = &line[x * 3..x * 3 + 3];
                // BT.601 luma in fixed point (B, G, R order).
                let luma =
                    (29 * u32::from(p[0]) + 150 * u32::from(p[1]) + 77 * u32::from(p[2])) >> 8;
                let c = row + col[x];
                sum[c] += luma;
                count[c] += 1;
            }
        }
        let px = sum
            .iter()
            .zip(&count)
            .map(|(&s, &n)| if n == 0 { 0.0 } else { s as f32 / n as f32 })
            .collect();
        Thumbnail { w, h, px }
    }

    pub fn size(&self) -> (usize, usize) {
        (self.w, self.h)
    }
}

/// A connected area of changed cells, in thumbnail cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    pub cells: usize,
    /// `[x0, y0, x1, y1]`, inclusive cell coordinates.
    pub rect: [usize; 4],
}

impl Blob {
    fn area_share(&self, w: usize, h: usize) -> f64 {
        self.cells as f64 / (w * h) as f64
    }
}

/// Per-cell change of `cur` against `reference` after removing the
/// picture-wide change of brightness, thresholded at `floor` raised to the
/// picture's own noise, as connected (8-neighbour) areas. Cells in `ignore`
/// never count.
///
/// The brightness change is removed by histogram matching: each cell of
/// the reference is mapped to the value of the same rank in the current
/// frame. That undoes any monotone change of the whole picture (lighting
/// flicker, auto exposure, gamma, even clipping in a bright sky, which
/// defeats a gain-and-offset fit), while a moving object, a small share of
/// the cells, barely moves the ranks.
pub fn changed_areas(
    reference: &Thumbnail,
    cur: &Thumbnail,
    floor: f32,
    ignore: &[bool],
) -> Vec<Blob> {
    let n = cur.px.len().min(reference.px.len());
    let used: Vec<usize> = (0..n)
        .filter(|&i| !ignore.get(i).copied().unwrap_or(false))
        .collect();
    if used.len() < 2 {
        return Vec::new();
    }
    let mut by_ref = used.clone();
    by_ref.sort_unstable_by(|&a, &b| reference.px[a].total_cmp(&reference.px[b]));
    let mut cur_sorted: Vec<f32> = used.iter().map(|&i| cur.px[i]).collect();
    cur_sorted.sort_unstable_by(f32::total_cmp);
    let mut residual = vec![0f32; n];
    for (rank, &i) in by_ref.iter().enumerate() {
        residual[i] = (cur.px[i] - cur_sorted[rank]).abs();
    }
    // Robust noise estimate: the median absolute residual (most of a frame
    // does not move), as a standard deviation.
    let mut sorted: Vec<f32> = used.iter().map(|&i| residual[i]).collect();
    let mid = sorted.len() / 2;
    let (_, median, _) = sorted.select_nth_unstable_by(mid, f32::total_cmp);
    let sigma = 1.4826 * *median;
    let limit = floor.max((NOISE_SIGMAS * sigma).min(NOISE_MAX_FACTOR * floor));
    let mut changed = vec![false; n];
    for &i in &used {
        changed[i] = residual[i] > limit;
    }
    components(&changed, cur.w, cur.h)
}

fn components(changed: &[bool], w: usize, h: usize) -> Vec<Blob> {
    let mut seen = vec![false; changed.len()];
    let mut blobs = Vec::new();
    let mut stack = Vec::new();
    for start in 0..changed.len() {
        if !changed[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut blob = Blob {
            cells: 0,
            rect: [start % w, start / w, start % w, start / w],
        };
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            blob.cells += 1;
            blob.rect = [
                blob.rect[0].min(x),
                blob.rect[1].min(y),
                blob.rect[2].max(x),
                blob.rect[3].max(y),
            ];
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if changed[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        blobs.push(blob);
    }
    blobs
}

/// A polygon of the frame where motion never counts (a mask), in
/// source-frame pixels or as fractions of the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionMask {
    pub points: Vec<[f32; 2]>,
    pub normalized: bool,
}

/// What the stream's post thread tells the gate after each processed frame.
#[derive(Debug, Default)]
pub(crate) struct Feedback {
    /// A track is moving or lost: keep detecting at the stream's rate.
    pub attention: bool,
    /// Boxes of stationary tracks, source pixels.
    pub stationary: Vec<BBox>,
    /// Detection boxes of processed frames by scheduler sequence number,
    /// not yet seen by the gate (it learns overlays from them).
    pub results: Vec<(u64, Vec<BBox>)>,
    /// The newest sequence number the post thread has handled.
    pub answered: Option<u64>,
}

/// A place where the detector was woken for nothing.
#[derive(Debug, Clone)]
struct Overlay {
    rect: [usize; 4],
    count: u32,
}

/// The per-stream gate; lives in the scheduler.
#[derive(Debug)]
pub struct MotionGate {
    cfg: MotionConfig,
    masks: Vec<MotionMask>,
    reference: Option<Thumbnail>,
    /// Image size the thumbnail and `ignore` were made for.
    image_size: (u32, u32),
    mask_cells: Vec<bool>,
    last_run_ms: f64,
    pending: VecDeque<(u64, Vec<Blob>)>,
    overlays: Vec<Overlay>,
    last_decay_ms: f64,
    /// The last run made only to follow tracks, until it is answered.
    following: Option<u64>,
    /// Defer repeated questions while the detector is behind (live streams:
    /// their frames are dropped otherwise; a file waits instead).
    defer: bool,
}

impl MotionGate {
    pub fn new(cfg: MotionConfig, masks: Vec<MotionMask>) -> Self {
        Self {
            cfg,
            masks,
            reference: None,
            image_size: (0, 0),
            mask_cells: Vec::new(),
            last_run_ms: f64::NEG_INFINITY,
            pending: VecDeque::new(),
            overlays: Vec::new(),
            last_decay_ms: 0.0,
            following: None,
            defer: false,
        }
    }

    /// Turns on [`Gate::Deferred`] (for live streams).
    pub fn deferring(mut self, on: bool) -> Self {
        self.defer = on;
        self
    }

    pub fn config(&self) -> &MotionConfig {
        &self.cfg
    }

    /// Decides for a frame the skip policy selected. `seq` identifies it in
    /// the detections fed back through `feedback`.
    pub(crate) fn decide(
        &mut self,
        image: &ImageBgr,
        pts: PtsMs,
        seq: u64,
        feedback: &mut Feedback,
    ) -> Gate {
        let thumb = Thumbnail::of(image);
        let size = (image.width(), image.height());
        for (s, boxes) in std::mem::take(&mut feedback.results) {
            self.learn(s, &boxes);
        }
        self.decay(pts.0);
        let reference = match self.reference.take() {
            Some(r) if self.image_size == size && r.size() == thumb.size() => r,
            _ => {
                self.image_size = size;
                self.mask_cells = mask_cells(&self.masks, size, thumb.size());
                self.overlays.clear();
                self.pending.clear();
                return self.run(thumb, pts, seq, Vec::new(), Gate::First);
            }
        };
        let ignore = self.ignored_cells(thumb.size());
        let blobs = changed_areas(&reference, &thumb, self.cfg.threshold as f32, &ignore);
        let (w, h) = thumb.size();
        let stationary: Vec<[usize; 4]> = feedback
            .stationary
            .iter()
            .map(|b| to_cells(b, size, (w, h)))
            .collect();
        let moving: Vec<Blob> = blobs
            .into_iter()
            .filter(|b| {
                b.area_share(w, h) >= self.cfg.min_area || stationary.iter().any(|r| wakes(b, r))
            })
            .collect();
        let answered = |s: u64| feedback.answered.is_some_and(|a| a >= s);
        if !moving.is_empty() {
            // The same small change again where the detector's answer is
            // still outstanding (a clock ticking while the pipeline is behind).
            let repeat = moving.iter().all(|b| {
                self.pending.iter().any(|(s, blobs)| {
                    !answered(*s)
                        && blobs
                            .iter()
                            .any(|p| contains(&grow(p.rect, 1, w, h), &b.rect))
                })
            });
            if repeat && self.defer {
                self.reference = Some(reference);
                return Gate::Deferred;
            }
            return self.run(thumb, pts, seq, moving, Gate::Motion);
        }
        if feedback.attention {
            if self.defer && self.following.is_some_and(|s| !answered(s)) {
                self.reference = Some(reference);
                return Gate::Deferred;
            }
            self.following = Some(seq);
            return self.run(thumb, pts, seq, Vec::new(), Gate::Tracking);
        }
        if pts.0 - self.last_run_ms >= self.cfg.check_every_s * 1000.0 {
            return self.run(thumb, pts, seq, Vec::new(), Gate::Check);
        }
        self.reference = Some(reference);
        Gate::Still
    }

    /// The detector looks at this frame: it becomes the new reference.
    fn run(&mut self, thumb: Thumbnail, pts: PtsMs, seq: u64, blobs: Vec<Blob>, why: Gate) -> Gate {
        self.reference = Some(thumb);
        self.last_run_ms = pts.0;
        if !blobs.is_empty() {
            if self.pending.len() >= PENDING_MAX {
                self.pending.pop_front();
            }
            self.pending.push_back((seq, blobs));
        }
        why
    }

    /// Detections came back for run `seq`: changes they do not explain are
    /// overlay candidates; changes they explain clear any candidate there.
    fn learn(&mut self, seq: u64, boxes: &[BBox]) {
        // Runs before `seq` that never came back (failed frames) are dropped.
        while self.pending.front().is_some_and(|(s, _)| *s < seq) {
            self.pending.pop_front();
        }
        let Some((_, blobs)) = self.pending.front().filter(|(s, _)| *s == seq).cloned() else {
            return;
        };
        self.pending.pop_front();
        let Some((w, h)) = self.reference.as_ref().map(Thumbnail::size) else {
            return;
        };
        let cells: Vec<[usize; 4]> = boxes
            .iter()
            .map(|b| grow(to_cells(b, self.image_size, (w, h)), 1, w, h))
            .collect();
        for blob in blobs {
            if cells.iter().any(|c| intersects(c, &blob.rect)) {
                self.overlays.retain(|o| !intersects(&o.rect, &blob.rect));
                continue;
            }
            if blob.area_share(w, h) > OVERLAY_MAX_AREA {
                continue;
            }
            match self
                .overlays
                .iter_mut()
                .find(|o| intersects(&o.rect, &blob.rect))
            {
                Some(o) => {
                    o.rect = union(&o.rect, &blob.rect);
                    o.count = (o.count + 1).min(OVERLAY_AFTER + 2);
                }
                None => {
                    if self.overlays.len() >= OVERLAY_SLOTS {
                        if let Some(weakest) =
                            (0..self.overlays.len()).min_by_key(|&i| self.overlays[i].count)
                        {
                            self.overlays.swap_remove(weakest);
                        }
                    }
                    self.overlays.push(Overlay {
                        rect: blob.rect,
                        count: 1,
                    });
                }
            }
        }
    }

    fn decay(&mut self, now_ms: f64) {
        if now_ms < self.last_decay_ms {
            // pts went backwards (a new file); start the clock again.
            self.last_decay_ms = now_ms;
        }
        while now_ms - self.last_decay_ms >= OVERLAY_DECAY_MS {
            self.last_decay_ms += OVERLAY_DECAY_MS;
            for o in &mut self.overlays {
                o.count = o.count.saturating_sub(1);
            }
            self.overlays.retain(|o| o.count > 0);
        }
    }

    fn ignored_cells(&self, (w, h): (usize, usize)) -> Vec<bool> {
        let mut ignore = self.mask_cells.clone();
        ignore.resize(w * h, false);
        for o in self.overlays.iter().filter(|o| o.count >= OVERLAY_AFTER) {
            for y in o.rect[1]..=o.rect[3].min(h - 1) {
                for x in o.rect[0]..=o.rect[2].min(w - 1) {
                    ignore[y * w + x] = true;
                }
            }
        }
        ignore
    }

    /// Places learned as overlays (for tests and logs), in thumbnail cells.
    pub fn overlays(&self) -> Vec<[usize; 4]> {
        self.overlays
            .iter()
            .filter(|o| o.count >= OVERLAY_AFTER)
            .map(|o| o.rect)
            .collect()
    }
}

/// A changed area wakes a stationary object when it overlaps its box and
/// covers a fair share of it.
fn wakes(blob: &Blob, rect: &[usize; 4]) -> bool {
    if !intersects(&blob.rect, rect) {
        return false;
    }
    let box_cells = (rect[2] + 1 - rect[0]) * (rect[3] + 1 - rect[1]);
    blob.cells >= 2 && blob.cells as f64 >= STATIONARY_WAKE_SHARE * box_cells as f64
}

fn to_cells(b: &BBox, (iw, ih): (u32, u32), (w, h): (usize, usize)) -> [usize; 4] {
    let sx = w as f32 / iw.max(1) as f32;
    let sy = h as f32 / ih.max(1) as f32;
    let cx = |v: f32| ((v * sx).floor().max(0.0) as usize).min(w - 1);
    let cy = |v: f32| ((v * sy).floor().max(0.0) as usize).min(h - 1);
    [cx(b.x1), cy(b.y1), cx(b.x2), cy(b.y2)]
}

fn grow(r: [usize; 4], by: usize, w: usize, h: usize) -> [usize; 4] {
    [
        r[0].saturating_sub(by),
        r[1].saturating_sub(by),
        (r[2] + by).min(w - 1),
        (r[3] + by).min(h - 1),
    ]
}

fn contains(outer: &[usize; 4], inner: &[usize; 4]) -> bool {
    outer[0] <= inner[0] && outer[1] <= inner[1] && inner[2] <= outer[2] && inner[3] <= outer[3]
}

fn intersects(a: &[usize; 4], b: &[usize; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

fn union(a: &[usize; 4], b: &[usize; 4]) -> [usize; 4] {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

/// Cells whose centre lies in any mask polygon.
fn mask_cells(masks: &[MotionMask], (iw, ih): (u32, u32), (w, h): (usize, usize)) -> Vec<bool> {
    let mut out = vec![false; w * h];
    if masks.is_empty() {
        return out;
    }
    for y in 0..h {
        for x in 0..w {
            let (nx, ny) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
            out[y * w + x] = masks.iter().any(|m| {
                let (px, py) = if m.normalized {
                    (nx, ny)
                } else {
                    (nx * iw as f32, ny * ih as f32)
                };
                point_in_polygon(px, py, &m.points)
            });
        }
    }
    out
}

fn point_in_polygon(x: f32, y: f32, poly: &[[f32; 2]]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let [xi, yi] = poly[i];
        let [xj, yj] = poly[(i + n - 1) % n];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    inside
}

/// Which tracks keep the detector busy; lives in the stream's post thread.
#[derive(Debug)]
pub struct Stationary {
    after_ms: f64,
    /// Confirmed tracks not yet ended.
    alive: HashSet<TrackId>,
    /// Where each track settled and since when (pts ms).
    anchors: HashMap<TrackId, (BBox, f64)>,
}

impl Stationary {
    pub fn new(stationary_after_s: f64) -> Self {
        Self {
            after_ms: stationary_after_s * 1000.0,
            alive: HashSet::new(),
            anchors: HashMap::new(),
        }
    }

    /// After a processed frame: whether any track moves or is lost (then
    /// detection must follow at the stream's rate), and the boxes of the
    /// stationary ones.
    pub fn update(&mut self, pts: PtsMs, out: &TrackOutput) -> (bool, Vec<BBox>) {
        for id in &out.ended {
            self.alive.remove(id);
            self.anchors.remove(id);
        }
        self.alive.extend(out.started.iter().copied());
        let mut attention = false;
        let mut stationary = Vec::new();
        let mut matched = HashSet::new();
        for t in &out.tracks {
            matched.insert(t.id);
            let anchor = self.anchors.entry(t.id).or_insert((t.bbox, pts.0));
            // Hysteresis: a stationary object needs a clear move to wake
            // (motion inside its box wakes it anyway), so detector jitter on
            // a check frame does not restart its clock.
            let limit = if pts.0 - anchor.1 >= self.after_ms {
                WAKE_IOU
            } else {
                STILL_IOU
            };
            if anchor.0.iou(&t.bbox) < limit {
                *anchor = (t.bbox, pts.0);
            }
            if pts.0 - anchor.1 >= self.after_ms {
                stationary.push(t.bbox);
            } else {
                attention = true;
            }
        }
        // A confirmed track the detector did not see this time: follow it
        // at the stream's rate until it is found again or ends.
        if self.alive.iter().any(|id| !matched.contains(id)) {
            attention = true;
        }
        self.anchors
            .retain(|id, _| self.alive.contains(id) || matched.contains(id));
        (attention, stationary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::Track;

    /// A grey picture with deterministic "sensor noise" and optional
    /// rectangles of another grey.
    fn picture(w: u32, h: u32, seed: u32, gain: f32, rects: &[([u32; 4], u8)]) -> ImageBgr {
        let mut img = ImageBgr::filled(w, h, [0, 0, 0]);
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let data = img.data_mut();
        for y in 0..h {
            for x in 0..w {
                // A textured background: a horizontal ramp.
                let mut v = 60.0 + 120.0 * x as f32 / w as f32;
                for (r, g) in rects {
                    if x >= r[0] && x < r[2] && y >= r[1] && y < r[3] {
                        v = f32::from(*g);
                    }
                }
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let noise = (s % 31) as f32 - 15.0;
                let o = ((y * w + x) * 3) as usize;
                let p = (v * gain + noise).clamp(0.0, 255.0) as u8;
                data[o..o + 3].copy_from_slice(&[p, p, p]);
            }
        }
        img
    }

    fn gate() -> MotionGate {
        MotionGate::new(
            MotionConfig {
                check_every_s: 5.0,
                ..MotionConfig::default()
            },
            Vec::new(),
        )
    }

    fn decide(g: &mut MotionGate, img: &ImageBgr, ms: f64, seq: u64) -> Gate {
        g.decide(img, PtsMs(ms), seq, &mut Feedback::default())
    }

    #[test]
    fn noise_and_flicker_are_not_motion() {
        let mut g = gate();
        assert_eq!(
            decide(&mut g, &picture(320, 240, 1, 1.0, &[]), 0.0, 0),
            Gate::First
        );
        for i in 1..20u32 {
            let gain = if i % 2 == 0 { 0.8 } else { 1.2 };
            let img = picture(320, 240, i + 1, gain, &[]);
            assert_eq!(
                decide(&mut g, &img, f64::from(i) * 100.0, u64::from(i)),
                Gate::Still,
                "frame {i}"
            );
        }
        // 5 s after the last run: a check frame.
        assert_eq!(
            decide(&mut g, &picture(320, 240, 99, 1.0, &[]), 5000.0, 99),
            Gate::Check
        );
    }

    #[test]
    fn an_object_entering_is_motion_and_becomes_the_reference() {
        let mut g = gate();
        decide(&mut g, &picture(320, 240, 1, 1.0, &[]), 0.0, 0);
        let person = [([100, 60, 130, 140], 20)];
        assert_eq!(
            decide(&mut g, &picture(320, 240, 2, 1.0, &person), 100.0, 1),
            Gate::Motion
        );
        // It stays: nothing changed since the detector looked.
        assert_eq!(
            decide(&mut g, &picture(320, 240, 3, 1.0, &person), 200.0, 2),
            Gate::Still
        );
    }

    #[test]
    fn small_changes_need_a_stationary_box_to_count() {
        let mut g = gate();
        let car = [([100, 100, 200, 160], 30)];
        decide(&mut g, &picture(320, 240, 1, 1.0, &car), 0.0, 0);
        // A 14x14 change inside the car: below min_area on its own…
        let door = [([100, 100, 200, 160], 30), ([148, 118, 162, 132], 200)];
        assert_eq!(
            decide(&mut g, &picture(320, 240, 2, 1.0, &door), 100.0, 1),
            Gate::Still
        );
        // …but it wakes the stationary car.
        let mut fb = Feedback {
            stationary: vec![BBox::new(140.0, 110.0, 170.0, 140.0)],
            ..Feedback::default()
        };
        assert_eq!(
            g.decide(&picture(320, 240, 3, 1.0, &door), PtsMs(200.0), 2, &mut fb),
            Gate::Motion
        );
    }

    #[test]
    fn attention_keeps_detection_running() {
        let mut g = gate();
        decide(&mut g, &picture(320, 240, 1, 1.0, &[]), 0.0, 0);
        let mut fb = Feedback {
            attention: true,
            ..Feedback::default()
        };
        assert_eq!(
            g.decide(&picture(320, 240, 2, 1.0, &[]), PtsMs(100.0), 1, &mut fb),
            Gate::Tracking
        );
    }

    #[test]
    fn unexplained_changes_in_one_place_are_learned_and_explained_ones_are_not() {
        let mut g = MotionGate::new(
            MotionConfig {
                min_area: 0.001,
                ..MotionConfig::default()
            },
            Vec::new(),
        );
        decide(&mut g, &picture(320, 240, 1, 1.0, &[]), 0.0, 0);
        // A "clock" blinking in the corner; the detector never finds anything there.
        let mut runs = 0;
        for i in 1..=10u64 {
            let g_value = if i % 2 == 0 { 250 } else { 5 };
            let clock = [([280, 5, 310, 20], g_value)];
            let mut fb = Feedback {
                results: (i > 1).then(|| (i - 1, Vec::new())).into_iter().collect(),
                ..Feedback::default()
            };
            if g.decide(
                &picture(320, 240, i as u32 + 1, 1.0, &clock),
                PtsMs(i as f64 * 200.0),
                i,
                &mut fb,
            ) == Gate::Motion
            {
                runs += 1;
            }
        }
        assert_eq!(runs, OVERLAY_AFTER as usize, "{:?}", g.overlays());
        assert_eq!(g.overlays().len(), 1);

        // The same blinking, but a detection covers it every time: never learned.
        let mut g = MotionGate::new(
            MotionConfig {
                min_area: 0.001,
                ..MotionConfig::default()
            },
            Vec::new(),
        );
        decide(&mut g, &picture(320, 240, 1, 1.0, &[]), 0.0, 0);
        let mut runs = 0;
        for i in 1..=10u64 {
            let g_value = if i % 2 == 0 { 250 } else { 5 };
            let clock = [([280, 5, 310, 20], g_value)];
            let mut fb = Feedback {
                results: (i > 1)
                    .then(|| (i - 1, vec![BBox::new(275.0, 0.0, 315.0, 25.0)]))
                    .into_iter()
                    .collect(),
                ..Feedback::default()
            };
            if g.decide(
                &picture(320, 240, i as u32 + 1, 1.0, &clock),
                PtsMs(i as f64 * 200.0),
                i,
                &mut fb,
            ) == Gate::Motion
            {
                runs += 1;
            }
        }
        assert_eq!(runs, 10);
        assert!(g.overlays().is_empty());
    }

    #[test]
    fn masked_motion_is_ignored() {
        let mask = MotionMask {
            points: vec![[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]],
            normalized: true,
        };
        let mut g = MotionGate::new(MotionConfig::default(), vec![mask]);
        decide(&mut g, &picture(320, 240, 1, 1.0, &[]), 0.0, 0);
        let right = [([200, 60, 260, 200], 10)];
        assert_eq!(
            decide(&mut g, &picture(320, 240, 2, 1.0, &right), 100.0, 1),
            Gate::Still
        );
        let left = [([40, 60, 100, 200], 10)];
        assert_eq!(
            decide(&mut g, &picture(320, 240, 3, 1.0, &left), 200.0, 2),
            Gate::Motion
        );
    }

    #[test]
    fn a_new_picture_size_starts_over() {
        let mut g = gate();
        decide(&mut g, &picture(320, 240, 1, 1.0, &[]), 0.0, 0);
        assert_eq!(
            decide(&mut g, &picture(160, 120, 2, 1.0, &[]), 100.0, 1),
            Gate::First
        );
    }

    fn track(id: u64, x: f32) -> Track {
        Track {
            id,
            bbox: BBox::new(x, 10.0, x + 40.0, 110.0),
            class_id: 0,
            label: "person".into(),
            score: 0.9,
            matched: true,
            age: 1,
        }
    }

    #[test]
    fn tracks_become_stationary_and_lost_ones_need_attention() {
        let mut s = Stationary::new(2.0);
        let out = |tracks: Vec<Track>, started: Vec<u64>, ended: Vec<u64>| TrackOutput {
            tracks,
            started,
            ended,
        };
        // Walking: attention.
        assert!(
            s.update(PtsMs(0.0), &out(vec![track(1, 0.0)], vec![1], vec![]))
                .0
        );
        assert!(
            s.update(PtsMs(500.0), &out(vec![track(1, 30.0)], vec![], vec![]))
                .0
        );
        // Stops (jitter of a pixel) and stays for 2 s: stationary.
        assert!(
            s.update(PtsMs(1000.0), &out(vec![track(1, 60.0)], vec![], vec![]))
                .0
        );
        assert!(
            s.update(PtsMs(2000.0), &out(vec![track(1, 61.0)], vec![], vec![]))
                .0
        );
        let (attention, still) =
            s.update(PtsMs(3000.0), &out(vec![track(1, 60.0)], vec![], vec![]));
        assert!(!attention);
        assert_eq!(still.len(), 1);
        // Missed by the detector: lost, so detection follows it.
        assert!(s.update(PtsMs(3200.0), &out(vec![], vec![], vec![])).0);
        // Ended: nothing left to follow.
        assert!(!s.update(PtsMs(4000.0), &out(vec![], vec![], vec![1])).0);
    }
}
