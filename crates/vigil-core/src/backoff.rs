//! The one retry delay policy: camera reconnects, webhook and MQTT/NATS
//! event deliveries and the start-up NATS connect all back off the same way.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff: `initial · 2^n`, capped at `max`, each delay with
/// ±`jitter` (default 20 %) so many cameras behind one failed switch, or many
/// daemons restarted together, do not retry in lockstep.
///
/// Two ways to use it: as a stateful sequence ([`Backoff::next_delay`] and
/// [`Backoff::reset`] after a success), or stateless from an attempt count
/// ([`Backoff::delay_for`], what the outbox uses, since its attempt count
/// lives in SQLite and survives a restart).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    /// Failures since the last [`Backoff::reset`].
    failures: u32,
}

impl Backoff {
    /// `initial` doubling up to `max` (a `max` below `initial` is raised to
    /// it), ±20 % jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter: 0.2,
            failures: 0,
        }
    }

    /// The same policy with ±`fraction` jitter (clamped to 0–1); 0 gives
    /// exact delays, for tests that compare them.
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The first delay.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The delay before the retry that follows failure number `failures`
    /// (1 = the first failure): `initial · 2^(failures-1)`, capped, jittered,
    /// and never above `max`.
    pub fn delay_for(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let d = self.initial.saturating_mul(1u32 << exp).min(self.max);
        self.jittered(d).min(self.max)
    }

    /// The next delay of the sequence; call after each failure.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.delay_for(self.failures)
    }

    /// Back to `initial` after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn jittered(&self, d: Duration) -> Duration {
        if self.jitter == 0.0 {
            return d;
        }
        d.mul_f64(1.0 - self.jitter + 2.0 * self.jitter * unit_random())
    }
}

/// A uniform value in [0, 1) from the std hasher's per-instance random keys
/// (seeded from the OS): good enough to spread retries, no RNG dependency.
fn unit_random() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b =
            Backoff::new(Duration::from_millis(100), Duration::from_millis(350)).with_jitter(0.0);
        let got: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(b.delay_for(0), Duration::from_millis(100));
        assert_eq!(b.delay_for(u32::MAX), Duration::from_millis(350));
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_varies() {
        let b = Backoff::new(Duration::from_secs(10), Duration::from_secs(100));
        let delays: Vec<Duration> = (0..200).map(|_| b.delay_for(1)).collect();
        for d in &delays {
            assert!(
                *d >= Duration::from_secs(8) && *d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        let first = delays[0];
        assert!(delays.iter().any(|d| *d != first), "no jitter at all");
        // Jitter never lifts a delay over the cap.
        let capped = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        assert!((0..50).all(|_| capped.delay_for(9) <= Duration::from_secs(1)));
    }
}
