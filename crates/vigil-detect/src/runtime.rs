//! Loading ONNX Runtime at run time (`load-dynamic`) and creating sessions.
//!
//! The library is found once per process: `model.ort_library` from config,
//! then `ORT_DYLIB_PATH`, then the setup's `third_party/onnxruntime/` next to
//! the working directory or the executable. We resolve and check the path
//! ourselves because `ort` otherwise panics on first use when it is missing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use vigil_core::config::Device;

use crate::DetectError;

const SETUP_RELATIVE: &str = "third_party/onnxruntime/libonnxruntime.so";

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Finds `libonnxruntime.so` without loading it.
pub fn resolve_library(configured: Option<&Path>) -> Result<PathBuf, DetectError> {
    if let Some(p) = configured {
        return check_lib(p.to_path_buf(), "model.ort_library");
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return check_lib(PathBuf::from(p), "ORT_DYLIB_PATH");
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots
        .into_iter()
        .map(|r| r.join(SETUP_RELATIVE))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DetectError::Runtime(format!(
                "ONNX Runtime library not found (looked for {SETUP_RELATIVE} above the current \
                 directory and the executable; ORT_DYLIB_PATH is unset): run `make setup`"
            ))
        })
}

fn check_lib(p: PathBuf, origin: &str) -> Result<PathBuf, DetectError> {
    if p.is_file() {
        Ok(p)
    } else {
        Err(DetectError::Runtime(format!(
            "ONNX Runtime library {} (from {origin}) does not exist: run `make setup` or fix the path",
            p.display()
        )))
    }
}

/// The process-wide ONNX Runtime environment (ORT allows only one).
pub fn environment(configured: Option<&Path>) -> Result<&'static Environment, DetectError> {
    let res = ENV.get_or_init(|| {
        let lib = resolve_library(configured).map_err(|e| e.to_string())?;
        let builder = ort::init_from(&lib)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))?;
        let env = builder
            .with_name("vigil")
            .build()
            .map_err(|e| format!("cannot create ONNX Runtime environment: {e}"))?;
        tracing::debug!(library = %lib.display(), "ONNX Runtime loaded");
        Ok(env)
    });
    res.as_ref().map_err(|e| DetectError::Runtime(e.clone()))
}

/// Options for [`create_session`]; a struct rather than positional flags.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub device: Device,
    /// 0 = all cores.
    pub intra_threads: usize,
    /// See `model.intra_spinning`.
    pub intra_spinning: bool,
    pub ort_library: Option<PathBuf>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            device: Device::default(),
            intra_threads: 0,
            intra_spinning: true,
            ort_library: None,
        }
    }
}

/// What a session actually runs on, after `auto` has been resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedDevice {
    Cpu,
    Cuda,
}

impl std::fmt::Display for ResolvedDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResolvedDevice::Cpu => "cpu",
            ResolvedDevice::Cuda => "cuda",
        })
    }
}

fn ort_err<R>(context: &str) -> impl FnOnce(ort::Error<R>) -> DetectError + '_ {
    move |e| DetectError::Runtime(format!("{context}: {}", e.message()))
}

/// Builds a session from model bytes on the requested device.
pub fn create_session(
    model: &[u8],
    opts: &SessionOptions,
) -> Result<(Session, ResolvedDevice), DetectError> {
    let env = environment(opts.ort_library.as_deref())?;
    match opts.device {
        Device::Cpu => Ok((build(env, model, opts, false)?, ResolvedDevice::Cpu)),
        Device::Cuda => build(env, model, opts, true)
            .map(|s| (s, ResolvedDevice::Cuda))
            .map_err(|e| {
                DetectError::Runtime(format!(
                    "device cuda requested but the CUDA execution provider failed: {e}"
                ))
            }),
        Device::Auto => match build(env, model, opts, true) {
            Ok(s) => Ok((s, ResolvedDevice::Cuda)),
            Err(e) => {
                tracing::info!(reason = %e, "CUDA unavailable, using CPU");
                Ok((build(env, model, opts, false)?, ResolvedDevice::Cpu))
            }
        },
    }
}

fn build(
    env: &Environment,
    model: &[u8],
    opts: &SessionOptions,
    cuda: bool,
) -> Result<Session, DetectError> {
    let threads = if opts.intra_threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.intra_threads
    };
    let mut b = Session::builder(env)
        .map_err(ort_err("session builder"))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(ort_err("optimisation level"))?
        .with_intra_threads(threads)
        .map_err(ort_err("intra-op threads"))?
        .with_intra_op_spinning(opts.intra_spinning)
        .map_err(ort_err("intra-op spinning"))?;
    if cuda {
        use ort::ep::ExecutionProvider;
        if !ort::ep::CUDA::is_available().unwrap_or(false) {
            return Err(DetectError::Runtime(
                "this ONNX Runtime build has no CUDA execution provider (install the onnxruntime-gpu libraries)"
                    .into(),
            ));
        }
        b = b
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(ort_err("CUDA execution provider"))?;
    }
    b.commit_from_memory(model).map_err(|e| {
        DetectError::Model(format!(
            "ONNX Runtime cannot load the model: {}",
            e.message()
        ))
    })
}
