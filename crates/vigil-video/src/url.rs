//! Source URL classification; masking is [`vigil_core::mask_url`], shared
//! with the event sinks.

pub use vigil_core::mask_url;

/// Network schemes whose sources are live (no end, no frame count, need timeouts).
pub(crate) fn is_network_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    [
        "rtsp://", "rtsps://", "rtmp://", "rtmps://", "rtp://", "udp://", "tcp://", "srt://",
        "http://", "https://",
    ]
    .iter()
    .any(|s| lower.starts_with(s))
}

/// Live sources are the ones that never end on their own and have no length.
pub(crate) fn is_live_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    is_network_url(url) && !lower.starts_with("http://") && !lower.starts_with("https://")
}

pub(crate) fn is_rtsp_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("rtsp://") || lower.starts_with("rtsps://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_schemes() {
        assert!(is_live_url("RTSP://h/s"));
        assert!(is_rtsp_url("rtsps://h/s"));
        assert!(is_network_url("https://h/v.mp4"));
        assert!(!is_live_url("https://h/v.mp4"));
        assert!(!is_network_url("/tmp/a.mp4"));
    }
}
