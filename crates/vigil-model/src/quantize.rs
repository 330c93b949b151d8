//! `vigil model quantize`: static INT8 (QDQ) calibrated on real frames, with
//! no Python at run time.
//!
//! 1. Calibration frames are decoded from the given images and videos and
//!    letterboxed exactly as at inference ([`vigil_detect::preprocess`]).
//! 2. A copy of the model that also outputs the activation feeding every
//!    quantized `Conv` runs on the calibration half of the frames on ONNX
//!    Runtime; each activation's range is its min/max over the frames
//!    (`minmax`) or the 0.01 %/99.99 % percentiles per frame, averaged
//!    (`percentile`).
//! 3. Each quantized `Conv` gets `QuantizeLinear`→`DequantizeLinear` (uint8,
//!    asymmetric) on its activation and an int8 weight, symmetric per output
//!    channel, behind a `DequantizeLinear` (QDQ format: back ends that run
//!    INT8, OpenVINO among them, fuse the pairs into integer convolutions).
//!    The detection head (the last `/model.N/` module: box regression, DFL
//!    decode, class scores) stays float: one scale cannot cover pixel
//!    coordinates and 0–1 scores. Attention `MatMul`s stay float too.
//! 4. The result is checked against the FP32 original on the held-out half
//!    of the frames plus the check images (same class, IoU ≥ 0.5, both
//!    directions) and written only when it meets `min_agreement`, unless
//!    forced.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ort::value::TensorRef;
use prost::Message;
use vigil_core::config::{Device, Precision};
use vigil_core::ImageBgr;
use vigil_detect::agreement::{compare, Agreement};
use vigil_detect::runtime::{create_session, SessionOptions, PRECISION_METADATA_KEY};
use vigil_video::{SourceOptions, VideoSource};

use crate::convert::{detections_of, float_values, load_images};
use crate::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto, AttributeProto, ModelProto,
    NodeProto, StringStringEntryProto, TensorProto, TypeProto, ValueInfoProto,
};
use crate::prepare::write_atomic;
use crate::ModelError;

/// How activation ranges are taken from the calibration frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibMethod {
    MinMax,
    /// 0.01 % / 99.99 % per frame, averaged over frames: ignores rare outliers.
    Percentile,
}

/// Why `--method` names no [`CalibMethod`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalibMethodError {
    #[error("method entropy (KL divergence) is not implemented; use minmax or percentile")]
    Entropy,
    #[error("unknown method {0:?} (expected minmax or percentile)")]
    Unknown(String),
}

impl std::str::FromStr for CalibMethod {
    type Err = CalibMethodError;
    fn from_str(s: &str) -> Result<Self, CalibMethodError> {
        match s {
            "minmax" => Ok(CalibMethod::MinMax),
            "percentile" => Ok(CalibMethod::Percentile),
            "entropy" => Err(CalibMethodError::Entropy),
            o => Err(CalibMethodError::Unknown(o.to_string())),
        }
    }
}

/// Knobs for [`quantize`].
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// Images (jpg/png/...) and videos to take calibration frames from.
    pub calib: Vec<PathBuf>,
    /// Frames in all; half calibrate, the other half check.
    pub frames: usize,
    pub method: CalibMethod,
    /// Node-name prefixes kept in float besides the head (e.g. `/model.0/`).
    pub exclude: Vec<String>,
    /// Least agreement with FP32 (IoU ≥ 0.5, both directions).
    pub min_agreement: f64,
    pub force: bool,
    /// Extra check images; empty = the sample photos when found.
    pub check_images: Vec<PathBuf>,
    pub ort_library: Option<PathBuf>,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        Self {
            calib: Vec::new(),
            frames: 64,
            method: CalibMethod::Percentile,
            exclude: Vec::new(),
            min_agreement: 0.95,
            force: false,
            check_images: Vec::new(),
            ort_library: None,
        }
    }
}

/// What [`quantize`] did.
#[derive(Debug, Clone)]
pub struct QuantizeReport {
    pub output: PathBuf,
    pub quantized_convs: usize,
    pub float_convs: usize,
    pub calib_frames: usize,
    pub check_frames: usize,
    pub agreement: Agreement,
    pub written: bool,
}

impl QuantizeReport {
    pub fn summary(&self) -> String {
        format!(
            "{} {}: {} Conv quantized to INT8, {} kept float; calibrated on {} frames; \
             agreement with FP32 on {} held-out frames at IoU 0.5 {}",
            if self.written {
                "quantized"
            } else {
                "not written:"
            },
            self.output.display(),
            self.quantized_convs,
            self.float_convs,
            self.calib_frames,
            self.check_frames,
            self.agreement
        )
    }
}

fn model_err(what: &str, reason: impl Into<String>) -> ModelError {
    ModelError::NotYolo {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// The node-name prefix of the detection head: the highest-numbered
/// `/model.N/` module of an Ultralytics export.
pub fn head_prefix(model: &ModelProto) -> Option<String> {
    let graph = model.graph.as_ref()?;
    graph
        .node
        .iter()
        .filter_map(|n| {
            let rest = n.name().strip_prefix("/model.")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            rest[digits.len()..]
                .starts_with('/')
                .then(|| digits.parse::<u32>().ok())?
        })
        .max()
        .map(|n| format!("/model.{n}/"))
}

/// Which `Conv` nodes get quantized: a float weight initializer, outside the
/// head and the excluded prefixes. Returns node indices.
fn pick_convs(model: &ModelProto, exclude: &[String]) -> (Vec<usize>, usize) {
    let Some(graph) = model.graph.as_ref() else {
        return (Vec::new(), 0);
    };
    let inits: HashSet<&str> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == Some(DataType::Float as i32))
        .map(|t| t.name())
        .collect();
    let mut picked = Vec::new();
    let mut float = 0;
    for (i, n) in graph.node.iter().enumerate() {
        if n.op_type() != "Conv" {
            continue;
        }
        let weight_ok = n.input.get(1).is_some_and(|w| inits.contains(w.as_str()));
        let excluded = exclude.iter().any(|p| n.name().starts_with(p.as_str()));
        if weight_ok && !excluded {
            picked.push(i);
        } else {
            float += 1;
        }
    }
    (picked, float)
}

fn float_output(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Frames from images and videos, `n` at most, spread evenly over each video.
fn calib_frames(paths: &[PathBuf], n: usize) -> Result<Vec<ImageBgr>, ModelError> {
    let mut out = Vec::new();
    if paths.is_empty() {
        return Err(ModelError::Options(
            "--calib needs at least one image or video".into(),
        ));
    }
    let per_source = n.div_ceil(paths.len()).max(1);
    for p in paths {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "bmp" | "webp") {
            out.push(
                vigil_detect::image_io::load_image(p)
                    .map_err(|e| ModelError::Frame(format!("calibration image: {e}")))?,
            );
            continue;
        }
        if !p.is_file() {
            return Err(ModelError::Frame(format!(
                "calibration source {} does not exist",
                p.display()
            )));
        }
        let mut src = VideoSource::open(&p.to_string_lossy(), &SourceOptions::default())
            .map_err(|e| ModelError::Frame(format!("calibration video {}: {e}", p.display())))?;
        let total = src
            .info()
            .frame_count
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(0);
        let step = if total > per_source {
            total / per_source
        } else {
            1
        };
        let mut i = 0usize;
        let mut taken = 0usize;
        while taken < per_source {
            match src.read() {
                Ok(Some(f)) => {
                    if i.is_multiple_of(step) {
                        out.push(f.image);
                        taken += 1;
                    }
                    i += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(ModelError::Frame(format!(
                        "calibration video {}: {e}",
                        p.display()
                    )))
                }
            }
        }
        if taken == 0 {
            return Err(ModelError::Frame(format!(
                "calibration video {} has no frames",
                p.display()
            )));
        }
    }
    out.truncate(n);
    if out.len() < 2 {
        return Err(ModelError::Options(format!(
            "need at least 2 calibration frames (half calibrate, half check), got {}",
            out.len()
        )));
    }
    Ok(out)
}

/// Low/high of one activation on one frame.
fn frame_range(v: &mut [f32], method: CalibMethod) -> (f32, f32) {
    match method {
        CalibMethod::MinMax => v
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x))),
        CalibMethod::Percentile => {
            let n = v.len();
            let k_lo = n / 10_000;
            let k_hi = (n - 1).saturating_sub(n / 10_000);
            let lo = *v.select_nth_unstable_by(k_lo, f32::total_cmp).1;
            let hi = *v.select_nth_unstable_by(k_hi, f32::total_cmp).1;
            (lo, hi)
        }
    }
}

/// Runs the calibration model and returns each tensor's (low, high).
fn calibrate(
    model: &ModelProto,
    tensors: &[String],
    frames: &[Vec<f32>],
    side: (usize, usize),
    opts: &QuantizeOptions,
    what: &str,
) -> Result<HashMap<String, (f32, f32)>, ModelError> {
    let mut aug = model.clone();
    let graph = aug
        .graph
        .as_mut()
        .ok_or_else(|| model_err(what, "no graph"))?;
    let existing: HashSet<String> = graph.output.iter().map(|o| o.name().to_string()).collect();
    for t in tensors {
        if !existing.contains(t) {
            graph.output.push(float_output(t));
        }
    }
    let input_name = graph
        .input
        .first()
        .map(|i| i.name().to_string())
        .ok_or_else(|| model_err(what, "no graph input"))?;
    let bytes = aug.encode_to_vec();
    let rt = |m: String| ModelError::Runtime {
        what: what.to_string(),
        message: m,
    };
    let (mut session, _) = create_session(
        &bytes,
        &SessionOptions {
            device: Device::Cpu,
            precision: Precision::Fp32,
            intra_threads: 0,
            intra_spinning: true,
            ort_library: opts.ort_library.clone(),
        },
    )
    .map_err(|e| rt(e.to_string()))?;
    let (w, h) = side;
    let mut sums: HashMap<String, (f64, f64, f32, f32)> = HashMap::new();
    for f in frames {
        let tensor = TensorRef::from_array_view(([1i64, 3, h as i64, w as i64], f.as_slice()))
            .map_err(|e| rt(e.to_string()))?;
        let outputs = session
            .run(ort::inputs![input_name.as_str() => tensor])
            .map_err(|e| rt(format!("calibration run: {e}")))?;
        for t in tensors {
            let v = outputs
                .get(t.as_str())
                .ok_or_else(|| rt(format!("calibration output {t:?} missing")))?;
            let (_, data) = v
                .try_extract_tensor::<f32>()
                .map_err(|e| rt(format!("calibration output {t:?}: {e}")))?;
            let mut data = data.to_vec();
            if data.is_empty() {
                continue;
            }
            let (lo, hi) = frame_range(&mut data, opts.method);
            let e = sums
                .entry(t.clone())
                .or_insert((0.0, 0.0, f32::MAX, f32::MIN));
            e.0 += f64::from(lo);
            e.1 += f64::from(hi);
            e.2 = e.2.min(lo);
            e.3 = e.3.max(hi);
        }
    }
    let n = frames.len() as f64;
    Ok(sums
        .into_iter()
        .map(|(k, (slo, shi, mn, mx))| {
            let r = match opts.method {
                CalibMethod::MinMax => (mn, mx),
                CalibMethod::Percentile => ((slo / n) as f32, (shi / n) as f32),
            };
            (k, r)
        })
        .collect())
}

fn scalar(name: String, dt: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name),
        data_type: Some(dt as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: String,
    input: Vec<String>,
    output: String,
    axis: Option<i64>,
) -> NodeProto {
    NodeProto {
        name: Some(name),
        op_type: Some(op.into()),
        input,
        output: vec![output],
        attribute: axis
            .map(|a| {
                vec![AttributeProto {
                    name: Some("axis".into()),
                    r#type: Some(AttributeType::Int as i32),
                    i: Some(a),
                    ..Default::default()
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// Inserts the QDQ nodes for the picked convolutions. Pure.
fn insert_qdq(
    model: &mut ModelProto,
    convs: &[usize],
    ranges: &HashMap<String, (f32, f32)>,
    what: &str,
) -> Result<(), ModelError> {
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| model_err(what, "no graph"))?;
    let mut init_index: HashMap<String, usize> = HashMap::new();
    for (i, t) in graph.initializer.iter().enumerate() {
        init_index.insert(t.name().to_string(), i);
    }
    // Activation QDQ pairs, one per tensor, shared by its quantized readers.
    let mut act_dq: HashMap<String, String> = HashMap::new();
    let mut new_nodes: Vec<(usize, NodeProto)> = Vec::new();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    for &ci in convs {
        let x = graph.node[ci].input[0].clone();
        let wname = graph.node[ci].input[1].clone();
        if !act_dq.contains_key(&x) {
            let (lo, hi) = ranges.get(&x).copied().unwrap_or((0.0, 0.0));
            // The range must contain 0 so zero padding is exact.
            let (lo, hi) = (lo.min(0.0), hi.max(0.0));
            let scale = ((hi - lo) / 255.0).max(1e-8);
            let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
            let (s, z, q, dq) = (
                format!("{x}__qscale"),
                format!("{x}__qzp"),
                format!("{x}__q"),
                format!("{x}__dq"),
            );
            new_inits.push(scalar(
                s.clone(),
                DataType::Float,
                scale.to_le_bytes().to_vec(),
            ));
            new_inits.push(scalar(z.clone(), DataType::Uint8, vec![zp]));
            new_nodes.push((
                ci,
                node(
                    "QuantizeLinear",
                    format!("{x}__Q"),
                    vec![x.clone(), s.clone(), z.clone()],
                    q.clone(),
                    None,
                ),
            ));
            new_nodes.push((
                ci,
                node(
                    "DequantizeLinear",
                    format!("{x}__DQ"),
                    vec![q, s, z],
                    dq.clone(),
                    None,
                ),
            ));
            act_dq.insert(x.clone(), dq);
        }
        // Weight: int8, symmetric per output channel.
        let wi = *init_index
            .get(&wname)
            .ok_or_else(|| model_err(what, format!("weight {wname:?} is not an initializer")))?;
        let wt = &graph.initializer[wi];
        let dims = wt.dims.clone();
        let vals = float_values(wt, what)?;
        let channels = usize::try_from(*dims.first().unwrap_or(&0)).unwrap_or(0);
        if channels == 0 || vals.len() % channels != 0 {
            return Err(model_err(
                what,
                format!("weight {wname:?} has shape {dims:?}"),
            ));
        }
        let per = vals.len() / channels;
        let mut scales = Vec::with_capacity(channels * 4);
        let mut q = Vec::with_capacity(vals.len());
        for c in 0..channels {
            let ch = &vals[c * per..(c + 1) * per];
            let m = ch.iter().fold(0f32, |a, v| a.max(v.abs()));
            let s = if m > 0.0 { m / 127.0 } else { 1.0 };
            scales.extend_from_slice(&s.to_le_bytes());
            q.extend(
                ch.iter()
                    .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8),
            );
        }
        let (qw, ws, wz, wdq) = (
            format!("{wname}__int8"),
            format!("{wname}__scale"),
            format!("{wname}__zp"),
            format!("{wname}__dq"),
        );
        new_inits.push(TensorProto {
            name: Some(qw.clone()),
            dims: dims.clone(),
            data_type: Some(DataType::Int8 as i32),
            raw_data: Some(q),
            ..Default::default()
        });
        new_inits.push(TensorProto {
            name: Some(ws.clone()),
            dims: vec![channels as i64],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(scales),
            ..Default::default()
        });
        new_inits.push(TensorProto {
            name: Some(wz.clone()),
            dims: vec![channels as i64],
            data_type: Some(DataType::Int8 as i32),
            raw_data: Some(vec![0u8; channels]),
            ..Default::default()
        });
        new_nodes.push((
            ci,
            node(
                "DequantizeLinear",
                format!("{wname}__DQ"),
                vec![qw, ws, wz],
                wdq.clone(),
                Some(0),
            ),
        ));
        let n = &mut graph.node[ci];
        n.input[0] = act_dq[&x].clone();
        n.input[1] = wdq;
    }
    // Drop float weights nobody reads any more.
    let still_read: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    graph
        .initializer
        .retain(|t| t.data_type != Some(DataType::Float as i32) || still_read.contains(t.name()));
    graph.initializer.extend(new_inits);
    // Insert before each conv (stable: back to front).
    new_nodes.sort_by_key(|(i, _)| *i);
    for (i, n) in new_nodes.into_iter().rev() {
        graph.node.insert(i, n);
    }
    // Topological order: activation Q/DQ nodes were inserted before their
    // first reader, after its producer (the conv's input is produced earlier).
    model
        .metadata_props
        .retain(|p| p.key() != PRECISION_METADATA_KEY);
    model.metadata_props.push(StringStringEntryProto {
        key: Some(PRECISION_METADATA_KEY.into()),
        value: Some("int8".into()),
    });
    Ok(())
}

/// `(width, height)` of the image input when the model fixes them.
fn input_side(graph: &crate::onnx::GraphProto) -> Option<(usize, usize)> {
    use crate::onnx::tensor_shape_proto::dimension::Value;
    let t = match graph.input.first()?.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => t,
        _ => return None,
    };
    let d = &t.shape.as_ref()?.dim;
    let v = |i: usize| match d.get(i)?.value.as_ref()? {
        Value::DimValue(v) => usize::try_from(*v).ok().filter(|v| *v > 0),
        Value::DimParam(_) => None,
    };
    Some((v(3)?, v(2)?))
}

/// Quantizes the model at `input` to INT8 QDQ and writes it to `output`
/// when it agrees with the FP32 original well enough (see the module docs).
pub fn quantize(
    input: &Path,
    output: &Path,
    opts: &QuantizeOptions,
) -> Result<QuantizeReport, ModelError> {
    let what = input.display().to_string();
    if !(0.0..=1.0).contains(&opts.min_agreement) {
        return Err(ModelError::Options(format!(
            "min_agreement must be within 0..1, got {}",
            opts.min_agreement
        )));
    }
    let original = std::fs::read(input).map_err(|error| ModelError::Read {
        path: input.to_path_buf(),
        error,
    })?;
    let mut model = ModelProto::decode(original.as_slice()).map_err(|e| ModelError::NotOnnx {
        what: what.clone(),
        reason: e.to_string(),
    })?;
    if model
        .metadata_props
        .iter()
        .any(|p| p.key() == PRECISION_METADATA_KEY && p.value() != "fp32")
    {
        return Err(ModelError::Options(format!(
            "{what} is already a reduced-precision model; quantize the FP32 original"
        )));
    }
    let head = head_prefix(&model).ok_or_else(|| {
        model_err(
            &what,
            "no `/model.N/` node names: cannot tell the detection head (an Ultralytics export is needed)",
        )
    })?;
    let mut exclude = opts.exclude.clone();
    exclude.push(head);
    let (convs, float_convs) = pick_convs(&model, &exclude);
    if convs.is_empty() {
        return Err(model_err(&what, "no Conv node left to quantize"));
    }
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| model_err(&what, "no graph"))?;
    let acts: Vec<String> = {
        let mut seen = HashSet::new();
        convs
            .iter()
            .map(|&i| graph.node[i].input[0].clone())
            .filter(|x| seen.insert(x.clone()))
            .collect()
    };

    let images = calib_frames(&opts.calib, opts.frames)?;
    let side = input_side(graph).unwrap_or((640, 640));
    let letterboxed: Vec<Vec<f32>> = images
        .iter()
        .map(|img| {
            vigil_detect::preprocess::preprocess(img, side.0 as u32, side.1 as u32)
                .map(|p| p.tensor)
                .map_err(|e| ModelError::Frame(format!("calibration frame: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let calib: Vec<Vec<f32>> = letterboxed.iter().step_by(2).cloned().collect();
    let ranges = calibrate(&model, &acts, &calib, side, opts, &what)?;
    insert_qdq(&mut model, &convs, &ranges, &what)?;
    let quantized = model.encode_to_vec();

    let mut check: Vec<ImageBgr> = images.iter().skip(1).step_by(2).cloned().collect();
    if let Ok(extra) = load_images(&opts.check_images, input) {
        check.extend(extra);
    }
    let want = detections_of(&original, input, &check, opts.ort_library.clone())?;
    let got = detections_of(&quantized, output, &check, opts.ort_library.clone())?;
    let agreement = compare(&want, &got, 0.5);
    let ok = agreement.ratio() >= opts.min_agreement;
    let report = QuantizeReport {
        output: output.to_path_buf(),
        quantized_convs: convs.len(),
        float_convs,
        calib_frames: calib.len(),
        check_frames: check.len(),
        agreement,
        written: ok || opts.force,
    };
    if !report.written {
        return Err(ModelError::Check {
            what,
            detail: format!(
                "INT8 agreement with FP32 {agreement} is below {:.0} % (--force writes it anyway)",
                100.0 * opts.min_agreement
            ),
        });
    }
    write_atomic(output, &quantized)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_ignores_rare_outliers_minmax_does_not() {
        let mut v: Vec<f32> = (0..100_000).map(|i| (i % 100) as f32 / 100.0).collect();
        v[7] = 1000.0;
        let (lo, hi) = frame_range(&mut v.clone(), CalibMethod::MinMax);
        assert_eq!((lo, hi), (0.0, 1000.0));
        let (lo, hi) = frame_range(&mut v, CalibMethod::Percentile);
        assert!(lo >= 0.0 && hi < 1.0, "{lo} {hi}");
    }

    #[test]
    fn methods_parse_and_entropy_says_it_is_missing() {
        assert_eq!("minmax".parse::<CalibMethod>(), Ok(CalibMethod::MinMax));
        assert!("entropy"
            .parse::<CalibMethod>()
            .unwrap_err()
            .to_string()
            .contains("not implemented"));
    }
}
