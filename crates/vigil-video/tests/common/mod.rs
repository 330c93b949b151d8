//! Helpers shared by the vigil-video integration tests: repo paths, ffmpeg /
//! ffprobe wrappers; the RTSP test server and ffmpeg come from vigil-testkit.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[allow(unused_imports)] // each test binary uses a different subset
pub use vigil_testkit::{ffmpeg, free_port, repo_root, vtest, RtspServer};

/// A `seconds`-long 320x240 25 fps test-pattern clip with the given codec args.
pub fn make_clip(path: &Path, seconds: u32, codec_args: &[&str]) {
    vigil_testkit::lavfi_clip(
        path,
        "testsrc=size=320x240:rate=25",
        Some(seconds),
        codec_args,
    );
}

/// ffprobe's view of the first video stream: (codec, width, height, frames decoded).
pub fn probe(path: &Path) -> (String, u32, u32, u64) {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_frames",
        "-show_entries",
        "stream=codec_name,width,height,nb_read_frames",
        "-of",
        "default=noprint_wrappers=1",
    ])
    .arg(path);
    // Bounded: a file ffprobe chokes on fails the test instead of hanging it.
    let out = vigil_testkit::run_bounded(cmd, Duration::from_secs(120));
    out.assert_success(&format!("ffprobe {}", path.display()));
    let text = out.stdout;
    let get = |key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("ffprobe output lacks {key}: {text}"))
            .to_owned()
    };
    (
        get("codec_name"),
        get("width").parse().expect("width"),
        get("height").parse().expect("height"),
        get("nb_read_frames").parse().expect("nb_read_frames"),
    )
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
