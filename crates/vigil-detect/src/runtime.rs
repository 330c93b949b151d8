//! Loading ONNX Runtime at run time (`load-dynamic`), choosing the execution
//! provider and precision, and creating sessions.
//!
//! `ort`'s `load-dynamic` loads one `libonnxruntime` per process, so the
//! library is chosen once, before the first session: `model.ort_library` from
//! config, then `ORT_DYLIB_PATH`, then what `make setup` put in
//! `third_party/` next to the working directory or the executable. There are
//! two setup libraries: the CPU-only ONNX Runtime (`onnxruntime/`, the newest
//! release) and the `onnxruntime-openvino` build (`onnxruntime-openvino/`),
//! which has both the OpenVINO and the CPU provider. Devices `openvino` and
//! `auto` prefer the latter, `cpu` and `cuda` the former. We resolve and
//! check the path ourselves because `ort` otherwise panics on first use when
//! it is missing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use vigil_core::config::{Device, Precision};

use crate::DetectError;

/// The CPU-only ONNX Runtime `make setup` fetches.
pub const SETUP_CPU_LIBRARY: &str = "third_party/onnxruntime/libonnxruntime.so";
/// The `onnxruntime-openvino` build `make setup` fetches (CPU + OpenVINO providers).
pub const SETUP_OPENVINO_LIBRARY: &str = "third_party/onnxruntime-openvino/libonnxruntime.so";
/// The shared library of ONNX Runtime's CUDA execution provider, which the
/// runtime loads from the directory of `libonnxruntime.so`.
pub const CUDA_PROVIDER_LIB: &str = "libonnxruntime_providers_cuda.so";

/// Metadata key `vigil model convert` / `quantize` write into a model so the
/// runtime can report (and check) the precision of its weights.
pub const PRECISION_METADATA_KEY: &str = "vigil.precision";

struct Loaded {
    env: Environment,
    library: PathBuf,
}

static ENV: OnceLock<Result<Loaded, String>> = OnceLock::new();

/// Finds `libonnxruntime.so` for `device` without loading it.
pub fn resolve_library(configured: Option<&Path>, device: Device) -> Result<PathBuf, DetectError> {
    if let Some(p) = configured {
        return check_lib(p.to_path_buf(), "model.ort_library");
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return check_lib(PathBuf::from(p), "ORT_DYLIB_PATH");
    }
    let preference: [&str; 2] = match device {
        Device::Openvino => [SETUP_OPENVINO_LIBRARY, SETUP_CPU_LIBRARY],
        Device::Auto if auto_prefers_openvino(CpuFeatures::detect()) => {
            [SETUP_OPENVINO_LIBRARY, SETUP_CPU_LIBRARY]
        }
        Device::Cpu | Device::Cuda | Device::Auto => [SETUP_CPU_LIBRARY, SETUP_OPENVINO_LIBRARY],
    };
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    preference
        .iter()
        .find_map(|rel| roots.iter().map(|r| r.join(rel)).find(|p| p.is_file()))
        .ok_or_else(|| {
            DetectError::Runtime(format!(
                "ONNX Runtime library not found (looked for {SETUP_OPENVINO_LIBRARY} and \
                 {SETUP_CPU_LIBRARY} above the current directory and the executable; \
                 ORT_DYLIB_PATH is unset): run `make setup`"
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

/// The process-wide ONNX Runtime environment (ORT allows only one). The
/// first call decides which library is loaded; `device` only steers the
/// search among the setup's libraries.
pub fn environment(
    configured: Option<&Path>,
    device: Device,
) -> Result<&'static Environment, DetectError> {
    loaded(configured, device).map(|l| &l.env)
}

fn loaded(configured: Option<&Path>, device: Device) -> Result<&'static Loaded, DetectError> {
    let res = ENV.get_or_init(|| {
        let lib = resolve_library(configured, device).map_err(|e| e.to_string())?;
        let builder = ort::init_from(&lib)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))?;
        let env = builder
            .with_name("vigil")
            .build()
            .map_err(|e| format!("cannot create ONNX Runtime environment: {e}"))?;
        tracing::debug!(library = %lib.display(), "ONNX Runtime loaded");
        Ok(Loaded { env, library: lib })
    });
    res.as_ref().map_err(|e| DetectError::Runtime(e.clone()))
}

/// `onnxruntime-<version>` of the loaded library, from its file name once
/// symlinks are followed (`libonnxruntime.so.1.24.1`); `onnxruntime` when the
/// name carries no version. A label of bounded cardinality for metrics.
pub fn backend_label(library: &Path) -> String {
    let real = std::fs::canonicalize(library).unwrap_or_else(|_| library.to_path_buf());
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_prefix("libonnxruntime.so.") {
        Some(v) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') => {
            format!("onnxruntime-{v}")
        }
        _ => "onnxruntime".to_string(),
    }
}

/// What the CPU offers that matters for choosing a back end and precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    pub intel: bool,
    /// AMX-BF16 or AVX-512 BF16: BF16 arithmetic in hardware.
    pub bf16: bool,
    /// AMX-BF16 tiles. Only with them is BF16 faster than FP32: on a CPU
    /// with AVX-512 BF16 alone (a Xeon VM whose hypervisor hides AMX),
    /// OpenVINO BF16 measured 0.8x its FP32 end to end (BENCHMARKS.md).
    pub amx_bf16: bool,
    /// AMX-FP16 or AVX-512 FP16.
    pub fp16: bool,
}

impl CpuFeatures {
    /// Reads `/proc/cpuinfo` (or the file `VIGIL_CPUINFO` names, so that the
    /// choice `auto` makes on another CPU can be tried and tested here); all
    /// false where it is unreadable (not Linux).
    pub fn detect() -> CpuFeatures {
        static F: OnceLock<CpuFeatures> = OnceLock::new();
        *F.get_or_init(|| {
            let path = std::env::var_os("VIGIL_CPUINFO")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/proc/cpuinfo".into());
            std::fs::read_to_string(path)
                .map(|t| CpuFeatures::parse(&t))
                .unwrap_or_default()
        })
    }

    /// Parses `/proc/cpuinfo` text (the first processor's `vendor_id` and `flags`).
    pub fn parse(cpuinfo: &str) -> CpuFeatures {
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let flags = field("flags").unwrap_or_default();
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        CpuFeatures {
            intel: field("vendor_id").as_deref() == Some("GenuineIntel"),
            bf16: has("amx_bf16") || has("avx512_bf16"),
            amx_bf16: has("amx_bf16"),
            fp16: has("amx_fp16") || has("avx512_fp16"),
        }
    }
}

/// Options for [`create_session`]; a struct rather than positional flags.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub device: Device,
    pub precision: Precision,
    /// Threads inside one operator; 0 = all cores.
    pub intra_threads: usize,
    /// See `model.intra_spinning`.
    pub intra_spinning: bool,
    pub ort_library: Option<PathBuf>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            device: Device::default(),
            precision: Precision::default(),
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
    Openvino,
}

impl ResolvedDevice {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedDevice::Cpu => "cpu",
            ResolvedDevice::Cuda => "cuda",
            ResolvedDevice::Openvino => "openvino",
        }
    }
}

impl std::fmt::Display for ResolvedDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a session runs, every `auto` resolved: what `/readyz`, the logs and
/// `vigil_model_info` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub device: ResolvedDevice,
    /// Never [`Precision::Auto`].
    pub precision: Precision,
    /// `onnxruntime-<version>` of the loaded library.
    pub runtime: String,
    pub library: PathBuf,
    pub intra_threads: usize,
    /// Why `auto` chose this device, when it was asked to choose.
    pub reason: Option<String>,
}

fn ort_err<R>(context: &str) -> impl FnOnce(ort::Error<R>) -> DetectError + '_ {
    move |e| DetectError::Runtime(format!("{context}: {}", e.message()))
}

/// Builds a session from model bytes on the requested device and precision.
pub fn create_session(
    model: &[u8],
    opts: &SessionOptions,
) -> Result<(Session, Backend), DetectError> {
    let loaded = loaded(opts.ort_library.as_deref(), opts.device)?;
    let env = &loaded.env;
    let threads = if opts.intra_threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.intra_threads
    };
    let cpu = CpuFeatures::detect();
    let lib = loaded.library.display();
    let (session, device, hint, reason) = match opts.device {
        Device::Cpu => (
            build(env, model, opts, threads, Ep::Cpu)?,
            ResolvedDevice::Cpu,
            None,
            None,
        ),
        Device::Cuda => {
            let s = build(env, model, opts, threads, Ep::Cuda).map_err(|e| {
                DetectError::Runtime(format!(
                    "device cuda requested but the CUDA execution provider failed \
                     (library {lib}): {e}"
                ))
            })?;
            (s, ResolvedDevice::Cuda, None, None)
        }
        Device::Openvino => {
            let hint = openvino_hint(opts.precision, cpu)?;
            let s = build(env, model, opts, threads, Ep::Openvino(hint)).map_err(|e| {
                DetectError::Runtime(format!(
                    "device openvino requested but the OpenVINO execution provider failed \
                     (library {lib}): {e}"
                ))
            })?;
            (s, ResolvedDevice::Openvino, Some(hint), None)
        }
        Device::Auto => match build(env, model, opts, threads, Ep::Cuda) {
            Ok(s) => (
                s,
                ResolvedDevice::Cuda,
                None,
                Some("CUDA initialised".to_string()),
            ),
            Err(cuda_err)
                if auto_prefers_openvino(cpu) && has_openvino_provider(&loaded.library) =>
            {
                let hint = openvino_hint(opts.precision, cpu)?;
                match build(env, model, opts, threads, Ep::Openvino(hint)) {
                    Ok(s) => {
                        let reason = format!(
                            "CUDA unavailable ({cuda_err}); OpenVINO {}: this CPU has AMX-BF16 \
                             (BF16 session calls 2.5x the CPU provider's, BENCHMARKS.md)",
                            hint.as_str()
                        );
                        tracing::info!(reason = %reason, "using OpenVINO");
                        (s, ResolvedDevice::Openvino, Some(hint), Some(reason))
                    }
                    Err(ov_err) => {
                        let reason = format!(
                            "CUDA unavailable ({cuda_err}); OpenVINO failed on this AMX CPU \
                             ({ov_err}; library {lib}); the CPU provider"
                        );
                        tracing::warn!(reason = %reason, "using the CPU provider");
                        (
                            build(env, model, opts, threads, Ep::Cpu)?,
                            ResolvedDevice::Cpu,
                            None,
                            Some(reason),
                        )
                    }
                }
            }
            Err(cuda_err) => {
                // Without AMX, OpenVINO is opt-in: on a CPU with AVX-512
                // but no AMX its FP32 ran 1.03x and its BF16 0.83x the CPU
                // provider's two single-thread sessions end to end
                // (`benches/backends.sh`, BENCHMARKS.md, session 14); only
                // an INT8 file (opt-in, it changes detections) ran faster.
                let why = if auto_prefers_openvino(cpu) {
                    "this CPU has AMX-BF16 but the ONNX Runtime library has no OpenVINO \
                     provider: use the onnxruntime-openvino build `make setup` fetches"
                } else {
                    "no AMX-BF16 here: OpenVINO only with device = \"openvino\", see \
                     BENCHMARKS.md"
                };
                let reason = format!("CUDA unavailable ({cuda_err}); the CPU provider ({why})");
                tracing::info!(reason = %reason, "using the CPU provider");
                (
                    build(env, model, opts, threads, Ep::Cpu)?,
                    ResolvedDevice::Cpu,
                    None,
                    Some(reason),
                )
            }
        },
    };
    let file = session
        .metadata()
        .ok()
        .and_then(|m| m.custom(PRECISION_METADATA_KEY))
        .and_then(|p| p.parse::<Precision>().ok())
        .filter(|p| *p != Precision::Auto)
        .unwrap_or(Precision::Fp32);
    let precision = resolve_precision(device, opts.precision, hint, file)?;
    Ok((
        session,
        Backend {
            device,
            precision,
            runtime: backend_label(&loaded.library),
            library: loaded.library.clone(),
            intra_threads: threads,
            reason,
        },
    ))
}

/// Whether `device = "auto"` takes OpenVINO (in BF16) when CUDA is absent:
/// only on an Intel CPU with AMX-BF16, the one place OpenVINO's session call
/// is far ahead of the CPU provider's (20.7 vs 52.6 ms, BUILD-NOTES). Without
/// AMX the CPU provider's two single-thread sessions were as fast end to
/// end (BENCHMARKS.md, session 14), so `auto` keeps it.
pub fn auto_prefers_openvino(cpu: CpuFeatures) -> bool {
    cpu.intel && cpu.amx_bf16
}

/// What `device = "auto"` is expected to become without CUDA, before any
/// session exists (to size `sessions = "auto"`): OpenVINO where
/// [`auto_prefers_openvino`] and the library `auto` would load has the
/// OpenVINO provider beside it, else the CPU provider. `create_session`
/// makes the same choice, and falls back to the CPU provider if OpenVINO
/// then fails.
pub fn auto_device_without_cuda(configured: Option<&Path>) -> Device {
    if !auto_prefers_openvino(CpuFeatures::detect()) {
        return Device::Cpu;
    }
    match resolve_library(configured, Device::Auto) {
        Ok(lib) if has_openvino_provider(&lib) => Device::Openvino,
        _ => Device::Cpu,
    }
}

/// Whether ONNX Runtime's OpenVINO provider library sits beside `lib`
/// (the `onnxruntime-openvino` build has it; the plain CPU build does not).
fn has_openvino_provider(lib: &Path) -> bool {
    let real = std::fs::canonicalize(lib).unwrap_or_else(|_| lib.to_path_buf());
    real.parent()
        .is_some_and(|d| d.join("libonnxruntime_providers_openvino.so").is_file())
}

/// The OpenVINO CPU plugin's `INFERENCE_PRECISION_HINT` for a requested
/// precision. `auto` = BF16 where the CPU has AMX-BF16 (the only place it
/// beats FP32), else FP32; an explicit `bf16` needs hardware BF16 of either kind;
/// we always set the hint because the plugin's own default on AMX CPUs is
/// already BF16, which would make `fp32` a lie.
pub fn openvino_hint(requested: Precision, cpu: CpuFeatures) -> Result<Precision, DetectError> {
    match requested {
        Precision::Auto if cpu.amx_bf16 => Ok(Precision::Bf16),
        Precision::Auto | Precision::Fp32 => Ok(Precision::Fp32),
        Precision::Bf16 if cpu.bf16 => Ok(Precision::Bf16),
        Precision::Bf16 => Err(DetectError::Runtime(
            "model.precision = \"bf16\" needs a CPU with AMX-BF16 or AVX-512 BF16 \
             (this one has neither); use \"auto\" or \"fp32\""
                .into(),
        )),
        // Without hardware FP16 the plugin emulates it; allowed, but slow.
        Precision::Fp16 => {
            if !cpu.fp16 {
                tracing::warn!("model.precision = \"fp16\" on a CPU without AMX-FP16/AVX-512 FP16");
            }
            Ok(Precision::Fp16)
        }
        // INT8 comes from the model's own QuantizeLinear/DequantizeLinear
        // nodes; the float parts in between run in FP32.
        Precision::Int8 => Ok(Precision::Fp32),
    }
}

/// The precision a session reports, checked against what was asked.
///
/// `hint` is OpenVINO's inference precision (`None` on the other providers,
/// which compute in the precision of the model file); `file` is the model
/// file's own precision from its metadata (FP32 when unmarked).
pub fn resolve_precision(
    device: ResolvedDevice,
    requested: Precision,
    hint: Option<Precision>,
    file: Precision,
) -> Result<Precision, DetectError> {
    let effective = match (file, hint) {
        (Precision::Int8, _) => Precision::Int8,
        (_, Some(h)) => h,
        (f, None) => f,
    };
    if requested == Precision::Auto || requested == effective {
        return Ok(effective);
    }
    let how = match requested {
        Precision::Int8 => "an INT8 model: make one with `vigil model quantize`",
        Precision::Fp16 if device != ResolvedDevice::Openvino => {
            "an FP16 model: make one with `vigil model convert --fp16`, or use device openvino"
        }
        Precision::Bf16 => "device openvino on a CPU with BF16",
        _ => "a model file in that precision",
    };
    Err(DetectError::Runtime(format!(
        "model.precision = \"{requested}\" cannot be met on device {device} with a {file} \
         model file (it would run in {effective}); it needs {how}"
    )))
}

#[derive(Debug, Clone, Copy)]
enum Ep {
    Cpu,
    Cuda,
    /// With the inference precision hint.
    Openvino(Precision),
}

fn build(
    env: &Environment,
    model: &[u8],
    opts: &SessionOptions,
    threads: usize,
    ep: Ep,
) -> Result<Session, DetectError> {
    use ort::ep::ExecutionProvider;
    let mut b = Session::builder(env)
        .map_err(ort_err("session builder"))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(ort_err("optimisation level"))?
        .with_intra_threads(threads)
        .map_err(ort_err("intra-op threads"))?
        .with_intra_op_spinning(opts.intra_spinning)
        .map_err(ort_err("intra-op spinning"))?;
    match ep {
        Ep::Cpu => {}
        Ep::Cuda => {
            if !ort::ep::CUDA::is_available().unwrap_or(false) {
                // Name the file that is missing: "no CUDA" alone leaves the
                // operator guessing between driver, toolkit and runtime build.
                return Err(DetectError::Runtime(format!(
                    "this ONNX Runtime build has no CUDA execution provider: \
                     {CUDA_PROVIDER_LIB} is not beside it (install the onnxruntime-gpu \
                     libraries: VIGIL_ORT_FLAVOR=gpu make setup, and point ORT_DYLIB_PATH or \
                     model.ort_library at third_party/onnxruntime-gpu/libonnxruntime.so)"
                )));
            }
            b = b
                .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map_err(ort_err("CUDA execution provider"))?;
        }
        Ep::Openvino(hint) => {
            use ort::ep::ArbitrarilyConfigurableExecutionProvider;
            if !ort::ep::OpenVINO::is_available().unwrap_or(false) {
                return Err(DetectError::Runtime(format!(
                    "this ONNX Runtime build has no OpenVINO execution provider (`make setup` \
                     fetches one into {SETUP_OPENVINO_LIBRARY})"
                )));
            }
            let ov_precision = match hint {
                Precision::Bf16 => "bf16",
                Precision::Fp16 => "f16",
                _ => "f32",
            };
            let ep = ort::ep::OpenVINO::default()
                .with_device_type("CPU")
                .with_num_threads(threads)
                .with_arbitrary_config(
                    "load_config",
                    format!(r#"{{"CPU":{{"INFERENCE_PRECISION_HINT":"{ov_precision}"}}}}"#),
                );
            b = b
                .with_execution_providers([ep.build().error_on_failure()])
                .map_err(ort_err("OpenVINO execution provider"))?;
        }
    }
    b.commit_from_memory(model).map_err(|e| {
        DetectError::Model(format!(
            "ONNX Runtime cannot load the model: {}",
            e.message()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPR: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_int8\n\nprocessor\t: 1\n";
    const ZEN2: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2\n";
    /// A Sapphire Rapids VM whose hypervisor hides AMX (this project's CI).
    const SPR_NO_AMX: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx512f avx512_bf16 avx512_fp16\n";

    #[test]
    fn cpu_features_come_from_cpuinfo() {
        let f = CpuFeatures::parse(SPR);
        assert!(f.intel && f.bf16 && f.amx_bf16 && !f.fp16);
        let v = CpuFeatures::parse(SPR_NO_AMX);
        assert!(v.intel && v.bf16 && !v.amx_bf16 && v.fp16);
        let a = CpuFeatures::parse(ZEN2);
        assert!(!a.intel && !a.bf16);
        assert_eq!(CpuFeatures::parse(""), CpuFeatures::default());
    }

    #[test]
    fn auto_takes_openvino_only_on_intel_with_amx() {
        assert!(auto_prefers_openvino(CpuFeatures::parse(SPR)));
        assert!(!auto_prefers_openvino(CpuFeatures::parse(SPR_NO_AMX)));
        assert!(!auto_prefers_openvino(CpuFeatures::parse(ZEN2)));
    }

    #[test]
    fn auto_precision_is_bf16_only_with_amx() {
        let spr = CpuFeatures::parse(SPR);
        let zen = CpuFeatures::parse(ZEN2);
        let no_amx = CpuFeatures::parse(SPR_NO_AMX);
        // AVX-512 BF16 without AMX: allowed when asked for, FP32 for auto.
        assert_eq!(
            openvino_hint(Precision::Auto, no_amx).unwrap(),
            Precision::Fp32
        );
        assert_eq!(
            openvino_hint(Precision::Bf16, no_amx).unwrap(),
            Precision::Bf16
        );
        assert_eq!(
            openvino_hint(Precision::Auto, spr).unwrap(),
            Precision::Bf16
        );
        assert_eq!(
            openvino_hint(Precision::Auto, zen).unwrap(),
            Precision::Fp32
        );
        assert_eq!(
            openvino_hint(Precision::Fp32, spr).unwrap(),
            Precision::Fp32
        );
        let e = openvino_hint(Precision::Bf16, zen).unwrap_err().to_string();
        assert!(e.contains("AMX-BF16"), "{e}");
    }

    #[test]
    fn requested_precision_must_be_what_runs() {
        use ResolvedDevice::*;
        let r = |d, req, hint, file| resolve_precision(d, req, hint, file);
        assert_eq!(
            r(Cpu, Precision::Auto, None, Precision::Fp32).unwrap(),
            Precision::Fp32
        );
        assert_eq!(
            r(Cpu, Precision::Auto, None, Precision::Int8).unwrap(),
            Precision::Int8
        );
        assert_eq!(
            r(
                Openvino,
                Precision::Auto,
                Some(Precision::Bf16),
                Precision::Fp32
            )
            .unwrap(),
            Precision::Bf16
        );
        assert_eq!(
            r(
                Openvino,
                Precision::Int8,
                Some(Precision::Fp32),
                Precision::Int8
            )
            .unwrap(),
            Precision::Int8
        );
        let e = r(Cpu, Precision::Int8, None, Precision::Fp32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vigil model quantize"), "{e}");
        let e = r(Cpu, Precision::Bf16, None, Precision::Fp32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("openvino"), "{e}");
        let e = r(Cuda, Precision::Fp16, None, Precision::Fp32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("convert --fp16"), "{e}");
    }

    #[test]
    fn backend_label_names_the_runtime_version() {
        assert_eq!(
            backend_label(Path::new("/nonexistent/libonnxruntime.so.1.24.1")),
            "onnxruntime-1.24.1"
        );
        assert_eq!(
            backend_label(Path::new("/nonexistent/libonnxruntime.so")),
            "onnxruntime"
        );
    }
}
