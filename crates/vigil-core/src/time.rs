//! The one wall clock in milliseconds, as the SQLite stores and the job and
//! event records keep it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 for a clock before 1970 and
/// `i64::MAX` past year 292 million, rather than a panic or a wrap.
pub fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

/// `t` in milliseconds since the Unix epoch, clamped like [`now_ms`].
pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_instead_of_panicking() {
        assert_eq!(to_ms(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
        assert_eq!(
            to_ms(UNIX_EPOCH + std::time::Duration::from_millis(1500)),
            1500
        );
        assert!(now_ms() > 1_600_000_000_000);
    }
}
