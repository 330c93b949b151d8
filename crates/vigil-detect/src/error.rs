/// Everything that can go wrong between a file on disk and detections.
///
/// Variants carry a message that already names the file or field at fault,
/// because the CLI prints them as one `error:` line.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// ONNX Runtime could not be loaded or refused a request.
    #[error("{0}")]
    Runtime(String),
    /// The model file is unreadable or not a YOLO detection export.
    #[error("{0}")]
    Model(String),
    /// An input image could not be read or decoded.
    #[error("{0}")]
    Image(String),
    /// Inference failed at run time.
    #[error("inference failed: {0}")]
    Inference(String),
}
