//! Helpers shared by the vigil-video integration tests (paths, ffmpeg,
//! ffprobe and the RTSP test server come from vigil-testkit).
#![allow(dead_code)]

use std::path::Path;

#[allow(unused_imports)] // each test binary uses a different subset
pub use vigil_testkit::{ffmpeg, free_port, probe_video, repo_root, vtest, RtspServer};

/// Asserts what ffprobe decodes of `path`: its codec, size and frame count.
pub fn assert_probe(path: &Path, codec: &str, (width, height): (u64, u64), frames: u64) {
    let got = probe_video(path);
    assert_eq!(
        (got.codec.as_str(), got.width, got.height, got.frames),
        (codec, width, height, frames),
        "{}",
        path.display()
    );
}

/// A `seconds`-long 320x240 25 fps test-pattern clip with the given codec args.
pub fn make_clip(path: &Path, seconds: u32, codec_args: &[&str]) {
    vigil_testkit::lavfi_clip(
        path,
        "testsrc=size=320x240:rate=25",
        Some(seconds),
        codec_args,
    );
}

/// Keeps the first `fraction` of a file's bytes.
pub fn truncate_copy(src: &Path, dst: &Path, fraction: f64) {
    let bytes = std::fs::read(src).expect("read source for truncation");
    let keep = (bytes.len() as f64 * fraction) as usize;
    std::fs::write(dst, &bytes[..keep]).expect("write truncated copy");
}

/// Deterministic pseudo-random bytes (no RNG dependency needed).
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
