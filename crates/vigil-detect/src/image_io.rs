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
    let mat = imdecode_into(bytes, what, &mut Mat::default())?;
    mat_to_image(&mat).map_err(|e| DetectError::Image(format!("{what}: {e}")))
}

/// OpenCV's decode into `dst` (kept when it already has the decoded size
/// and type, else reallocated), refusing what decodes to nothing.
fn imdecode_into(
    bytes: &[u8],
    what: &str,
    dst: &mut impl opencv::core::MatTrait,
) -> Result<Mat, DetectError> {
    let buf = Vector::<u8>::from_slice(bytes);
    let mat = opencv::imgcodecs::imdecode_to(&buf, opencv::imgcodecs::IMREAD_COLOR, dst)
        .map_err(|e| DetectError::Image(format!("{what}: cannot decode image: {}", e.message)))?;
    if mat.empty() {
        return Err(DetectError::Image(format!(
            "{what}: not a readable image (expected JPEG, PNG, BMP or WebP)"
        )));
    }
    Ok(mat)
}

/// [`decode_image`] straight into the [`ImageBgr`]'s buffer when the header
/// said `w`x`h`: OpenCV keeps a destination of the right size and type, so
/// the 1.3 MB copy out of a temporary `Mat` (and its page faults) is saved on
/// every `/v1/detect` request. An image that decodes to another size (an
/// EXIF rotation) lands in OpenCV's own buffer and is copied as before.
fn decode_sized(bytes: &[u8], what: &str, w: u32, h: u32) -> Result<ImageBgr, DetectError> {
    let len = (w as usize)
        .checked_mul(h as usize)
        .and_then(|p| p.checked_mul(3))
        .ok_or_else(|| DetectError::Image(format!("{what}: {w}x{h} is too large")))?;
    let mut data = vec![0u8; len];
    let ptr = data.as_ptr();
    let moved = {
        let mut dst =
            Mat::new_rows_cols_with_bytes_mut::<opencv::core::Vec3b>(h as i32, w as i32, &mut data)
                .map_err(|e| {
                    DetectError::Image(format!("{what}: cannot decode image: {}", e.message))
                })?;
        let mat = imdecode_into(bytes, what, &mut dst)?;
        let in_place = std::ptr::eq(mat.data(), ptr)
            && mat.cols() == w as i32
            && mat.rows() == h as i32
            && mat.typ() == opencv::core::CV_8UC3;
        if in_place {
            None
        } else {
            Some(mat_to_image(&mat).map_err(|e| DetectError::Image(format!("{what}: {e}")))?)
        }
    };
    match moved {
        Some(img) => Ok(img),
        None => ImageBgr::new(w, h, data).map_err(|e| DetectError::Image(format!("{what}: {e}"))),
    }
}

/// Decodes an image from an untrusted client: only JPEG, PNG, BMP or WebP,
/// and only when its header declares at most `max_pixels`, checked before
/// anything is decompressed (a 261 KB PNG can declare 16384×16384 and take
/// 1.5 GB once decoded).
pub fn decode_untrusted_image(
    bytes: &[u8],
    what: &str,
    max_pixels: u64,
) -> Result<ImageBgr, DetectError> {
    if bytes.is_empty() {
        return Err(DetectError::Image(format!("{what}: the body is empty")));
    }
    let (w, h) = image_dimensions(bytes).ok_or_else(|| {
        DetectError::Image(format!(
            "{what}: not a readable image (expected JPEG, PNG, BMP or WebP; other formats and damaged headers are refused)"
        ))
    })?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 || pixels > max_pixels {
        return Err(DetectError::Image(format!(
            "{what}: the image is {w}x{h} ({pixels} pixels); at most {max_pixels} are accepted (server.max_pixels)"
        )));
    }
    let img = decode_sized(bytes, what, w, h)?;
    // The header is what was checked; a decoder that disagrees is refused.
    if img.width() != w || img.height() != h {
        return Err(DetectError::Image(format!(
            "{what}: the header says {w}x{h} but the image decodes to {}x{}",
            img.width(),
            img.height()
        )));
    }
    Ok(img)
}

/// Width and height from the header of a JPEG, PNG, BMP or WebP image;
/// `None` for any other format or a header that does not parse.
pub fn image_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let be32 = |i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    };
    let le32 = |i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let be16 = |i: usize| b.get(i..i + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
    let le16 = |i: usize| b.get(i..i + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    if b.starts_with(b"\x89PNG\r\n\x1a\n") && b.get(12..16) == Some(b"IHDR") {
        return Some((be32(16)?, be32(20)?));
    }
    if b.starts_with(b"BM") {
        let w = le32(18)? as i32;
        let h = le32(22)? as i32;
        return (w > 0 && h != 0).then(|| (w.unsigned_abs(), h.unsigned_abs()));
    }
    if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        return match b.get(12..16)? {
            b"VP8 " => Some((u32::from(le16(26)? & 0x3fff), u32::from(le16(28)? & 0x3fff))),
            b"VP8L" => {
                let v = le32(21)?;
                Some(((v & 0x3fff) + 1, ((v >> 14) & 0x3fff) + 1))
            }
            b"VP8X" => {
                let w = u32::from_le_bytes([*b.get(24)?, *b.get(25)?, *b.get(26)?, 0]) + 1;
                let h = u32::from_le_bytes([*b.get(27)?, *b.get(28)?, *b.get(29)?, 0]) + 1;
                Some((w, h))
            }
            _ => None,
        };
    }
    if b.starts_with(&[0xFF, 0xD8]) {
        // Walk the segments to the first start-of-frame marker.
        let mut i = 2;
        while i + 4 <= b.len() {
            if b[i] != 0xFF {
                return None;
            }
            let marker = b[i + 1];
            if marker == 0xFF {
                i += 1;
                continue;
            }
            let len = usize::from(be16(i + 2)?);
            let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            if is_sof {
                let h = u32::from(be16(i + 5)?);
                let w = u32::from(be16(i + 7)?);
                return Some((w, h));
            }
            if len < 2 {
                return None;
            }
            i += 2 + len;
        }
        return None;
    }
    None
}

/// Reads and decodes an image file.
pub fn load_image(path: &Path) -> Result<ImageBgr, DetectError> {
    let bytes =
        std::fs::read(path).map_err(|e| DetectError::Image(format!("{}: {e}", path.display())))?;
    decode_image(&bytes, &path.display().to_string())
}

/// Copies an 8-bit, 3-channel OpenCV matrix into a plain [`ImageBgr`].
/// Errors are [`DetectError::Image`] without a file name (callers add it).
pub fn mat_to_image(mat: &Mat) -> Result<ImageBgr, DetectError> {
    let image = |m: String| DetectError::Image(m);
    if mat.typ() != opencv::core::CV_8UC3 {
        return Err(image(format!(
            "unsupported pixel format (OpenCV type {})",
            mat.typ()
        )));
    }
    let (w, h) = (mat.cols() as u32, mat.rows() as u32);
    let cv = |e: opencv::Error| image(e.message);
    let data = if mat.is_continuous() {
        mat.data_bytes().map_err(cv)?.to_vec()
    } else {
        let owned = mat.try_clone().map_err(cv)?;
        owned.data_bytes().map_err(cv)?.to_vec()
    };
    ImageBgr::new(w, h, data).map_err(|e| image(e.to_string()))
}
