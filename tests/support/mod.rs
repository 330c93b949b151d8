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

/// Runs `vigil` with `args`, returning (exit ok, stdout, stderr).
pub fn run(args: &[&str]) -> (Output, String, String) {
    let out = vigil().args(args).output().expect("spawn vigil");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
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
