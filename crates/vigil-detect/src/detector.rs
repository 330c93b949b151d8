//! The ONNX Runtime session, model validation and batched inference.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use vigil_core::config::{auto_intra_threads, auto_sessions, Count, Device, ModelConfig};
use vigil_core::{Detection, ImageBgr};

use crate::postprocess::{decode, DecodeParams, NmsParams};
use crate::preprocess::{preprocess, Prepared};
use crate::runtime::{create_session, Backend, ResolvedDevice, SessionOptions};
use crate::{labels, DetectError};

/// How to build a [`Detector`]; mirrors `[model]` in the config.
#[derive(Debug, Clone)]
pub struct DetectorOptions {
    pub model_path: PathBuf,
    pub session: SessionOptions,
    /// Requested input size; must match a fixed-size model.
    pub imgsz: Option<u32>,
    pub decode: DecodeParams,
    pub labels_file: Option<PathBuf>,
}

/// Logical CPUs this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// `model.sessions` with `auto` resolved for the configured device (an
/// `auto` device counts as a CPU one, or as OpenVINO where `auto` takes it:
/// an Intel CPU with AMX-BF16; [`vigil_core::config::auto_sessions`]).
pub fn resolved_sessions(cfg: &ModelConfig) -> usize {
    let device = match cfg.device {
        Device::Auto => crate::runtime::auto_device_without_cuda(cfg.ort_library.as_deref()),
        d => d,
    };
    cfg.sessions
        .or_else(|| auto_sessions(device, available_cores()))
        .max(1)
}

impl DetectorOptions {
    /// Options for one of the [`resolved_sessions`] sessions the engine
    /// runs side by side: `intra_threads = "auto"` shares the cores among them.
    pub fn from_config(cfg: &ModelConfig) -> Self {
        Self::for_sessions(cfg, resolved_sessions(cfg))
    }

    /// Options for a detector that runs alone (`vigil detect`): `auto`
    /// threads are all the cores.
    pub fn single(cfg: &ModelConfig) -> Self {
        Self::for_sessions(cfg, 1)
    }

    /// Options for one of `sessions` detectors running side by side.
    pub fn for_sessions(cfg: &ModelConfig, sessions: usize) -> Self {
        let intra_threads = match cfg.intra_threads {
            Count::Auto => auto_intra_threads(available_cores(), sessions),
            Count::Fixed(n) => n,
        };
        Self {
            model_path: cfg.path.clone(),
            session: SessionOptions {
                device: cfg.device,
                precision: cfg.precision,
                intra_threads,
                intra_spinning: cfg.intra_spinning,
                ort_library: cfg.ort_library.clone(),
            },
            imgsz: cfg.imgsz,
            decode: DecodeParams {
                conf: cfg.conf,
                classes: cfg.classes.clone(),
                nms: NmsParams {
                    iou: cfg.iou,
                    max_det: cfg.max_det,
                },
            },
            labels_file: cfg.labels.clone(),
        }
    }
}

/// Time spent in one batch: the session call(s), and decoding + NMS.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchTiming {
    pub inference: Duration,
    pub postprocess: Duration,
}

/// What the loaded model looks like, after validation.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub input_name: String,
    pub output_name: String,
    pub width: u32,
    pub height: u32,
    /// `None` when the batch dimension is dynamic; `Some(b)` for a fixed export.
    pub fixed_batch: Option<usize>,
    pub num_classes: usize,
    pub labels: Vec<String>,
    pub device: ResolvedDevice,
    /// Device, precision, runtime and threads actually in use.
    pub backend: Backend,
}

/// A YOLO detector bound to one ONNX Runtime session.
///
/// `run` needs `&mut self` (ONNX Runtime sessions are not re-entrant in
/// `ort`), so the pipeline owns one detector on its inference thread and
/// feeds it batches from every stream.
pub struct Detector {
    session: Session,
    info: ModelInfo,
    decode: DecodeParams,
    logged_fixed_batch: bool,
}

fn dims(t: &ValueType) -> Option<Vec<i64>> {
    match t {
        ValueType::Tensor { ty, shape, .. } if *ty == ort::value::TensorElementType::Float32 => {
            Some(shape.iter().copied().collect())
        }
        _ => None,
    }
}

fn model_err(path: &Path, msg: impl std::fmt::Display) -> DetectError {
    DetectError::Model(format!("{}: {msg}", path.display()))
}

impl Detector {
    /// Loads and validates the model; fails with a message naming what is wrong.
    pub fn load(opts: &DetectorOptions) -> Result<Self, DetectError> {
        let path = &opts.model_path;
        let bytes = std::fs::read(path).map_err(|e| {
            model_err(
                path,
                format!("cannot read model: {e} (run `make setup` for the default model)"),
            )
        })?;
        Self::load_bytes(opts, &bytes)
    }

    /// [`Detector::load`] on model bytes already in memory (`opts.model_path`
    /// only names them in messages): for tools that check a converted model
    /// before writing it.
    pub fn load_bytes(opts: &DetectorOptions, bytes: &[u8]) -> Result<Self, DetectError> {
        let path = &opts.model_path;
        if bytes.is_empty() {
            return Err(model_err(path, "model file is empty"));
        }
        let (session, backend) = create_session(bytes, &opts.session).map_err(|e| match e {
            DetectError::Model(m) => model_err(path, format!("not a loadable ONNX model ({m})")),
            DetectError::Runtime(m) => DetectError::Runtime(format!("{}: {m}", path.display())),
            other => other,
        })?;
        let info = validate(&session, path, opts, backend)?;
        tracing::info!(
            model = %path.display(),
            device = %info.backend.device,
            precision = %info.backend.precision,
            backend = %info.backend.runtime,
            intra_threads = info.backend.intra_threads,
            reason = info.backend.reason.as_deref().unwrap_or("configured"),
            input = format!("{}x{}", info.width, info.height),
            classes = info.num_classes,
            batch = info.fixed_batch.map_or("dynamic".to_string(), |b| b.to_string()),
            "model loaded"
        );
        Ok(Self {
            session,
            info,
            decode: opts.decode.clone(),
            logged_fixed_batch: false,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Model input `(width, height)`; what [`crate::preprocess`] must produce.
    pub fn input_size(&self) -> (u32, u32) {
        (self.info.width, self.info.height)
    }

    pub fn decode_params(&self) -> &DecodeParams {
        &self.decode
    }

    /// Letterboxes and detects a batch of images in one session call (or one
    /// per frame for a fixed-batch model).
    pub fn detect(&mut self, images: &[&ImageBgr]) -> Result<Vec<Vec<Detection>>, DetectError> {
        let (w, h) = self.input_size();
        let prepared = images
            .iter()
            .map(|img| preprocess(img, w, h))
            .collect::<Result<Vec<_>, _>>()?;
        self.run_prepared(&prepared)
    }

    /// Runs already-letterboxed frames and decodes each frame's detections.
    pub fn run_prepared(
        &mut self,
        frames: &[Prepared],
    ) -> Result<Vec<Vec<Detection>>, DetectError> {
        self.run_prepared_timed(frames).map(|(r, _)| r)
    }

    /// [`Detector::run_prepared`] that also reports where the time went, for
    /// the pipeline's per-stage latency metrics.
    pub fn run_prepared_timed(
        &mut self,
        frames: &[Prepared],
    ) -> Result<(Vec<Vec<Detection>>, BatchTiming), DetectError> {
        let mut timing = BatchTiming::default();
        if frames.is_empty() {
            return Ok((Vec::new(), timing));
        }
        let per = 3 * self.info.width as usize * self.info.height as usize;
        let mut results = Vec::with_capacity(frames.len());
        let chunk = self.info.fixed_batch.unwrap_or(frames.len());
        if chunk < frames.len() && !self.logged_fixed_batch {
            tracing::info!(
                model = %self.info.path.display(),
                batch = chunk,
                "model has a fixed batch size; running one session call per {chunk} frame(s) \
                 (use `vigil model prepare` for a batch-dynamic copy)"
            );
            self.logged_fixed_batch = true;
        }
        let mut stacked = Vec::new();
        for group in frames.chunks(chunk) {
            if let Some(f) = group.iter().find(|f| f.tensor.len() != per) {
                return Err(DetectError::Inference(format!(
                    "prepared frame has {} values, model needs {per}",
                    f.tensor.len()
                )));
            }
            // A lone frame goes in as it is; a batch is stacked, and a fixed
            // batch larger than what we have is padded with blank frames.
            let input: &[f32] = if group.len() == 1 && chunk == 1 {
                &group[0].tensor
            } else {
                stacked.clear();
                for f in group {
                    stacked.extend_from_slice(&f.tensor);
                }
                stacked.resize(chunk * per, 0.0);
                &stacked
            };
            let t0 = Instant::now();
            let (decode_params, info) = (&self.decode, &self.info);
            let labels = &info.labels;
            let mut t1 = t0;
            with_output(&mut self.session, info, input, chunk, |shape, out| {
                t1 = Instant::now();
                let (nc, anchors) = (shape[1] - 4, shape[2]);
                let stride = (4 + nc) * anchors;
                for (i, f) in group.iter().enumerate() {
                    let one = &out[i * stride..(i + 1) * stride];
                    results.push(decode(
                        one,
                        nc,
                        anchors,
                        &f.letterbox,
                        decode_params,
                        labels,
                    ));
                }
            })?;
            timing.inference += t1 - t0;
            timing.postprocess += t1.elapsed();
        }
        Ok((results, timing))
    }

    /// One session call on a stacked NCHW batch; returns the output shape
    /// `[n, 4+nc, anchors]` and data. Exposed for benchmarks and model checks.
    pub fn run_raw(
        &mut self,
        input: &[f32],
        n: usize,
    ) -> Result<([usize; 3], Vec<f32>), DetectError> {
        let mut result = None;
        with_output(&mut self.session, &self.info, input, n, |shape, data| {
            result = Some((shape, data.to_vec()))
        })?;
        result.ok_or_else(|| DetectError::Inference("no output".into()))
    }

    /// Runs the session on a prepared input and only validates the output:
    /// the floor any pipeline is measured against (`bare-inference`).
    pub fn run_only(&mut self, input: &[f32], n: usize) -> Result<(), DetectError> {
        with_output(&mut self.session, &self.info, input, n, |_, _| ())
    }

    /// Runs one blank batch so the first real frame does not pay for lazy
    /// initialisation (what `/readyz` waits for).
    pub fn warm_up(&mut self) -> Result<(), DetectError> {
        let n = self.info.fixed_batch.unwrap_or(1);
        let per = 3 * self.info.width as usize * self.info.height as usize;
        self.run_raw(&vec![114.0 / 255.0; n * per], n).map(|_| ())
    }
}

/// Runs the session and lends the validated output to `f` without
/// copying it (the output of a batch of 4 is 11 MB).
fn with_output(
    session: &mut Session,
    info: &ModelInfo,
    input: &[f32],
    n: usize,
    f: impl FnOnce([usize; 3], &[f32]),
) -> Result<(), DetectError> {
    let shape = [n as i64, 3, info.height as i64, info.width as i64];
    let tensor = TensorRef::from_array_view((shape, input))
        .map_err(|e| DetectError::Inference(e.message().to_string()))?;
    let outputs = session
        .run(ort::inputs![info.input_name.as_str() => tensor])
        .map_err(|e| DetectError::Inference(e.message().to_string()))?;
    let (oshape, data) = outputs[0]
        .try_extract_tensor::<f32>()
        .map_err(|e| DetectError::Inference(e.message().to_string()))?;
    if oshape.len() != 3 || oshape[0] != n as i64 || oshape[1] != 4 + info.num_classes as i64 {
        return Err(DetectError::Inference(format!(
            "model output shape {:?} is not [{n}, {}, anchors]",
            &oshape[..],
            4 + info.num_classes
        )));
    }
    f(
        [oshape[0] as usize, oshape[1] as usize, oshape[2] as usize],
        data,
    );
    Ok(())
}

fn validate(
    session: &Session,
    path: &Path,
    opts: &DetectorOptions,
    backend: Backend,
) -> Result<ModelInfo, DetectError> {
    let [input] = session.inputs() else {
        return Err(model_err(
            path,
            format!(
                "expected one image input, model has {}",
                session.inputs().len()
            ),
        ));
    };
    let [output] = session.outputs() else {
        return Err(model_err(
            path,
            format!(
                "expected one output [N, 4+classes, anchors], model has {}",
                session.outputs().len()
            ),
        ));
    };
    let idims = dims(input.dtype())
        .filter(|d| d.len() == 4 && (d[1] == 3 || d[1] == -1))
        .ok_or_else(|| {
            model_err(
                path,
                format!(
                    "input {:?} must be a float32 tensor [N, 3, H, W], got {:?}",
                    input.name(),
                    input.dtype()
                ),
            )
        })?;
    let odims = dims(output.dtype()).filter(|d| d.len() == 3).ok_or_else(|| {
        model_err(
            path,
            format!(
                "output {:?} must be a float32 tensor [N, 4+classes, anchors] (a YOLOv8/11/12 detection head), got {:?}",
                output.name(),
                output.dtype()
            ),
        )
    })?;

    let meta = session.metadata().ok();
    let custom = |k: &str| meta.as_ref().and_then(|m| m.custom(k));
    let meta_names = custom("names").and_then(|n| labels::parse_names(&n));
    let nc = if odims[1] > 4 {
        (odims[1] - 4) as usize
    } else if odims[1] == -1 {
        meta_names
            .as_ref()
            .map(Vec::len)
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                model_err(
                    path,
                    "output class dimension is dynamic and the model has no `names` metadata",
                )
            })?
    } else {
        return Err(model_err(
            path,
            format!(
                "output dimension 1 is {}, expected 4 + number of classes",
                odims[1]
            ),
        ));
    };
    if idims[0] > 0 && odims[0] > 0 && idims[0] != odims[0] {
        return Err(model_err(
            path,
            format!(
                "input batch {} differs from output batch {}",
                idims[0], odims[0]
            ),
        ));
    }
    let fixed_batch = (idims[0] > 0).then_some(idims[0] as usize);

    let meta_imgsz = custom("imgsz").and_then(|s| {
        let v: Vec<u32> = s
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        (v.len() == 2).then(|| (v[1], v[0]))
    });
    let (width, height) = match (idims[3], idims[2]) {
        (w, h) if w > 0 && h > 0 => {
            if let Some(s) = opts.imgsz {
                if s as i64 != w || s as i64 != h {
                    return Err(model_err(
                        path,
                        format!(
                            "model input is fixed at {w}x{h}; imgsz {s} cannot be used with it"
                        ),
                    ));
                }
            }
            (w as u32, h as u32)
        }
        _ => opts
            .imgsz
            .map(|s| (s, s))
            .or(meta_imgsz)
            .unwrap_or((640, 640)),
    };

    let labels = match &opts.labels_file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                DetectError::Model(format!("{}: cannot read labels file: {e}", f.display()))
            })?;
            let l: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            if l.len() != nc {
                return Err(DetectError::Model(format!(
                    "{}: has {} labels but the model has {nc} classes",
                    f.display(),
                    l.len()
                )));
            }
            l
        }
        None => match meta_names {
            Some(n) if n.len() == nc => n,
            Some(n) => {
                return Err(model_err(
                    path,
                    format!(
                        "`names` metadata lists {} classes but the output has {nc}",
                        n.len()
                    ),
                ))
            }
            None if nc == labels::COCO80.len() => {
                labels::COCO80.iter().map(|s| s.to_string()).collect()
            }
            None => (0..nc).map(|i| format!("class{i}")).collect(),
        },
    };

    Ok(ModelInfo {
        path: path.to_path_buf(),
        input_name: input.name().to_string(),
        output_name: output.name().to_string(),
        width,
        height,
        fixed_batch,
        num_classes: nc,
        labels,
        device: backend.device,
        backend,
    })
}
