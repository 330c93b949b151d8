//! Global flags and how they combine with the config file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use vigil_core::config::{Config, Device, Precision};

/// Flags accepted before or after any command name.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Config file (TOML); defaults apply when omitted.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// ONNX model (an Ultralytics YOLOv8/11/12 detection export).
    #[arg(long, global = true, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// cpu, cuda, openvino, or auto (CUDA if it works, else OpenVINO BF16 on
    /// an Intel CPU with AMX-BF16, else the CPU provider).
    #[arg(long, global = true, value_name = "DEVICE")]
    pub device: Option<Device>,
    /// auto, fp32, bf16, fp16 or int8 [default: auto = BF16 on OpenVINO where
    /// the CPU has it, else the model file's own].
    #[arg(long, global = true, value_name = "P")]
    pub precision: Option<Precision>,
    /// Minimum score kept [default: 0.25].
    #[arg(long, global = true, value_name = "F")]
    pub conf: Option<f32>,
    /// NMS IoU threshold [default: 0.45].
    #[arg(long, global = true, value_name = "F")]
    pub iou: Option<f32>,
    /// Model input size [default: the model's own].
    #[arg(long, global = true, value_name = "N")]
    pub imgsz: Option<u32>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Config file (or defaults) + environment + command-line flags, validated.
pub fn load(g: &GlobalArgs) -> anyhow::Result<Config> {
    let mut cfg = match &g.config {
        Some(p) => Config::load(p)?,
        None => Config::from_env()?,
    };
    if let Some(m) = &g.model {
        cfg.model.path = m.clone();
    }
    if let Some(d) = g.device {
        cfg.model.device = d;
    }
    if let Some(p) = g.precision {
        cfg.model.precision = p;
    }
    if let Some(c) = g.conf {
        cfg.model.conf = c;
    }
    if let Some(i) = g.iou {
        cfg.model.iou = i;
    }
    if g.imgsz.is_some() {
        cfg.model.imgsz = g.imgsz;
    }
    let problems = cfg.validate();
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        anyhow::bail!("invalid settings: {}", list.join("; "));
    }
    if g.model.is_none() {
        cfg.model.path = locate_default(&cfg.model.path);
    }
    Ok(cfg)
}

/// A relative model path from config that is missing in the working directory
/// is looked up next to the installation (the repository that built the
/// executable), so `vigil detect` works from any directory after `make setup`.
fn locate_default(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .skip(1)
                .map(|d| d.join(path))
                .find(|p| p.is_file())
        })
        .with_context(|| format!("{} not found", path.display()))
        .unwrap_or_else(|_| path.to_path_buf())
}
