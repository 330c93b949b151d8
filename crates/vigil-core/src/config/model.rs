use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Where inference runs. Resolved once at start-up and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
    /// CUDA when it initialises, otherwise CPU (the reason is logged).
    #[default]
    Auto,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            "auto" => Ok(Device::Auto),
            other => Err(format!(
                "unknown device {other:?} (expected cpu, cuda or auto)"
            )),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Auto => "auto",
        })
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
    /// Threads ONNX Runtime uses inside one operator; 0 = all cores.
    pub intra_threads: usize,
    /// Independent inference sessions, each on its own thread, taking
    /// batches from the one shared batcher. On a CPU, N sessions of
    /// cores/N threads outrun one session on all cores (operators do not
    /// scale linearly with threads); on a GPU, 1 is right.
    pub sessions: usize,
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
            imgsz: None,
            conf: 0.25,
            iou: 0.45,
            classes: Vec::new(),
            max_det: 300,
            intra_threads: 0,
            sessions: 1,
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
        if !(1..=64).contains(&self.sessions) {
            e.push(InvalidValue::new(
                "model.sessions",
                format!("must be between 1 and 64, got {}", self.sessions),
            ));
        }
        e
    }
}
