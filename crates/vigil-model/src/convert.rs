//! `vigil model convert --fp16`: an FP16 copy of a model for GPUs, float32 at
//! the graph boundary, checked against the FP32 original before it is written.
//!
//! The conversion is protobuf surgery like the batch rewrite: float
//! initializers and `Constant`s become float16, `Cast`s to float become
//! casts to float16, a `Cast` to float16 follows each float input and a
//! `Cast` back to float precedes each float output, so callers (and vigil's
//! own validation) still see float32 tensors. Inputs that ONNX requires to
//! be float32 whatever the data type (`Resize` scales) stay float32.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use prost::Message;
use vigil_core::config::{Count, Device, ModelConfig, Precision};
use vigil_detect::agreement::{compare, Agreement};
use vigil_detect::runtime::PRECISION_METADATA_KEY;
use vigil_detect::{Detector, DetectorOptions};

use crate::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto, AttributeProto, ModelProto,
    NodeProto, StringStringEntryProto, TensorProto,
};
use crate::prepare::{discover_photos, write_atomic};
use crate::ModelError;

/// Inputs that must stay float32 in any model: `(op_type, input index)`.
const KEEP_FLOAT: &[(&str, usize)] = &[("Resize", 2), ("Resize", 1)];

/// What [`to_fp16`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fp16Stats {
    pub initializers: usize,
    pub constants: usize,
    pub casts: usize,
    /// Values beyond float16's range (±65504), clamped.
    pub clamped: usize,
    /// Initializers kept in float32 (`Resize` scales).
    pub kept_float: usize,
}

fn not_onnx(what: &str, reason: impl Into<String>) -> ModelError {
    ModelError::NotOnnx {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// The float values of a FLOAT tensor, from `float_data` or `raw_data`.
pub(crate) fn float_values(t: &TensorProto, what: &str) -> Result<Vec<f32>, ModelError> {
    if let Some(raw) = &t.raw_data {
        if raw.len() % 4 != 0 {
            return Err(not_onnx(
                what,
                format!(
                    "tensor {:?} has {} raw bytes, not whole floats",
                    t.name(),
                    raw.len()
                ),
            ));
        }
        Ok(raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    } else {
        Ok(t.float_data.clone())
    }
}

fn tensor_to_fp16(t: &mut TensorProto, what: &str, clamped: &mut usize) -> Result<(), ModelError> {
    if !t.external_data.is_empty() {
        return Err(not_onnx(
            what,
            format!(
                "tensor {:?} keeps its data in an external file (not supported)",
                t.name()
            ),
        ));
    }
    let vals = float_values(t, what)?;
    let mut raw = Vec::with_capacity(vals.len() * 2);
    for v in vals {
        let c = if v.is_finite() && v.abs() > 65504.0 {
            *clamped += 1;
            v.signum() * 65504.0
        } else {
            v
        };
        raw.extend_from_slice(&half::f16::from_f32(c).to_le_bytes());
    }
    t.float_data.clear();
    t.raw_data = Some(raw);
    t.data_type = Some(DataType::Float16 as i32);
    Ok(())
}

fn cast_node(name: String, input: String, output: String, to: DataType) -> NodeProto {
    NodeProto {
        name: Some(name),
        op_type: Some("Cast".into()),
        input: vec![input],
        output: vec![output],
        attribute: vec![AttributeProto {
            name: Some("to".into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(to as i32 as i64),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn is_float(elem: Option<i32>) -> bool {
    elem == Some(DataType::Float as i32)
}

fn elem_type(v: &crate::onnx::ValueInfoProto) -> Option<i32> {
    match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => t.elem_type,
        _ => None,
    }
}

/// Converts a decoded model to float16 inside, float32 at the boundary, and
/// marks it with `vigil.precision = fp16`. Pure: no runtime, no files.
pub fn to_fp16(model: &mut ModelProto, what: &str) -> Result<Fp16Stats, ModelError> {
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| not_onnx(what, "the model has no graph"))?;
    let mut stats = Fp16Stats::default();
    let init_names: HashSet<String> = graph
        .initializer
        .iter()
        .map(|t| t.name().to_string())
        .collect();

    // Tensors that must stay float32, and who reads them.
    let mut keep: HashSet<String> = HashSet::new();
    for n in &graph.node {
        for &(op, idx) in KEEP_FLOAT {
            if n.op_type() == op {
                if let Some(i) = n.input.get(idx).filter(|i| !i.is_empty()) {
                    keep.insert(i.clone());
                }
            }
        }
    }

    // Boundary casts: float inputs become float16 right away; float outputs
    // are produced in float16 under a new name and cast back.
    let mut front: Vec<NodeProto> = Vec::new();
    let mut rename_in: HashMap<String, String> = HashMap::new();
    for inp in &graph.input {
        if is_float(elem_type(inp)) && !init_names.contains(inp.name()) {
            let h = format!("{}__fp16", inp.name());
            front.push(cast_node(
                format!("{}__to_fp16", inp.name()),
                inp.name().to_string(),
                h.clone(),
                DataType::Float16,
            ));
            rename_in.insert(inp.name().to_string(), h);
        }
    }
    let mut back: Vec<NodeProto> = Vec::new();
    let mut rename_out: HashMap<String, String> = HashMap::new();
    for out in &graph.output {
        if is_float(elem_type(out)) {
            let h = format!("{}__fp16", out.name());
            back.push(cast_node(
                format!("{}__to_fp32", out.name()),
                h.clone(),
                out.name().to_string(),
                DataType::Float,
            ));
            rename_out.insert(out.name().to_string(), h);
        }
    }

    // Computed tensors that must stay float32 get a cast in front of their
    // reader; initializers simply stay float32.
    let mut keep_casts: Vec<(usize, NodeProto)> = Vec::new();
    for (ni, n) in graph.node.iter_mut().enumerate() {
        for i in n.input.iter_mut() {
            if let Some(r) = rename_in.get(i).or_else(|| rename_out.get(i)) {
                *i = r.clone();
            }
        }
        for o in n.output.iter_mut() {
            if let Some(r) = rename_out.get(o) {
                *o = r.clone();
            }
        }
        for &(op, idx) in KEEP_FLOAT {
            if n.op_type() != op {
                continue;
            }
            let Some(src) = n.input.get(idx).filter(|i| !i.is_empty()).cloned() else {
                continue;
            };
            if init_names.contains(&src) {
                continue;
            }
            let f = format!("{src}__fp32_for_{ni}_{idx}");
            keep_casts.push((
                ni,
                cast_node(format!("{f}_cast"), src, f.clone(), DataType::Float),
            ));
            n.input[idx] = f;
        }
        match n.op_type() {
            "Cast" => {
                for a in n.attribute.iter_mut() {
                    if a.name() == "to" && a.i == Some(DataType::Float as i32 as i64) {
                        a.i = Some(DataType::Float16 as i32 as i64);
                        stats.casts += 1;
                    }
                }
            }
            "Constant" | "ConstantOfShape" => {
                let out_kept = n.output.iter().any(|o| keep.contains(o));
                for a in n.attribute.iter_mut() {
                    if a.name() == "value" && !out_kept {
                        if let Some(t) =
                            a.t.as_mut()
                                .filter(|t| t.data_type == Some(DataType::Float as i32))
                        {
                            tensor_to_fp16(t, what, &mut stats.clamped)?;
                            stats.constants += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for t in graph.initializer.iter_mut() {
        if t.data_type != Some(DataType::Float as i32) {
            continue;
        }
        if keep.contains(t.name()) {
            stats.kept_float += 1;
            continue;
        }
        tensor_to_fp16(t, what, &mut stats.clamped)?;
        stats.initializers += 1;
    }
    // Insert the keep-float casts right before their readers (back to front
    // so the indices stay valid), then the boundary casts.
    for (ni, c) in keep_casts.into_iter().rev() {
        graph.node.insert(ni, c);
    }
    let mut nodes = front;
    nodes.append(&mut graph.node);
    nodes.append(&mut back);
    graph.node = nodes;
    // Stale float32 shape hints would contradict the new types; ONNX
    // Runtime infers them again.
    graph.value_info.clear();

    model
        .metadata_props
        .retain(|p| p.key() != PRECISION_METADATA_KEY);
    model.metadata_props.push(StringStringEntryProto {
        key: Some(PRECISION_METADATA_KEY.into()),
        value: Some("fp16".into()),
    });
    Ok(stats)
}

/// Knobs for [`convert_fp16`].
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Least share of boxes (both directions, same class, IoU ≥ 0.9) the
    /// FP16 model must share with the FP32 original on the check images.
    pub min_agreement: f64,
    /// Write even below `min_agreement`.
    pub force: bool,
    /// Check images; empty = the sample photos (`data/photos/`).
    pub check_images: Vec<PathBuf>,
    pub ort_library: Option<PathBuf>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            min_agreement: 0.98,
            force: false,
            check_images: Vec::new(),
            ort_library: None,
        }
    }
}

/// What [`convert_fp16`] did.
#[derive(Debug, Clone)]
pub struct ConvertReport {
    pub output: PathBuf,
    pub stats: Fp16Stats,
    pub agreement: Agreement,
    pub images: usize,
    pub bytes_in: usize,
    pub bytes_out: usize,
}

impl ConvertReport {
    pub fn summary(&self) -> String {
        format!(
            "converted {} to FP16 ({} -> {} MB; {} initializers, {} constants, {} casts): \
             agreement with FP32 on {} images at IoU 0.9 {}",
            self.output.display(),
            self.bytes_in / 1_000_000,
            self.bytes_out / 1_000_000,
            self.stats.initializers,
            self.stats.constants,
            self.stats.casts,
            self.images,
            self.agreement
        )
    }
}

/// Detections of `models` (bytes) on `images`, each on the CPU provider of
/// the loaded runtime in FP32 arithmetic, for comparing a variant with its
/// original in the same process.
pub(crate) fn detections_of(
    model: &[u8],
    name: &Path,
    images: &[vigil_core::ImageBgr],
    ort_library: Option<PathBuf>,
) -> Result<Vec<Vec<vigil_core::Detection>>, ModelError> {
    let cfg = ModelConfig {
        path: name.to_path_buf(),
        device: Device::Cpu,
        precision: Precision::Auto,
        intra_threads: Count::Fixed(0),
        ort_library,
        ..ModelConfig::default()
    };
    let rt = |e: vigil_detect::DetectError| ModelError::Runtime {
        what: name.display().to_string(),
        message: e.to_string(),
    };
    let mut d = Detector::load_bytes(&DetectorOptions::single(&cfg), model).map_err(rt)?;
    images
        .iter()
        .map(|img| d.detect(&[img]).map(|mut v| v.remove(0)).map_err(rt))
        .collect()
}

pub(crate) fn load_images(
    paths: &[PathBuf],
    model: &Path,
) -> Result<Vec<vigil_core::ImageBgr>, ModelError> {
    let paths = if paths.is_empty() {
        discover_photos(model)
    } else {
        paths.to_vec()
    };
    if paths.is_empty() {
        return Err(ModelError::Frame(
            "no check images: pass some, or run `make setup` for data/photos/".into(),
        ));
    }
    paths
        .iter()
        .map(|p| {
            vigil_detect::image_io::load_image(p)
                .map_err(|e| ModelError::Frame(format!("check image: {e}")))
        })
        .collect()
}

/// Converts the model at `input` to FP16 and writes it to `output` once the
/// FP16 model's detections agree with the original's on the check images
/// (run in the same process, moments apart). A float16 model runs on the
/// CPU provider through inserted casts, which is slow but shows what the
/// rounding of the weights does to the detections.
pub fn convert_fp16(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
) -> Result<ConvertReport, ModelError> {
    let what = input.display().to_string();
    let original = std::fs::read(input).map_err(|error| ModelError::Read {
        path: input.to_path_buf(),
        error,
    })?;
    let mut model =
        ModelProto::decode(original.as_slice()).map_err(|e| not_onnx(&what, e.to_string()))?;
    if model
        .metadata_props
        .iter()
        .any(|p| p.key() == PRECISION_METADATA_KEY && p.value() != "fp32")
    {
        return Err(ModelError::Options(format!(
            "{what} is already a reduced-precision model; convert the FP32 original"
        )));
    }
    let stats = to_fp16(&mut model, &what)?;
    let converted = model.encode_to_vec();
    let images = load_images(&opts.check_images, input)?;
    let want = detections_of(&original, input, &images, opts.ort_library.clone())?;
    let got = detections_of(&converted, output, &images, opts.ort_library.clone())?;
    let agreement = compare(&want, &got, 0.9);
    if agreement.ratio() < opts.min_agreement && !opts.force {
        return Err(ModelError::Check {
            what,
            detail: format!(
                "FP16 agreement with FP32 {agreement} is below {:.0} % (--force writes it anyway)",
                100.0 * opts.min_agreement
            ),
        });
    }
    write_atomic(output, &converted)?;
    Ok(ConvertReport {
        output: output.to_path_buf(),
        stats,
        agreement,
        images: images.len(),
        bytes_in: original.len(),
        bytes_out: converted.len(),
    })
}
