use std::path::PathBuf;

use clap::Subcommand;
use vigil_model::{
    convert_fp16, prepare, quantize, CalibMethod, ConvertOptions, PrepareOptions, QuantizeOptions,
};

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Rewrite a fixed-batch YOLO ONNX export to a dynamic batch.
    ///
    /// Frames from several streams can then share one inference call.
    /// OUTPUT is written only after ONNX Runtime confirms that a batch of
    /// different frames gives the original model's per-frame outputs.
    Prepare {
        /// The exported model (e.g. models/yolov12n.onnx).
        input: PathBuf,
        /// Where to write the batch-dynamic model.
        output: PathBuf,
    },
    /// Write a reduced-precision copy of a model (for GPUs: `--fp16`).
    ///
    /// Weights and arithmetic become float16; the input and output stay
    /// float32, so vigil (and any other caller) feeds it as before. OUTPUT is
    /// written only when the copy's detections agree with the original's on
    /// the check images (same class, IoU >= 0.9, both directions) at least
    /// --min-agreement of the time. On a CPU use `model.device = "openvino"`
    /// with `model.precision = "bf16"` instead: it needs no converted file.
    Convert {
        /// The FP32 model (e.g. models/yolov12n-dyn.onnx).
        input: PathBuf,
        /// Where to write the converted model.
        output: PathBuf,
        /// Convert to float16 (the only conversion so far; required).
        #[arg(long, required = true)]
        fp16: bool,
        /// Images to check agreement on [default: data/photos/].
        #[arg(long = "check", value_name = "IMAGE")]
        check: Vec<PathBuf>,
        /// Least agreement with the original, 0..1.
        #[arg(long, default_value_t = 0.98, value_name = "F")]
        min_agreement: f64,
        /// Write the model even when it agrees less than --min-agreement.
        #[arg(long)]
        force: bool,
    },
    /// Write a static INT8 (QDQ) copy of a model, calibrated on real frames.
    ///
    /// Convolutions outside the detection head get int8 weights (symmetric,
    /// per output channel) and uint8 activations whose ranges come from the
    /// calibration frames, letterboxed as at inference. Half of the frames
    /// calibrate, the other half (plus the sample photos) check: OUTPUT is
    /// written only when the INT8 model's detections agree with the FP32
    /// original's (same class, IoU >= 0.5, both directions) at least
    /// --min-agreement of the time, unless --force. Run it with
    /// `model.precision = "int8"` (OpenVINO runs the convolutions in INT8).
    Quantize {
        /// The FP32 model (e.g. models/yolov12n-dyn.onnx).
        input: PathBuf,
        /// Where to write the INT8 model.
        output: PathBuf,
        /// Images and videos to calibrate on (frames from your cameras).
        #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
        calib: Vec<PathBuf>,
        /// Frames to take in all (half calibrate, half check).
        #[arg(long, default_value_t = 64, value_name = "N")]
        frames: usize,
        /// minmax or percentile (0.01 %/99.99 %, averaged over frames).
        #[arg(long, default_value = "percentile", value_name = "METHOD")]
        method: CalibMethod,
        /// Node-name prefixes to keep in float besides the head (e.g. /model.0/).
        #[arg(long, value_name = "PREFIX")]
        exclude: Vec<String>,
        /// Least agreement with the original, 0..1.
        #[arg(long, default_value_t = 0.95, value_name = "F")]
        min_agreement: f64,
        /// Write the model even when it agrees less than --min-agreement.
        #[arg(long)]
        force: bool,
    },
}

/// Runs a `vigil model …` command; prints a one-line summary on stderr.
pub fn run(cmd: &ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Prepare { input, output } => {
            let report = prepare(input, output, &PrepareOptions::default())?;
            eprintln!("{}", report.summary());
            Ok(())
        }
        ModelCommand::Convert {
            input,
            output,
            fp16: _,
            check,
            min_agreement,
            force,
        } => {
            if !(0.0..=1.0).contains(min_agreement) {
                anyhow::bail!("--min-agreement must be within 0..1, got {min_agreement}");
            }
            let report = convert_fp16(
                input,
                output,
                &ConvertOptions {
                    min_agreement: *min_agreement,
                    force: *force,
                    check_images: check.clone(),
                    ort_library: None,
                },
            )?;
            eprintln!("{}", report.summary());
            Ok(())
        }
        ModelCommand::Quantize {
            input,
            output,
            calib,
            frames,
            method,
            exclude,
            min_agreement,
            force,
        } => {
            let report = quantize(
                input,
                output,
                &QuantizeOptions {
                    calib: calib.clone(),
                    frames: *frames,
                    method: *method,
                    exclude: exclude.clone(),
                    min_agreement: *min_agreement,
                    force: *force,
                    check_images: Vec::new(),
                    ort_library: None,
                },
            )?;
            eprintln!("{}", report.summary());
            Ok(())
        }
    }
}
