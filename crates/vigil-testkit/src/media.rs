//! The repository's test media (fetched by `make setup` into `data/`) and
//! the one way tests make clips: `ffmpeg` run bounded, quiet and without
//! stdin, either cutting the sample clip or rendering an ffmpeg `lavfi`
//! source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::run_bounded;

/// The limit for one ffmpeg run: a short clip takes seconds.
pub const FFMPEG_LIMIT: Duration = Duration::from_secs(120);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the repository root above crates/vigil-testkit")
        .to_path_buf()
}

/// A file under `data/` (fetched by `make setup`), failing loudly if absent.
pub fn data(rel: &str) -> PathBuf {
    let p = repo_root().join("data").join(rel);
    assert!(p.is_file(), "{} missing: run `make setup`", p.display());
    p
}

/// The sample clip every video test starts from (768x576, 25 fps, MPEG-4).
pub fn vtest() -> PathBuf {
    data("video/vtest.avi")
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs `ffmpeg ARGS` quietly (no stdin, overwriting outputs) and asserts it
/// succeeded within `limit`, showing its stderr otherwise; killed if it runs
/// longer.
pub fn ffmpeg_bounded(args: &[&str], limit: Duration) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args);
    run_bounded(cmd, limit).assert_success(&format!("ffmpeg {args:?}"));
}

/// [`ffmpeg_bounded`] within [`FFMPEG_LIMIT`]: every test that makes media
/// goes through here.
pub fn ffmpeg(args: &[&str]) {
    ffmpeg_bounded(args, FFMPEG_LIMIT);
}

/// The first `frames` frames of the sample clip written to `out`, with the
/// output options `out_args` (codec, filters) before the file name.
pub fn sample_clip(out: &Path, frames: u32, out_args: &[&str]) {
    let vtest = vtest();
    let n = frames.to_string();
    let mut args = vec!["-i", utf8(&vtest), "-frames:v", &n];
    args.extend_from_slice(out_args);
    args.push(utf8(out));
    ffmpeg(&args);
}

/// The first `frames` frames of the sample clip as H.264 MP4 in `dir`
/// (optionally through the video filter `vf`, e.g. a smaller scale): what
/// a user uploads.
pub fn sample_h264(dir: &Path, frames: u32, vf: Option<&str>) -> PathBuf {
    let out = dir.join(format!(
        "clip{frames}{}.mp4",
        if vf.is_some() { "-vf" } else { "" }
    ));
    let mut args = Vec::new();
    if let Some(vf) = vf {
        args.extend(["-vf", vf]);
    }
    args.extend(["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    sample_clip(&out, frames, &args);
    out
}

/// A clip rendered from the ffmpeg `lavfi` source `source` (e.g.
/// `color=black:s=320x240:r=10`, `testsrc=size=320x240:rate=25`), `seconds`
/// long (`None`: as many frames as `out_args` says), written to `out` with
/// the output options `out_args`.
pub fn lavfi_clip(out: &Path, source: &str, seconds: Option<u32>, out_args: &[&str]) {
    let t = seconds.map(|s| s.to_string());
    let mut args = vec!["-f", "lavfi", "-i", source];
    if let Some(t) = &t {
        args.extend(["-t", t.as_str()]);
    }
    args.extend_from_slice(out_args);
    args.push(utf8(out));
    ffmpeg(&args);
}

/// What ffprobe decodes of a file's first video stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoProbe {
    pub codec: String,
    pub width: u64,
    pub height: u64,
    /// Frames actually decoded (`-count_frames`), not the header's claim.
    pub frames: u64,
}

/// Decodes the whole first video stream of `path` with ffprobe (within
/// [`FFMPEG_LIMIT`]) and counts its frames; a file ffprobe refuses fails
/// the test with its stderr.
pub fn probe_video(path: &Path) -> VideoProbe {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "json"])
        .arg(path);
    let r = run_bounded(cmd, FFMPEG_LIMIT);
    r.assert_success(&format!("ffprobe {}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("ffprobe {}: not JSON ({e}): {}", path.display(), r.stdout));
    let st = &v["streams"][0];
    let number = |key: &str| {
        st[key]
            .as_u64()
            .or_else(|| st[key].as_str().and_then(|n| n.parse().ok()))
            .unwrap_or_else(|| panic!("ffprobe {}: no {key} in {v}", path.display()))
    };
    VideoProbe {
        codec: st["codec_name"].as_str().unwrap_or_default().to_string(),
        width: number("width"),
        height: number("height"),
        frames: number("nb_read_frames"),
    }
}
