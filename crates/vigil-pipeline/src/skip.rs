//! Which frames get inference: every Nth frame, or a target rate by pts.
//!
//! Rate-based selection uses presentation times rather than frame counts so
//! variable-frame-rate sources and dropped live frames are handled: a frame is
//! processed once at least `1/fps` of media time has passed since the last one.

use vigil_core::PtsMs;

/// The user's choice; `Every(1)` processes all frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SkipPolicy {
    Every(u32),
    Fps(f64),
    /// Both limits: every Nth frame, and of those at most `fps` a second of
    /// media time. Offered where the two options cannot be made exclusive
    /// in the interface (the job query string: OpenAPI has no way to say
    /// "one of these two parameters"), so both-set means something useful
    /// rather than an error no client generator could know about.
    EveryAtMost(u32, f64),
}

impl SkipPolicy {
    /// From the `every` / `fps` options every front end offers (config,
    /// CLI, job query); neither means every frame. The config and the CLI
    /// reject both-set as a usage error; the job API applies both.
    pub fn from_options(every: Option<u32>, fps: Option<f64>) -> SkipPolicy {
        match (every, fps) {
            (Some(n), Some(f)) => SkipPolicy::EveryAtMost(n, f),
            (Some(n), None) => SkipPolicy::Every(n),
            (None, Some(f)) => SkipPolicy::Fps(f),
            (None, None) => SkipPolicy::Every(1),
        }
    }
}

impl Default for SkipPolicy {
    fn default() -> Self {
        SkipPolicy::Every(1)
    }
}

/// Stateful selector for one stream.
#[derive(Debug, Clone)]
pub struct FrameSkipper {
    policy: SkipPolicy,
    seen: u64,
    next_due_ms: Option<f64>,
    skipped: u64,
}

impl FrameSkipper {
    pub fn new(policy: SkipPolicy) -> Self {
        Self {
            policy,
            seen: 0,
            next_due_ms: None,
            skipped: 0,
        }
    }

    /// Decides for the next frame in decode order; true = run the detector.
    pub fn select(&mut self, pts: PtsMs) -> bool {
        let n = self.seen;
        self.seen += 1;
        let take = match self.policy {
            SkipPolicy::Every(every) => n.is_multiple_of(u64::from(every.max(1))),
            SkipPolicy::Fps(fps) => self.rate_allows(fps, pts),
            SkipPolicy::EveryAtMost(every, fps) => {
                n.is_multiple_of(u64::from(every.max(1))) && self.rate_allows(fps, pts)
            }
        };
        if !take {
            self.skipped += 1;
        }
        take
    }

    /// Rate-based selection: true once `1/fps` of media time has passed
    /// since the last frame taken (and then advances the schedule).
    fn rate_allows(&mut self, fps: f64, pts: PtsMs) -> bool {
        if fps <= 0.0 {
            return true;
        }
        let period = 1000.0 / fps;
        match self.next_due_ms {
            // Half a millisecond of slack absorbs pts rounding (e.g. 33.33 ms steps).
            Some(due) if pts.0 + 0.5 < due => false,
            Some(due) => {
                // Advance on the grid, but re-anchor after a gap so a
                // long pause does not cause a burst of catch-up frames.
                let next = due + period;
                self.next_due_ms = Some(if next <= pts.0 { pts.0 + period } else { next });
                true
            }
            None => {
                self.next_due_ms = Some(pts.0 + period);
                true
            }
        }
    }

    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_to_a_policy() {
        assert_eq!(
            SkipPolicy::from_options(Some(5), None),
            SkipPolicy::Every(5)
        );
        assert_eq!(
            SkipPolicy::from_options(None, Some(2.5)),
            SkipPolicy::Fps(2.5)
        );
        assert_eq!(SkipPolicy::from_options(None, None), SkipPolicy::Every(1));
        assert_eq!(
            SkipPolicy::from_options(Some(2), Some(5.0)),
            SkipPolicy::EveryAtMost(2, 5.0)
        );
    }

    #[test]
    fn every_and_fps_together_apply_both() {
        // 30 fps source: every 2nd frame is 15 fps; capped at 5 fps -> every 6th.
        let taken = run(
            SkipPolicy::EveryAtMost(2, 5.0),
            (0..30).map(|i| i as f64 * 1000.0 / 30.0),
        );
        assert_eq!(taken, vec![0, 6, 12, 18, 24]);
        // The cap above the thinned rate changes nothing.
        let taken = run(
            SkipPolicy::EveryAtMost(3, 100.0),
            (0..9).map(|i| i as f64 * 10.0),
        );
        assert_eq!(taken, vec![0, 3, 6]);
    }

    fn run(policy: SkipPolicy, pts: impl IntoIterator<Item = f64>) -> Vec<usize> {
        let mut s = FrameSkipper::new(policy);
        pts.into_iter()
            .enumerate()
            .filter(|(_, p)| s.select(PtsMs(*p)))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn every_n_takes_first_and_each_nth() {
        let taken = run(SkipPolicy::Every(5), (0..795).map(|i| i as f64 * 100.0));
        assert_eq!(taken.len(), 159);
        assert_eq!(&taken[..3], &[0, 5, 10]);
        assert_eq!(
            run(SkipPolicy::Every(1), (0..4).map(f64::from)),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn fps_halves_a_30fps_source_at_15() {
        let taken = run(
            SkipPolicy::Fps(15.0),
            (0..30).map(|i| i as f64 * 1000.0 / 30.0),
        );
        assert_eq!(taken, (0..30).step_by(2).collect::<Vec<_>>());
    }

    #[test]
    fn fps_above_source_rate_takes_everything() {
        let taken = run(SkipPolicy::Fps(50.0), (0..10).map(|i| i as f64 * 100.0));
        assert_eq!(taken.len(), 10);
    }

    #[test]
    fn fps_follows_pts_on_variable_rate_sources() {
        // Bursty timestamps: 0, 10, 20, 500, 510, 1000 ms at 2 fps -> 0, 500, 1000.
        let taken = run(
            SkipPolicy::Fps(2.0),
            [0.0, 10.0, 20.0, 500.0, 510.0, 1000.0],
        );
        assert_eq!(taken, vec![0, 3, 5]);
    }

    #[test]
    fn fps_does_not_burst_after_a_gap() {
        // 1 fps; a 10 s gap, then frames every 100 ms: only one is taken per second.
        let pts = [0.0, 10_000.0, 10_100.0, 10_200.0, 11_000.0];
        assert_eq!(run(SkipPolicy::Fps(1.0), pts), vec![0, 1, 4]);
    }

    #[test]
    fn skipped_is_counted() {
        let mut s = FrameSkipper::new(SkipPolicy::Every(3));
        for i in 0..9 {
            s.select(PtsMs(i as f64));
        }
        assert_eq!(s.skipped(), 6);
    }
}
