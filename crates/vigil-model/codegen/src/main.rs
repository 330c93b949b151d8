//! Regenerates `src/onnx.rs` from `proto/onnx.proto` with prost-build and
//! protox (a pure-Rust protobuf compiler, so no `protoc` is needed).
//!
//! Run from `crates/vigil-model`:
//! `cargo run --manifest-path codegen/Cargo.toml && rustfmt --edition 2021 src/onnx.rs`

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let proto_dir = root.join("proto");
    let fds = protox::compile([proto_dir.join("onnx.proto")], [&proto_dir])?;
    let out = tempdir()?;
    prost_build::Config::new().out_dir(&out).compile_fds(fds)?;
    std::fs::copy(out.join("onnx.rs"), root.join("src").join("onnx.rs"))?;
    std::fs::remove_dir_all(&out)?;
    eprintln!("wrote {}", root.join("src").join("onnx.rs").display());
    Ok(())
}

fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("vigil-onnx-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
