//! Helpers shared by the vigil-video integration tests: repo paths, ffmpeg /
//! ffprobe wrappers and a self-cleaning RTSP test server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn vtest() -> PathBuf {
    let p = repo_root().join("data/video/vtest.avi");
    assert!(p.exists(), "test media missing: {}", p.display());
    p
}

/// Runs ffmpeg quietly with `args`, panicking with its stderr on failure or
/// when it runs past two minutes (it is then killed).
pub fn ffmpeg(args: &[&str]) {
    vigil_testkit::ffmpeg_bounded(args, Duration::from_secs(120));
}

/// A `seconds`-long 320x240 25 fps test-pattern clip with the given codec args.
pub fn make_clip(path: &Path, seconds: u32, codec_args: &[&str]) {
    let dur = seconds.to_string();
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        &dur,
    ];
    args.extend_from_slice(codec_args);
    let p = path.to_str().expect("utf-8 temp path");
    args.push(p);
    ffmpeg(&args);
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

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The GStreamer RTSP test server (`tests/rtsp_server.py` at the repo root).
/// Dropping it kills the process, so a failing test never leaks a server.
pub struct RtspServer {
    child: Child,
    pub port: u16,
}

impl RtspServer {
    /// Starts the server on a free port and waits (bounded) for "ready".
    pub fn start(extra: &[&str]) -> RtspServer {
        let script = repo_root().join("tests/rtsp_server.py");
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let mut child = Command::new("/usr/bin/python3")
                .arg(&script)
                .args(["--port", &port.to_string(), "--mount", "/test"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start /usr/bin/python3 tests/rtsp_server.py");
            let stdout = child.stdout.take().expect("piped stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let server = RtspServer { child, port };
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) if line.trim() == "ready" => return server,
                    Ok(_) => continue,
                    Err(e) => {
                        last_err = format!("no 'ready' from server on port {port}: {e:?}");
                        break; // `server` drops here and is killed
                    }
                }
            }
        }
        panic!("RTSP test server did not start: {last_err}");
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (e.g. "STOP", "CONT") to the server process only.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}
