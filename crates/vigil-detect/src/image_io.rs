//! Still-image decoding into [`ImageBgr`] (JPEG, PNG, BMP, WebP, …).
//!
//! OpenCV's codecs are used because they are what the Ultralytics reference
//! decodes with, so pixels — and therefore detections — match it.

use std::path::Path;

use opencv::core::{Mat, Vector};
use opencv::prelude::*;
use vigil_core::ImageBgr;

use crate::DetectError;

/// Decodes an encoded image held in memory (an upload, a file's bytes).
pub fn decode_image(bytes: &[u8], what: &str) -> Result<ImageBgr, DetectError> {
    if bytes.is_empty() {
        return Err(DetectError::Image(format!("{what}: file is empty")));
    }
    let buf = Vector::<u8>::from_slice(bytes);
    let mat = opencv::imgcodecs::imdecode(&buf, opencv::imgcodecs::IMREAD_COLOR)
        .map_err(|e| DetectError::Image(format!("{what}: cannot decode image: {}", e.message)))?;
    if mat.empty() {
        return Err(DetectError::Image(format!(
            "{what}: not a readable image (expected JPEG, PNG, BMP or WebP)"
        )));
    }
    mat_to_image(&mat).map_err(|e| DetectError::Image(format!("{what}: {e}")))
}

/// Reads and decodes an image file.
pub fn load_image(path: &Path) -> Result<ImageBgr, DetectError> {
    let bytes =
        std::fs::read(path).map_err(|e| DetectError::Image(format!("{}: {e}", path.display())))?;
    decode_image(&bytes, &path.display().to_string())
}

/// Copies an 8-bit, 3-channel OpenCV matrix into a plain [`ImageBgr`].
pub fn mat_to_image(mat: &Mat) -> Result<ImageBgr, String> {
    if mat.typ() != opencv::core::CV_8UC3 {
        return Err(format!(
            "unsupported pixel format (OpenCV type {})",
            mat.typ()
        ));
    }
    let (w, h) = (mat.cols() as u32, mat.rows() as u32);
    let data = if mat.is_continuous() {
        mat.data_bytes().map_err(|e| e.message.clone())?.to_vec()
    } else {
        let owned = mat.try_clone().map_err(|e| e.message.clone())?;
        owned.data_bytes().map_err(|e| e.message.clone())?.to_vec()
    };
    ImageBgr::new(w, h, data).map_err(|e| e.to_string())
}
