use std::path::PathBuf;

use clap::Subcommand;
use vigil_model::{prepare, PrepareOptions};

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
}

/// Runs a `vigil model …` command; prints a one-line summary on stderr.
pub fn run(cmd: &ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Prepare { input, output } => {
            let report = prepare(input, output, &PrepareOptions::default())?;
            eprintln!("{}", report.summary());
            Ok(())
        }
    }
}
