//! Shared helpers for the end-to-end tests: where the real media, model and
//! binary live, and a tiny ONNX writer for malformed-model cases.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (tests run with the package directory as cwd).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("repo root above crates/vigil")
        .to_path_buf()
}

/// A file fetched by `make setup` (under `data/`), failing loudly if absent.
pub fn data(rel: &str) -> PathBuf {
    let p = root().join("data").join(rel);
    assert!(p.is_file(), "{} missing: run `make setup`", p.display());
    p
}

pub fn model_fixed() -> PathBuf {
    let p = root().join("models/yolov12n.onnx");
    assert!(p.is_file(), "{} missing: run `make setup`", p.display());
    p
}

pub fn model_dynamic() -> PathBuf {
    let p = root().join("models/yolov12n-dyn.onnx");
    assert!(p.is_file(), "{} missing: run `make setup`", p.display());
    p
}

pub fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.current_dir(root());
    c.env("RUST_LOG", "warn");
    c
}

/// Bounded waits, processes and joins shared with the crates' tests: use
/// these for every wait (see crates/vigil-testkit). Each test binary uses
/// a different subset of this shared module.
#[allow(unused_imports)]
pub use vigil_testkit::{
    join_bounded, run_bounded, try_wait_until, wait_for, wait_until, Finished,
};

/// The limit for one `vigil` run from [`run`]: a few photos or a short clip
/// take seconds; minutes means a hang.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `vigil` with `args` (no stdin) within [`RUN_LIMIT`], returning (exit
/// status as an `Output`, stdout, stderr); a run past the limit is killed and
/// fails the test with its stderr.
pub fn run(args: &[&str]) -> (Output, String, String) {
    let mut cmd = vigil();
    cmd.args(args);
    let r = run_bounded(cmd, RUN_LIMIT);
    let out = Output {
        status: r.status,
        stdout: r.stdout.clone().into_bytes(),
        stderr: r.stderr.clone().into_bytes(),
    };
    (out, r.stdout, r.stderr)
}

/// Asserts a failed run with a one-line `error:` naming `needle`, and no panic.
pub fn assert_clean_error(out: &Output, stderr: &str, needle: &str) {
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line in: {stderr}"));
    assert!(
        line.contains(needle),
        "error line {line:?} does not mention {needle:?}"
    );
}

// --- a minimal protobuf writer, enough for a tiny ONNX graph ---------------

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field_varint(field: u32, v: u64, out: &mut Vec<u8>) {
    varint(u64::from(field) << 3, out);
    varint(v, out);
}

fn field_bytes(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint((u64::from(field) << 3) | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn value_info(name: &str, dims: &[u64]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        field_varint(1, *d, &mut dim);
        field_bytes(1, &dim, &mut shape);
    }
    let mut tensor = Vec::new();
    field_varint(1, 1, &mut tensor); // FLOAT
    field_bytes(2, &shape, &mut tensor);
    let mut ty = Vec::new();
    field_bytes(1, &tensor, &mut ty);
    let mut vi = Vec::new();
    field_bytes(1, name.as_bytes(), &mut vi);
    field_bytes(2, &ty, &mut vi);
    vi
}

/// A valid ONNX model whose single `Identity` node maps an image-shaped input
/// to an output of the same (wrong, 4-D) shape: loads fine, is no YOLO head.
pub fn identity_model(dims: &[u64]) -> Vec<u8> {
    let mut node = Vec::new();
    field_bytes(1, b"images", &mut node);
    field_bytes(2, b"output0", &mut node);
    field_bytes(4, b"Identity", &mut node);
    let mut graph = Vec::new();
    field_bytes(1, &node, &mut graph);
    field_bytes(2, b"g", &mut graph);
    field_bytes(11, &value_info("images", dims), &mut graph);
    field_bytes(12, &value_info("output0", dims), &mut graph);
    let mut opset = Vec::new();
    field_varint(2, 13, &mut opset);
    let mut model = Vec::new();
    field_varint(1, 8, &mut model);
    field_bytes(8, &opset, &mut model);
    field_bytes(7, &graph, &mut model);
    model
}

// --- a tiny HTTP/1.1 client and process guards for `vigil serve` tests -------

/// A port nothing listens on right now (bound and released).
/// The metric names `../shared/CONTRACT.md` fixes, written out here (not
/// taken from the implementation) so a renamed metric fails the tests.
pub const CONTRACT_METRICS: &[&str] = &[
    "vigil_stage_seconds",
    "vigil_frames_total",
    "vigil_batch_size",
    "vigil_detections_total",
    "vigil_stream_up",
    "vigil_stream_reconnects_total",
    "vigil_events_total",
    "vigil_webhook_deliveries_total",
    "vigil_outbox_pending",
    "vigil_jobs",
    "vigil_http_request_seconds",
];

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// One HTTP response, body de-chunked.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {}: not JSON ({e}): {}", self.status, self.text()))
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads
/// the whole response. Written by hand so a test sees exactly what the server
/// sends, including an early 413 while the body is still being written.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    s.set_write_timeout(Some(std::time::Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // The server may answer (413) and close before the body is sent; that is
    // a response to read, not a client error.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("bad chunk"))?;
            let size_text = String::from_utf8_lossy(&rest[..nl]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            if rest.len() < size + 2 {
                return Err(bad("truncated chunk"));
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Kills (SIGKILL) and reaps a child process when dropped, so a failing
/// test never leaves a daemon or server behind.
pub struct ChildGuard(pub Option<std::process::Child>);

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }

    /// Sends SIGTERM and waits up to `limit`; returns the exit status and
    /// how long it took, or `None` if it was still running (then killed).
    pub fn terminate(
        &mut self,
        limit: std::time::Duration,
    ) -> Option<(std::process::ExitStatus, std::time::Duration)> {
        let child = self.0.as_mut()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                self.0 = None;
                return Some((status, start.elapsed()));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One running `vigil` process (`serve` or `worker`) with its config, HTTP
/// address and log file; killed when dropped.
pub struct Node {
    pub guard: ChildGuard,
    pub addr: String,
    pub log: PathBuf,
}

impl Node {
    /// Writes `config` (which must set `server.listen` to `addr`) to
    /// `dir/<name>.toml` and starts `vigil <command> --config` on it.
    pub fn start(dir: &Path, name: &str, command: &str, addr: &str, config: &str) -> Node {
        Self::start_env(dir, name, command, addr, config, &[])
    }

    /// Like [`Node::start`] with extra environment variables.
    pub fn start_env(
        dir: &Path,
        name: &str,
        command: &str,
        addr: &str,
        config: &str,
        env: &[(&str, &str)],
    ) -> Node {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write config");
        let log = dir.join(format!("{name}.log"));
        let child = vigil()
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .args([command, "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn vigil");
        Node {
            guard: ChildGuard(Some(child)),
            addr: addr.to_string(),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn req(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        http(&self.addr, method, path, &[], body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nlog:\n{}", self.log()))
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.req("GET", path, b"");
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// Polls `GET path` until `pred` holds on its JSON (bounded by `limit`);
    /// fails with the last answer and the log.
    pub fn wait_json(
        &self,
        path: &str,
        limit: std::time::Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = std::time::Instant::now();
        let mut last = serde_json::Value::Null;
        while start.elapsed() < limit {
            let r = self.req("GET", path, b"");
            if r.status == 200 {
                last = r.json();
                if pred(&last) {
                    return last;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!(
            "{path}: not met within {limit:?}; last: {last}\nlog:\n{}",
            self.log()
        );
    }

    /// Waits (at most `limit`) for the process to exit on its own; fails
    /// with `what` and the log if it is still running.
    pub fn wait_exit(
        &mut self,
        limit: std::time::Duration,
        what: &str,
    ) -> std::process::ExitStatus {
        let child = self.guard.0.as_mut().expect("process already reaped");
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = child.try_wait().expect("wait for vigil") {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "{what} within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Polls `/readyz` until 200 (at most 90 s); fails with the log.
    pub fn wait_ready(&mut self) {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(90) {
            if let Some(c) = self.guard.0.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("vigil exited early ({status}):\n{}", self.log());
                }
            }
            if let Ok(r) = http(&self.addr, "GET", "/readyz", &[], b"") {
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("not ready within 90 s:\n{}", self.log());
    }
}

/// Runs `ffmpeg ARGS` (quiet, no stdin, overwriting outputs) and asserts it
/// succeeded within two minutes, showing its stderr otherwise; killed if it
/// runs longer. Every test that makes media goes through here.
pub fn ffmpeg(args: &[&str]) {
    let limit = std::time::Duration::from_secs(120);
    let logs = tempfile::tempdir().expect("tempdir");
    let err_path = logs.path().join("ffmpeg.stderr");
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn ffmpeg (installed by make setup)");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for ffmpeg") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ffmpeg {args:?} ran past {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "ffmpeg {args:?} ({status}): {stderr}");
}

/// The first `frames` frames of the sample clip as H.264 MP4 in `dir`
/// (optionally through the video filter `vf`, e.g. a smaller scale): what a
/// user uploads.
pub fn sample_h264(dir: &Path, frames: u32, vf: Option<&str>) -> PathBuf {
    let out = dir.join(format!(
        "clip{frames}{}.mp4",
        if vf.is_some() { "-vf" } else { "" }
    ));
    let vtest = data("video/vtest.avi");
    let n = frames.to_string();
    let mut args = vec!["-i", vtest.to_str().expect("utf-8 path"), "-frames:v", &n];
    if let Some(vf) = vf {
        args.extend(["-vf", vf]);
    }
    args.extend([
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        out.to_str().expect("utf-8 path"),
    ]);
    ffmpeg(&args);
    out
}

/// `tests/rtsp_server.py` (GStreamer, Debian's python3) serving the sample
/// clip at `rtsp://127.0.0.1:<port><mount>`; returns once it printed
/// `ready` (at most 20 s).
pub fn rtsp_server(port: u16, mount: &str) -> ChildGuard {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("/usr/bin/python3")
        .arg(root().join("tests/rtsp_server.py"))
        .args(["--port", &port.to_string(), "--mount", mount])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tests/rtsp_server.py");
    let stdout = child.stdout.take().expect("stdout");
    let guard = ChildGuard(Some(child));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim() == "ready" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("RTSP test server did not print ready");
    guard
}
