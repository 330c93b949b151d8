//! Camera health: problems with the picture itself, which the detector
//! cannot report (it just finds nothing): a frozen encoder, a covered or
//! dead sensor (black), a blinded one (blown out), a failing decoder.
//!
//! Every check works on a 32x18 grey thumbnail (a 16:9 grid of cell means),
//! computed at most `max_fps` times a second: cheap on any frame size, and
//! the averaging removes the sensor noise that would make "identical" hard to
//! judge on full frames.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use vigil_core::config::HealthConfig;
use vigil_core::ImageBgr;

use crate::{Detail, EventType, MonitorEvent};

/// Thumbnail width in cells.
pub const THUMB_W: usize = 32;
/// Thumbnail height in cells.
pub const THUMB_H: usize = 18;
/// Pixels sampled per cell side; a 4x4 grid per cell is enough for a mean
/// and bounds the cost to 9216 pixel reads per frame, whatever its size.
const SAMPLES: usize = 4;

/// The `kind` of a `camera.anomaly` (and label of
/// `vigil_camera_anomalies_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    Frozen,
    Black,
    Overexposed,
    DecodeError,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 4] = [
        AnomalyKind::Frozen,
        AnomalyKind::Black,
        AnomalyKind::Overexposed,
        AnomalyKind::DecodeError,
    ];

    /// The kinds judged from the picture, which have a state (on while the
    /// picture stays wrong); decode errors come in bursts and have none.
    pub const PICTURE: [AnomalyKind; 3] = [
        AnomalyKind::Frozen,
        AnomalyKind::Black,
        AnomalyKind::Overexposed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Frozen => "frozen",
            AnomalyKind::Black => "black",
            AnomalyKind::Overexposed => "overexposed",
            AnomalyKind::DecodeError => "decode_error",
        }
    }
}

/// A 32x18 grey thumbnail: the mean luma of each cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    cells: Vec<f32>,
}

impl Thumbnail {
    /// From a tightly packed BGR buffer; `None` if the buffer is shorter
    /// than `width * height * 3` or empty.
    pub fn from_bgr(width: usize, height: usize, data: &[u8]) -> Option<Thumbnail> {
        if width == 0 || height == 0 || data.len() < width.checked_mul(height)?.checked_mul(3)? {
            return None;
        }
        let mut cells = Vec::with_capacity(THUMB_W * THUMB_H);
        for cy in 0..THUMB_H {
            let (y0, y1) = (
                cy * height / THUMB_H,
                ((cy + 1) * height / THUMB_H).max(cy * height / THUMB_H + 1),
            );
            for cx in 0..THUMB_W {
                let (x0, x1) = (
                    cx * width / THUMB_W,
                    ((cx + 1) * width / THUMB_W).max(cx * width / THUMB_W + 1),
                );
                let mut sum = 0u32;
                let mut n = 0u32;
                for sy in 0..SAMPLES {
                    let y = (y0 + (y1 - y0) * (2 * sy + 1) / (2 * SAMPLES)).min(height - 1);
                    for sx in 0..SAMPLES {
                        let x = (x0 + (x1 - x0) * (2 * sx + 1) / (2 * SAMPLES)).min(width - 1);
                        let i = (y * width + x) * 3;
                        // BT.601 luma in fixed point (B, G, R order).
                        let (b, g, r) = (
                            u32::from(data[i]),
                            u32::from(data[i + 1]),
                            u32::from(data[i + 2]),
                        );
                        sum += (29 * b + 150 * g + 77 * r) >> 8;
                        n += 1;
                    }
                }
                cells.push(sum as f32 / n as f32);
            }
        }
        Some(Thumbnail { cells })
    }

    pub fn from_image(img: &ImageBgr) -> Option<Thumbnail> {
        Self::from_bgr(img.width() as usize, img.height() as usize, img.data())
    }

    /// Mean luma of the whole picture, 0–255.
    pub fn mean_luma(&self) -> f64 {
        self.cells.iter().map(|&v| f64::from(v)).sum::<f64>() / self.cells.len() as f64
    }

    /// Mean absolute difference of the cells, 0–255.
    pub fn mean_abs_diff(&self, other: &Thumbnail) -> f64 {
        self.cells
            .iter()
            .zip(&other.cells)
            .map(|(a, b)| f64::from((a - b).abs()))
            .sum::<f64>()
            / self.cells.len() as f64
    }
}

/// Tunables in the monitor's units (pts milliseconds, grey levels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthParams {
    pub frozen_ms: f64,
    pub frozen_diff: f64,
    pub dark_luma: f64,
    pub bright_luma: f64,
    pub sustain_ms: f64,
    /// Smallest pts gap between two checked frames.
    pub min_interval_ms: f64,
}

impl HealthParams {
    pub fn from_config(c: &HealthConfig) -> Self {
        Self {
            frozen_ms: c.frozen_s * 1000.0,
            frozen_diff: c.frozen_diff,
            dark_luma: c.dark_luma,
            bright_luma: c.bright_luma,
            sustain_ms: c.sustain_s * 1000.0,
            min_interval_ms: 1000.0 / c.max_fps,
        }
    }
}

impl Default for HealthParams {
    fn default() -> Self {
        Self::from_config(&HealthConfig::default())
    }
}

/// A condition that must hold for a while before it is reported, then is
/// reported once until it clears.
#[derive(Debug, Default, Clone, Copy)]
struct Onset {
    since: Option<f64>,
    active: bool,
}

impl Onset {
    /// Returns how long the condition has held when it becomes reportable
    /// (once per episode).
    fn update(&mut self, holds: bool, start: f64, now: f64, min_ms: f64) -> Option<f64> {
        if !holds {
            *self = Onset::default();
            return None;
        }
        let since = *self.since.get_or_insert(start);
        if !self.active && now - since >= min_ms {
            self.active = true;
            return Some(now - since);
        }
        None
    }
}

/// Per-stream picture checks. Feed decoded frames in order with
/// [`HealthMonitor::observe`]; frames closer than `min_interval_ms` (by pts)
/// to the last checked one are skipped without touching their pixels.
///
/// Each kind is reported once at onset (after `frozen_s` or `sustain_s` of
/// stream time) and re-armed when the picture recovers. A black or blown-out
/// picture is not also judged frozen: a uniform picture has nothing to
/// freeze, and the more specific anomaly is the useful one.
pub struct HealthMonitor {
    stream: String,
    params: HealthParams,
    last: Option<(f64, Thumbnail)>,
    frozen: Onset,
    black: Onset,
    bright: Onset,
}

impl HealthMonitor {
    pub fn new(stream: &str, params: HealthParams) -> Self {
        Self {
            stream: stream.to_string(),
            params,
            last: None,
            frozen: Onset::default(),
            black: Onset::default(),
            bright: Onset::default(),
        }
    }

    /// The picture anomalies in progress (reported and not yet recovered),
    /// for a health *state* beside the onset events: an operator glancing at
    /// the console wants "black now", not "black once, an hour ago".
    pub fn active(&self) -> [(AnomalyKind, bool); 3] {
        [
            (AnomalyKind::Frozen, self.frozen.active),
            (AnomalyKind::Black, self.black.active),
            (AnomalyKind::Overexposed, self.bright.active),
        ]
    }

    /// Whether a frame at `pts_ms` would be checked (the caller can skip
    /// building anything for it otherwise).
    pub fn due(&self, pts_ms: f64) -> bool {
        match &self.last {
            None => true,
            Some((t, _)) => pts_ms - t >= self.params.min_interval_ms || pts_ms < *t,
        }
    }

    /// Checks a decoded frame (if due); returns the anomalies it started.
    pub fn observe(&mut self, pts_ms: f64, at: SystemTime, image: &ImageBgr) -> Vec<MonitorEvent> {
        if !self.due(pts_ms) {
            return Vec::new();
        }
        match Thumbnail::from_image(image) {
            Some(t) => self.observe_thumbnail(pts_ms, at, t),
            None => Vec::new(),
        }
    }

    /// Like [`observe`](Self::observe) with the thumbnail already made.
    pub fn observe_thumbnail(
        &mut self,
        pts_ms: f64,
        at: SystemTime,
        thumb: Thumbnail,
    ) -> Vec<MonitorEvent> {
        let p = self.params;
        let luma = thumb.mean_luma();
        let dark = luma < p.dark_luma;
        let bright = luma > p.bright_luma;
        let (diff, prev_pts) = match &self.last {
            Some((t, prev)) if *t <= pts_ms => (Some(thumb.mean_abs_diff(prev)), *t),
            _ => (None, pts_ms),
        };
        let still = !dark && !bright && diff.is_some_and(|d| d < p.frozen_diff);
        let mut events = Vec::new();
        let mut raise = |kind: AnomalyKind, held: Option<f64>, value: f64| {
            if let Some(ms) = held {
                events.push(MonitorEvent {
                    kind: EventType::CameraAnomaly,
                    stream: self.stream.clone(),
                    at,
                    pts_ms: Some(pts_ms),
                    detail: Detail::Camera {
                        kind,
                        duration_s: ms / 1000.0,
                        value,
                    },
                });
            }
        };
        raise(
            AnomalyKind::Frozen,
            self.frozen.update(still, prev_pts, pts_ms, p.frozen_ms),
            diff.unwrap_or(0.0),
        );
        raise(
            AnomalyKind::Black,
            self.black.update(dark, pts_ms, pts_ms, p.sustain_ms),
            luma,
        );
        raise(
            AnomalyKind::Overexposed,
            self.bright.update(bright, pts_ms, pts_ms, p.sustain_ms),
            luma,
        );
        self.last = Some((pts_ms, thumb));
        events
    }
}

/// Decode errors come as a running total from the decoder, not per frame;
/// this turns increases into `camera.anomaly` (`decode_error`) events, one
/// per burst: after an event, further errors are folded into it until the
/// stream has been error-free for `quiet` (the `sustain_s` setting).
pub struct DecodeErrorWatch {
    stream: String,
    quiet: Duration,
    total: u64,
    last_error: Option<Instant>,
}

impl DecodeErrorWatch {
    pub fn new(stream: &str, quiet: Duration) -> Self {
        Self {
            stream: stream.to_string(),
            quiet,
            total: 0,
            last_error: None,
        }
    }

    /// `total` is the decoder's error count so far (monotonic).
    pub fn observe(&mut self, total: u64, now: Instant, at: SystemTime) -> Option<MonitorEvent> {
        if total <= self.total {
            return None;
        }
        self.total = total;
        let new_burst = self
            .last_error
            .is_none_or(|t| now.saturating_duration_since(t) >= self.quiet);
        self.last_error = Some(now);
        new_burst.then(|| MonitorEvent {
            kind: EventType::CameraAnomaly,
            stream: self.stream.clone(),
            at,
            pts_ms: None,
            detail: Detail::Camera {
                kind: AnomalyKind::DecodeError,
                duration_s: 0.0,
                value: total as f64,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(ev: &[MonitorEvent]) -> Vec<AnomalyKind> {
        ev.iter()
            .map(|e| match e.detail {
                Detail::Camera { kind, .. } => kind,
                _ => panic!("not a camera event"),
            })
            .collect()
    }

    #[test]
    fn thumbnail_luma_and_difference() {
        let grey = ImageBgr::filled(64, 36, [100, 100, 100]);
        let t = Thumbnail::from_image(&grey).unwrap();
        assert!((t.mean_luma() - 99.6).abs() < 0.5, "{}", t.mean_luma());
        let white = Thumbnail::from_image(&ImageBgr::filled(7, 5, [255, 255, 255])).unwrap();
        assert!(white.mean_luma() > 250.0);
        assert!(t.mean_abs_diff(&t) == 0.0);
        assert!(Thumbnail::from_bgr(10, 10, &[0; 299]).is_none());
    }

    #[test]
    fn black_is_reported_once_after_sustain_and_rearms() {
        let p = HealthParams {
            sustain_ms: 2000.0,
            ..HealthParams::default()
        };
        let mut m = HealthMonitor::new("cam", p);
        let at = SystemTime::UNIX_EPOCH;
        let black = ImageBgr::filled(32, 18, [3, 3, 3]);
        let mut all = Vec::new();
        for i in 0..50 {
            all.extend(m.observe(f64::from(i) * 100.0, at, &black));
        }
        assert_eq!(
            kinds(&all),
            vec![AnomalyKind::Black],
            "black only, not frozen too"
        );
        // Checked at most 5 times a second: onset on the first checked frame ≥ 2 s.
        assert_eq!(all[0].pts_ms, Some(2000.0));
        let active = |m: &HealthMonitor| -> Vec<AnomalyKind> {
            m.active()
                .into_iter()
                .filter_map(|(k, on)| on.then_some(k))
                .collect()
        };
        assert_eq!(active(&m), vec![AnomalyKind::Black], "black while it lasts");
        let grey = ImageBgr::filled(32, 18, [128, 128, 128]);
        assert!(m.observe(5000.0, at, &grey).is_empty());
        assert!(active(&m).is_empty(), "recovered: {:?}", active(&m));
        let mut again = Vec::new();
        for i in 51..100 {
            again.extend(m.observe(f64::from(i) * 100.0, at, &black));
        }
        assert_eq!(kinds(&again), vec![AnomalyKind::Black]);
    }

    #[test]
    fn decode_errors_one_event_per_burst() {
        let mut w = DecodeErrorWatch::new("cam", Duration::from_secs(10));
        let t0 = Instant::now();
        let at = SystemTime::UNIX_EPOCH;
        assert!(w.observe(0, t0, at).is_none());
        assert!(w.observe(2, t0, at).is_some());
        assert!(w.observe(5, t0 + Duration::from_secs(3), at).is_none());
        assert!(w.observe(5, t0 + Duration::from_secs(30), at).is_none());
        assert!(w.observe(6, t0 + Duration::from_secs(30), at).is_some());
    }
}
