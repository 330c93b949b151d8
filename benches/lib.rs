//! Shared helpers for vigil's benchmarks: where the setup put the model and media.

use std::path::PathBuf;

/// The repository root (benchmarks run with the package directory as cwd).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A file the setup fetched, with a message saying how to get it when absent.
pub fn require(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.is_file(), "{} missing: run `make setup`", p.display());
    p
}
