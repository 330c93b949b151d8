use std::path::PathBuf;

use clap::Subcommand;
use vigil_model::{convert_fp16, prepare, ConvertOptions, PrepareOptions};

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
    }
}
