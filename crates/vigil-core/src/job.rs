//! What an uploaded-video job asks for. Shared by the API that accepts the
//! upload, whichever queue carries it (SQLite or NATS JetStream) and the
//! worker that runs it, so it is plain data here.

use serde::{Deserialize, Serialize};

/// A job's options (the upload's query string).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobParams {
    pub every: Option<u32>,
    pub fps: Option<f64>,
    pub conf: Option<f32>,
    pub track: bool,
}
