//! `prepare`: rewrite, then prove on ONNX Runtime that the rewrite is right
//! before anything is written.
//!
//! The proof is behavioural rather than structural: N different frames run
//! as one batch through the rewritten model must give the same outputs as
//! each frame run alone through the *original* model. That catches a wrong
//! `Reshape` rewrite (frames mixed or misaligned), a rewrite that missed a
//! batch-carrying constant (ORT refuses batch N), and parsing losses that
//! change semantics.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use vigil_core::config::Device;
use vigil_detect::runtime::{create_session, SessionOptions};

use crate::rewrite::{self, RewriteStats};
use crate::ModelError;

/// Knobs for [`prepare`]; the defaults are what `vigil model prepare` uses.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Frames in the check batch. At least 2 (a batch of 1 proves nothing),
    /// and different from the export's fixed batch.
    pub check_batch: usize,
    /// Largest allowed absolute difference between batched and per-frame
    /// outputs. Outputs are box coordinates in pixels and class scores;
    /// batching changes only float summation order, which stays far below
    /// this, while a wrong rewrite is off by whole pixels.
    pub tolerance: f32,
    /// `libonnxruntime.so` to load; `None` uses the usual discovery
    /// (`ORT_DYLIB_PATH`, then `third_party/onnxruntime/`).
    pub ort_library: Option<PathBuf>,
    /// Images to build the check batch from. Empty: the `data/photos/`
    /// samples found above the model or the working directory, topped up
    /// with deterministic synthetic frames when there are too few.
    pub check_images: Vec<PathBuf>,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            check_batch: 3,
            tolerance: 1e-3,
            ort_library: None,
            check_images: Vec::new(),
        }
    }
}

/// What [`prepare`] did and how well the result matched.
#[derive(Debug, Clone)]
pub struct PrepareReport {
    /// The file written.
    pub output: PathBuf,
    /// What the rewrite changed (`already_dynamic` when it changed nothing).
    pub stats: RewriteStats,
    /// Frames in the check batch.
    pub check_batch: usize,
    /// Largest absolute difference between the batched run and the
    /// per-frame runs of the original, over all outputs.
    pub max_abs_diff: f32,
    /// Where each check frame came from (a path, or `synthetic #i`).
    pub frames: Vec<String>,
    /// Wall time of the whole preparation.
    pub elapsed: Duration,
}

impl PrepareReport {
    /// The one-line summary the CLI prints.
    pub fn summary(&self) -> String {
        let check = if self.max_abs_diff == 0.0 {
            format!("batch {} matches batch 1 exactly", self.check_batch)
        } else {
            format!(
                "batch {} matches batch 1 within {:.1e}",
                self.check_batch, self.max_abs_diff
            )
        };
        if self.stats.already_dynamic {
            format!(
                "prepared {}: input already has a dynamic batch, copied as-is; {check}",
                self.output.display()
            )
        } else {
            format!(
                "prepared {}: {} Reshape target{} rewritten, {check}",
                self.output.display(),
                self.stats.reshape_targets_rewritten,
                if self.stats.reshape_targets_rewritten == 1 {
                    ""
                } else {
                    "s"
                }
            )
        }
    }
}

/// Rewrites the fixed-batch ONNX model at `input` to a dynamic batch and
/// writes it to `output`, but only after ONNX Runtime confirms that a batch
/// of `opts.check_batch` different frames gives the original's per-frame
/// outputs. A model that already has a dynamic batch is checked the same way
/// and copied. `output` is written atomically (temporary file + rename), so
/// any failure leaves it untouched.
pub fn prepare(
    input: &Path,
    output: &Path,
    opts: &PrepareOptions,
) -> Result<PrepareReport, ModelError> {
    let start = Instant::now();
    if opts.check_batch < 2 {
        return Err(ModelError::Options(format!(
            "check_batch must be at least 2, got {}",
            opts.check_batch
        )));
    }
    if !(opts.tolerance.is_finite() && opts.tolerance > 0.0) {
        return Err(ModelError::Options(format!(
            "tolerance must be a positive number, got {}",
            opts.tolerance
        )));
    }
    let what = input.display().to_string();
    let original = std::fs::read(input).map_err(|error| ModelError::Read {
        path: input.to_path_buf(),
        error,
    })?;
    let (rewritten, stats) = rewrite::rewrite(&original, &what)?;
    if !stats.lossless_roundtrip {
        tracing::warn!(
            model = %what,
            "re-encoding the unmodified model does not reproduce its bytes \
             (non-canonical encoding or unknown fields); the numeric check still applies"
        );
    }
    for w in &stats.warnings {
        tracing::warn!(model = %what, "{w}");
    }

    let session_opts = SessionOptions {
        device: Device::Cpu,
        precision: vigil_core::config::Precision::Fp32,
        intra_threads: 0,
        intra_spinning: true,
        ort_library: opts.ort_library.clone(),
    };
    let mut reference = Runner::new(&original, &what, &session_opts)?;
    let fixed = reference.fixed_batch.unwrap_or(1);
    // The check batch must be a multiple of the reference's fixed batch
    // (the original can only run whole batches) and differ from it.
    let mut n = opts.check_batch.div_ceil(fixed) * fixed;
    if n == fixed {
        n += fixed;
    }
    let (frames, frame_names) = check_frames(input, opts, n, reference.height, reference.width)?;

    // Per-frame reference outputs from the original model.
    let per = frames[0].len();
    let mut expected: Vec<Vec<Vec<f32>>> = vec![Vec::new(); reference.output_count()];
    for chunk in frames.chunks(fixed) {
        let batch: Vec<f32> = chunk.iter().flatten().copied().collect();
        let outs = reference.run(&batch, chunk.len(), &what)?;
        for (o, (_, data)) in outs.into_iter().enumerate() {
            if data.is_empty() || data.len() % chunk.len() != 0 {
                return Err(ModelError::NotYolo {
                    what: what.clone(),
                    reason: format!(
                        "output {:?} ({} values) does not split into {} frames",
                        reference.output_names[o],
                        data.len(),
                        chunk.len()
                    ),
                });
            }
            let each = data.len() / chunk.len();
            expected[o].extend(data.chunks(each).map(<[f32]>::to_vec));
        }
    }
    drop(reference);

    let out_what = format!("{what} (batch-dynamic rewrite)");
    let check_fail = |detail: String| ModelError::Check {
        what: what.clone(),
        detail: with_warnings(detail, &stats.warnings),
    };
    let mut dynamic = Runner::new(&rewritten, &out_what, &session_opts)
        .map_err(|e| check_fail(format!("ONNX Runtime rejects the rewritten model: {e}")))?;
    if dynamic.fixed_batch.is_some() {
        return Err(check_fail(format!(
            "ONNX Runtime still sees a fixed batch on input {:?}",
            dynamic.input_name
        )));
    }
    let batch: Vec<f32> = frames.iter().flatten().copied().collect();
    debug_assert_eq!(batch.len(), n * per);
    let outs = dynamic
        .run(&batch, n, &out_what)
        .map_err(|e| check_fail(format!("batch {n} does not run: {e}")))?;
    let mut max_abs_diff = 0f32;
    for (o, (shape, data)) in outs.iter().enumerate() {
        let name = &dynamic.output_names[o];
        // Frames are contiguous along dim 0, also when it is a multiple of
        // the batch (`[4·N, …]` after an area-attention reshape).
        if data.len() != n * expected[o][0].len() {
            return Err(check_fail(format!(
                "output {name:?} has shape {shape:?} at batch {n}, expected {n} frames of {} values",
                expected[o][0].len()
            )));
        }
        let each = data.len() / n;
        for (f, got) in data.chunks(each).enumerate() {
            let d = max_diff(got, &expected[o][f]);
            max_abs_diff = max_abs_diff.max(d);
            if d.is_nan() || d >= opts.tolerance {
                return Err(check_fail(format!(
                    "output {name:?} of frame {f} differs from the original by {d:.3e} at batch \
                     {n} (tolerance {:.1e})",
                    opts.tolerance
                )));
            }
        }
    }
    drop(dynamic);

    write_atomic(output, &rewritten)?;
    Ok(PrepareReport {
        output: output.to_path_buf(),
        stats,
        check_batch: n,
        max_abs_diff,
        frames: frame_names,
        elapsed: start.elapsed(),
    })
}

fn with_warnings(detail: String, warnings: &[String]) -> String {
    if warnings.is_empty() {
        detail
    } else {
        format!("{detail} (rewrite warnings: {})", warnings.join("; "))
    }
}

/// Largest absolute difference; NaN if either side has a NaN where the
/// other does not, so a broken model cannot pass by producing NaNs.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    let mut m = 0f32;
    for (x, y) in a.iter().zip(b) {
        if x.is_nan() != y.is_nan() {
            return f32::NAN;
        }
        let d = (x - y).abs();
        if d > m {
            m = d;
        }
    }
    m
}

/// One model output copied out of ORT: (shape, data).
type Output = (Vec<i64>, Vec<f32>);

/// One ORT session plus what the check needs to know about it.
struct Runner {
    session: Session,
    input_name: String,
    output_names: Vec<String>,
    /// `Some(b)` when the input's batch dimension is fixed.
    fixed_batch: Option<usize>,
    height: usize,
    width: usize,
}

impl Runner {
    fn new(bytes: &[u8], what: &str, opts: &SessionOptions) -> Result<Self, ModelError> {
        let (session, _) = create_session(bytes, opts).map_err(|e| ModelError::Runtime {
            what: what.to_string(),
            message: e.to_string(),
        })?;
        let not_yolo = |reason: String| ModelError::NotYolo {
            what: what.to_string(),
            reason,
        };
        let [input] = session.inputs() else {
            return Err(not_yolo(format!(
                "expected one image input, ONNX Runtime sees {}",
                session.inputs().len()
            )));
        };
        let dims = match input.dtype() {
            ValueType::Tensor { ty, shape, .. }
                if *ty == ort::value::TensorElementType::Float32 && shape.len() == 4 =>
            {
                shape.to_vec()
            }
            other => {
                return Err(not_yolo(format!(
                    "input {:?} must be a float32 [N, 3, H, W] tensor, got {other:?}",
                    input.name()
                )))
            }
        };
        let (Ok(height), Ok(width)) = (usize::try_from(dims[2]), usize::try_from(dims[3])) else {
            return Err(not_yolo(format!(
                "input {:?} has a dynamic image size {dims:?}; only the batch may be dynamic",
                input.name()
            )));
        };
        if dims[1] != 3 || height == 0 || width == 0 {
            return Err(not_yolo(format!(
                "input {:?} must be [N, 3, H, W], got {dims:?}",
                input.name()
            )));
        }
        Ok(Self {
            input_name: input.name().to_string(),
            output_names: session
                .outputs()
                .iter()
                .map(|o| o.name().to_string())
                .collect(),
            fixed_batch: usize::try_from(dims[0]).ok().filter(|&b| b > 0),
            height,
            width,
            session,
        })
    }

    fn output_count(&self) -> usize {
        self.output_names.len()
    }

    /// Runs `n` stacked frames; returns every output as (shape, data).
    fn run(&mut self, batch: &[f32], n: usize, what: &str) -> Result<Vec<Output>, ModelError> {
        let err = |m: &str| ModelError::Runtime {
            what: what.to_string(),
            message: format!("inference at batch {n} failed: {m}"),
        };
        let shape = [n, 3, self.height, self.width];
        let tensor = TensorRef::from_array_view((shape, batch)).map_err(|e| err(e.message()))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| err(e.message()))?;
        let mut res = Vec::with_capacity(self.output_names.len());
        for name in &self.output_names {
            let value = outputs
                .get(name.as_str())
                .ok_or_else(|| err(&format!("output {name:?} is missing")))?;
            let (shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| err(&format!("output {name:?}: {}", e.message())))?;
            res.push((shape.to_vec(), data.to_vec()));
        }
        Ok(res)
    }
}

/// Builds `n` different letterboxed frames for the check, with a label each.
fn check_frames(
    model: &Path,
    opts: &PrepareOptions,
    n: usize,
    height: usize,
    width: usize,
) -> Result<(Vec<Vec<f32>>, Vec<String>), ModelError> {
    let paths = if opts.check_images.is_empty() {
        discover_photos(model)
    } else {
        opts.check_images.clone()
    };
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(ModelError::Frame(format!(
                "image size {width}x{height} is too large"
            )))
        }
    };
    let mut frames = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    for p in paths.iter().take(n) {
        let img = vigil_detect::image_io::load_image(p)
            .map_err(|e| ModelError::Frame(format!("check image: {e}")))?;
        let prepared = vigil_detect::preprocess::preprocess(&img, w, h)
            .map_err(|e| ModelError::Frame(format!("check image {}: {e}", p.display())))?;
        frames.push(prepared.tensor);
        names.push(p.display().to_string());
    }
    let mut i = 0;
    while frames.len() < n {
        frames.push(synthetic_frame(i, height, width));
        names.push(format!("synthetic #{i}"));
        i += 1;
    }
    Ok((frames, names))
}

/// The sample photos `make setup` downloads, if they can be found from the
/// model's folder or the working directory; empty otherwise.
pub(crate) fn discover_photos(model: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(abs) = std::path::absolute(model) {
        roots.extend(abs.ancestors().skip(1).map(Path::to_path_buf));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    for root in roots {
        let dir = root.join("data").join("photos");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
                })
            })
            .collect();
        if !found.is_empty() {
            found.sort();
            return found;
        }
    }
    Vec::new()
}

/// A deterministic, structured frame (gradient background plus coloured
/// rectangles, different per `seed`) for when no photos are available.
/// Frames must differ so that mixing frames inside a batch shows up.
fn synthetic_frame(seed: usize, height: usize, width: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (seed as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let plane = height * width;
    let mut t = vec![0f32; 3 * plane];
    let tilt: [f32; 3] = [next(), next(), next()];
    for c in 0..3 {
        for y in 0..height {
            for x in 0..width {
                let g = (x as f32 / width as f32) * tilt[c]
                    + (y as f32 / height as f32) * (1.0 - tilt[c]);
                t[c * plane + y * width + x] = 0.2 + 0.6 * g;
            }
        }
    }
    for _ in 0..6 {
        let (x0, y0) = (
            (next() * width as f32) as usize,
            (next() * height as f32) as usize,
        );
        let (rw, rh) = (
            ((0.1 + 0.3 * next()) * width as f32) as usize,
            ((0.1 + 0.3 * next()) * height as f32) as usize,
        );
        let colour = [next(), next(), next()];
        for (c, v) in colour.iter().enumerate() {
            for y in y0..(y0 + rh).min(height) {
                for x in x0..(x0 + rw).min(width) {
                    t[c * plane + y * width + x] = *v;
                }
            }
        }
    }
    t
}

/// Writes next to `path` then renames, so readers never see a partial
/// model and a failure leaves no file at `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .ok_or_else(|| ModelError::Write {
            path: path.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        })?;
    let tmp = dir.join(format!(".{file_name}.{}.part", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        vigil_core::fsutil::sync_dir_of(path)
    };
    write().map_err(|error| {
        let _ = std::fs::remove_file(&tmp);
        ModelError::Write {
            path: path.to_path_buf(),
            error,
        }
    })
}
