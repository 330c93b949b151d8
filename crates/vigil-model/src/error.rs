use std::path::PathBuf;

/// Everything that can stop `vigil model prepare`.
///
/// Each message names the file at fault and says what is wrong with it,
/// because the CLI prints it as a single `error:` line. Underlying errors are
/// folded into the message (not chained as `source`) so that line does not
/// repeat them.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The input could not be read (missing, a directory, no permission).
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The bytes are not an ONNX `ModelProto`.
    #[error("{what} is not an ONNX model: {reason}")]
    NotOnnx { what: String, reason: String },
    /// Valid ONNX, but not shaped like a YOLO export (one 4-D float input).
    #[error("{what} is not a YOLO-style model: {reason}")]
    NotYolo { what: String, reason: String },
    /// ONNX Runtime could not be loaded, or refused the model or a run.
    #[error("{what}: {message}")]
    Runtime { what: String, message: String },
    /// The rewritten model does not reproduce the original per frame; the
    /// output was not written.
    #[error("{what}: batch check failed, nothing written: {detail}")]
    Check { what: String, detail: String },
    /// A check frame could not be loaded.
    #[error("{0}")]
    Frame(String),
    /// The output (or its temporary file) could not be written.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// [`PrepareOptions`](crate::PrepareOptions) out of range.
    #[error("invalid option: {0}")]
    Options(String),
}
