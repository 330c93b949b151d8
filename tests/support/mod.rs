//! Shared helpers for the end-to-end tests: the model files, the `vigil`
//! binary (runs and daemons on top of vigil-testkit's bounded processes and
//! daemon handle), and a tiny ONNX writer for malformed-model cases. Waits,
//! processes, media, HTTP and the servers tests talk to come from
//! crates/vigil-testkit, shared with every crate's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root and its test media (see crates/vigil-testkit).
pub use vigil_testkit::{data, repo_root as root};

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
    ffmpeg, free_port, http, join_bounded, lavfi_clip, record_request_heads, run_bounded,
    sample_clip, sample_h264, try_wait_until, wait_for, wait_until, ChildGuard, Finished,
    HttpResponse,
};

/// A running `vigil serve` or `vigil worker` (the testkit's daemon handle).
pub type Node = vigil_testkit::Daemon;

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

// --- `vigil serve` / `vigil worker` under test ------------------------------

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

/// Writes `config` (which must set `server.listen` to `addr`) to
/// `dir/<name>.toml` and starts `vigil <command> --config` on it, logging
/// at info to `dir/<name>.log`.
pub fn start_node(dir: &Path, name: &str, command: &str, addr: &str, config: &str) -> Node {
    start_node_env(dir, name, command, addr, config, &[])
}

/// Like [`start_node`] with extra environment variables.
pub fn start_node_env(
    dir: &Path,
    name: &str,
    command: &str,
    addr: &str,
    config: &str,
    env: &[(&str, &str)],
) -> Node {
    let mut cmd = vigil();
    cmd.env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .arg(command);
    Node::start(cmd, dir, name, addr, config)
}

/// `tests/rtsp_server.py` serving the sample clip at
/// `rtsp://127.0.0.1:<port><mount>`, once it is ready.
pub fn rtsp_server(port: u16, mount: &str) -> vigil_testkit::RtspServer {
    vigil_testkit::RtspServer::start_on(port, mount, &[])
}
