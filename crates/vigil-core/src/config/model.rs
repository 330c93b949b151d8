use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Where inference runs. Resolved once at start-up and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// ONNX Runtime's own CPU provider: runs everywhere, FP32.
    Cpu,
    /// NVIDIA GPUs through ONNX Runtime's CUDA provider.
    Cuda,
    /// Intel's OpenVINO through ONNX Runtime's OpenVINO provider, on the
    /// CPU: 1.4x the CPU provider in FP32 and ~2.5x in BF16 on CPUs with AMX
    /// (BENCHMARKS.md). Needs the `onnxruntime-openvino` library `make setup`
    /// fetches.
    Openvino,
    /// CUDA when it initialises, else the CPU provider (the reason is
    /// logged). OpenVINO is not tried: on the 2-core benchmark VM it ran
    /// slower end to end than the CPU provider (BENCHMARKS.md).
    #[default]
    Auto,
}

/// A `model.device` / `--device` value that names no [`Device`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device {0:?} (expected cpu, cuda, openvino or auto)")]
pub struct UnknownDevice(pub String);

impl std::str::FromStr for Device {
    type Err = UnknownDevice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            "openvino" => Ok(Device::Openvino),
            "auto" => Ok(Device::Auto),
            other => Err(UnknownDevice(other.to_string())),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Openvino => "openvino",
            Device::Auto => "auto",
        })
    }
}

/// The arithmetic inference runs in. Resolved once at start-up and logged.
///
/// On OpenVINO it is the plugin's `INFERENCE_PRECISION_HINT` (the model file
/// stays FP32); on the CPU and CUDA providers it is the precision of the model
/// file itself (`vigil model convert --fp16`, `vigil model quantize`), which
/// vigil reads from the file's `vigil.precision` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// BF16 on OpenVINO where the CPU has AMX-BF16 or AVX-512 BF16 (agreement
    /// with FP32 ~99 % of boxes, BENCHMARKS.md), otherwise the model file's
    /// own precision.
    #[default]
    Auto,
    Fp32,
    Bf16,
    Fp16,
    /// Needs an INT8 QDQ model from `vigil model quantize`.
    Int8,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }
}

/// A `model.precision` / `--precision` value that names no [`Precision`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?} (expected auto, fp32, bf16, fp16 or int8)")]
pub struct UnknownPrecision(pub String);

impl std::str::FromStr for Precision {
    type Err = UnknownPrecision;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Precision::Auto),
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "fp16" => Ok(Precision::Fp16),
            "int8" => Ok(Precision::Int8),
            other => Err(UnknownPrecision(other.to_string())),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A count that is either chosen by vigil at start-up (`"auto"`) or fixed.
///
/// In TOML: `sessions = "auto"` or `sessions = 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Count {
    #[default]
    Auto,
    Fixed(usize),
}

impl Count {
    /// The fixed value, or `auto()` when automatic.
    pub fn or_else(self, auto: impl FnOnce() -> usize) -> usize {
        match self {
            Count::Auto => auto(),
            Count::Fixed(n) => n,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Auto => f.write_str("auto"),
            Count::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Count::Auto => s.serialize_str("auto"),
            Count::Fixed(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"auto\" or a non-negative integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Count, E> {
                usize::try_from(v)
                    .map(Count::Fixed)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("must be \"auto\" or >= 0, got {v}")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Count, E> {
                if v.eq_ignore_ascii_case("auto") {
                    Ok(Count::Auto)
                } else {
                    v.trim().parse::<usize>().map(Count::Fixed).map_err(|_| {
                        E::custom(format!("expected \"auto\" or an integer, got {v:?}"))
                    })
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `[model]`: which ONNX model to run and how to filter its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// An Ultralytics YOLOv8/11/12 detection export. The setup's batch-dynamic
    /// copy of the default model is the default so streams can share batches.
    pub path: PathBuf,
    pub device: Device,
    /// Arithmetic precision; `auto` picks BF16 on OpenVINO where the CPU
    /// has it, else the model file's own (see [`Precision`]).
    pub precision: Precision,
    /// Model input size; `None` uses the size the model declares.
    pub imgsz: Option<u32>,
    /// Minimum class score kept (Ultralytics' default).
    pub conf: f32,
    /// IoU above which a lower-scored box of the same class is suppressed.
    pub iou: f32,
    /// Keep only these class ids (empty = all).
    pub classes: Vec<u32>,
    /// Most detections kept per frame after NMS.
    pub max_det: usize,
    /// Threads one inference session uses inside an operator. `auto` =
    /// the cores divided among the sessions; 0 = all cores per session.
    pub intra_threads: Count,
    /// Independent inference sessions, each on its own thread, taking
    /// batches from the one shared batcher. On a CPU, N sessions of
    /// cores/N threads outrun one session on all cores (operators do not
    /// scale linearly with threads); on a GPU, 1 is right. `auto` = 1 on
    /// CUDA, else one per core up to 4 (see [`auto_sessions`]).
    pub sessions: Count,
    /// Let ONNX Runtime's idle intra-op threads spin instead of sleeping
    /// (its own default). Fastest on a machine vigil has to itself; set false
    /// when other busy processes share the cores, where spinning threads can
    /// slow everything down several times over.
    pub intra_spinning: bool,
    /// Path to `libonnxruntime.so`; when unset, `ORT_DYLIB_PATH` and then the
    /// setup's `third_party/onnxruntime/` are tried.
    pub ort_library: Option<PathBuf>,
    /// A labels file (one name a line) overriding the model's own `names`.
    pub labels: Option<PathBuf>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("models/yolov12n-dyn.onnx"),
            device: Device::Auto,
            precision: Precision::Auto,
            imgsz: None,
            conf: 0.25,
            iou: 0.45,
            classes: Vec::new(),
            max_det: 300,
            intra_threads: Count::Auto,
            sessions: Count::Auto,
            intra_spinning: true,
            ort_library: None,
            labels: None,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if !(0.0..=1.0).contains(&self.conf) {
            e.push(InvalidValue::new(
                "model.conf",
                format!("must be within 0..1, got {}", self.conf),
            ));
        }
        if !(0.0..=1.0).contains(&self.iou) {
            e.push(InvalidValue::new(
                "model.iou",
                format!("must be within 0..1, got {}", self.iou),
            ));
        }
        if let Some(s) = self.imgsz {
            if s == 0 || s % 32 != 0 || s > 4096 {
                e.push(InvalidValue::new(
                    "model.imgsz",
                    format!("must be a positive multiple of 32 up to 4096, got {s}"),
                ));
            }
        }
        if self.max_det == 0 {
            e.push(InvalidValue::new("model.max_det", "must be at least 1"));
        }
        if let Count::Fixed(n) = self.sessions {
            if !(1..=64).contains(&n) {
                e.push(InvalidValue::new(
                    "model.sessions",
                    format!("must be \"auto\" or between 1 and 64, got {n}"),
                ));
            }
        }
        if let Count::Fixed(n) = self.intra_threads {
            if n > 1024 {
                e.push(InvalidValue::new(
                    "model.intra_threads",
                    format!("must be \"auto\", 0 (all cores) or up to 1024, got {n}"),
                ));
            }
        }
        e
    }
}

/// What `model.sessions = "auto"` resolves to on a machine with `cores`
/// logical CPUs for a (resolved) `device`.
///
/// One session per core, up to 4, each with `cores / sessions` threads: on
/// the 2-core benchmark machine two single-thread sessions beat one
/// two-thread session by 1.07-1.4x on the CPU provider (BENCHMARKS.md),
/// because convolutions do not scale linearly with threads and the shared
/// batcher keeps every session busy. Beyond 4 the gain is small and each
/// session holds its own copy of the model and activations (~370 MB at
/// 640x640). A GPU runs one session: it parallelises inside. So does
/// OpenVINO: two single-thread OpenVINO sessions ran end to end at half the
/// speed of one two-thread session (7.8 vs 14.7 fps, BENCHMARKS.md).
pub fn auto_sessions(device: Device, cores: usize) -> usize {
    match device {
        Device::Cuda | Device::Openvino => 1,
        _ => cores.clamp(1, 4),
    }
}

/// What `model.intra_threads = "auto"` (or 0) resolves to: the cores shared
/// out evenly among the sessions, at least one thread each.
pub fn auto_intra_threads(cores: usize, sessions: usize) -> usize {
    (cores / sessions.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        n: Count,
    }

    fn count(toml_text: &str) -> Result<Count, String> {
        toml::from_str::<T>(toml_text)
            .map(|t| t.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn count_reads_auto_and_integers_and_rejects_the_rest() {
        assert_eq!(count("n = \"auto\"").unwrap(), Count::Auto);
        assert_eq!(count("n = \"AUTO\"").unwrap(), Count::Auto);
        assert_eq!(count("n = 3").unwrap(), Count::Fixed(3));
        assert_eq!(count("n = \"2\"").unwrap(), Count::Fixed(2));
        assert!(count("n = -1").unwrap_err().contains("-1"));
        assert!(count("n = \"many\"").unwrap_err().contains("many"));
        assert!(count("n = 1.5").is_err());
    }

    #[test]
    fn auto_counts_share_the_cores() {
        assert_eq!(auto_sessions(Device::Cpu, 2), 2);
        assert_eq!(auto_sessions(Device::Openvino, 1), 1);
        assert_eq!(auto_sessions(Device::Openvino, 64), 1);
        assert_eq!(auto_sessions(Device::Auto, 64), 4);
        assert_eq!(auto_sessions(Device::Cuda, 64), 1);
        assert_eq!(auto_intra_threads(2, 2), 1);
        assert_eq!(auto_intra_threads(16, 4), 4);
        assert_eq!(auto_intra_threads(3, 4), 1);
        assert_eq!(auto_intra_threads(8, 0), 8);
    }

    #[test]
    fn device_and_precision_parse_and_name_the_choices() {
        assert_eq!("OpenVINO".parse::<Device>().unwrap(), Device::Openvino);
        assert!("tpu"
            .parse::<Device>()
            .unwrap_err()
            .to_string()
            .contains("openvino"));
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("fp8"
            .parse::<Precision>()
            .unwrap_err()
            .to_string()
            .contains("int8"));
        for p in ["auto", "fp32", "bf16", "fp16", "int8"] {
            assert_eq!(p.parse::<Precision>().unwrap().to_string(), p);
        }
    }
}
