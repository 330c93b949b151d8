//! Still-image decoding into [`ImageBgr`] (JPEG, PNG, BMP, WebP, …).
//!
//! OpenCV's codecs are used because they are what the Ultralytics reference
//! decodes with, so pixels — and therefore detections — match it.

use std::path::Path;

use opencv::core::{Mat, Vector};
use opencv::prelude::*;
use vigil_core::{BBox, Detection, ImageBgr};

use crate::DetectError;

/// Decodes an encoded image held in memory (an upload, a file's bytes).
pub fn decode_image(bytes: &[u8], what: &str) -> Result<ImageBgr, DetectError> {
    if bytes.is_empty() {
        return Err(DetectError::Image(format!("{what}: file is empty")));
    }
    let mat = imdecode_into(
        bytes,
        what,
        opencv::imgcodecs::IMREAD_COLOR,
        &mut Mat::default(),
    )?;
    mat_to_image(&mat).map_err(|e| DetectError::Image(format!("{what}: {e}")))
}

/// OpenCV's decode into `dst` (kept when it already has the decoded size
/// and type, else reallocated), refusing what decodes to nothing.
fn imdecode_into(
    bytes: &[u8],
    what: &str,
    flags: i32,
    dst: &mut impl opencv::core::MatTrait,
) -> Result<Mat, DetectError> {
    let buf = Vector::<u8>::from_slice(bytes);
    let mat = opencv::imgcodecs::imdecode_to(&buf, flags, dst)
        .map_err(|e| DetectError::Image(format!("{what}: cannot decode image: {}", e.message)))?;
    if mat.empty() {
        return Err(DetectError::Image(format!(
            "{what}: not a readable image (expected JPEG, PNG, BMP or WebP)"
        )));
    }
    Ok(mat)
}

/// [`decode_image`] straight into the [`ImageBgr`]'s buffer when the header
/// said `w`x`h` (after any `flags` scale-down): OpenCV keeps a destination
/// of the right size and type, so the 1.3 MB copy out of a temporary `Mat`
/// (and its page faults) is saved on every `/v1/detect` request. An image
/// that decodes to another size (an EXIF rotation) lands in OpenCV's own
/// buffer and is copied as before.
fn decode_sized(
    bytes: &[u8],
    what: &str,
    (w, h): (u32, u32),
    flags: i32,
) -> Result<ImageBgr, DetectError> {
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
        let mat = imdecode_into(bytes, what, flags, &mut dst)?;
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

/// An untrusted image decoded for the model: `image` holds the pixels the
/// model is given, `width`x`height` is the picture the client sent (after
/// its EXIF orientation). They differ when a large JPEG was decoded at 1/2,
/// 1/4 or 1/8 of its size (see [`decode_upload`]).
#[derive(Debug)]
pub struct Upload {
    pub image: ImageBgr,
    pub width: u32,
    pub height: u32,
}

impl Upload {
    /// How boxes found on [`Upload::image`] map onto the client's picture;
    /// taken before the image is handed to the detector.
    pub fn to_client(&self) -> ToClient {
        ToClient {
            sx: self.width as f32 / self.image.width() as f32,
            sy: self.height as f32 / self.image.height() as f32,
            width: self.width as f32,
            height: self.height as f32,
        }
    }
}

/// Maps boxes from a scaled-down decode onto the picture the client sent,
/// so that the scale-down is invisible in the answer.
#[derive(Debug, Clone, Copy)]
pub struct ToClient {
    sx: f32,
    sy: f32,
    width: f32,
    height: f32,
}

impl ToClient {
    pub fn apply(&self, dets: &mut [Detection]) {
        if self.sx == 1.0 && self.sy == 1.0 {
            return;
        }
        for d in dets {
            let b = d.bbox;
            d.bbox = BBox::new(
                b.x1 * self.sx,
                b.y1 * self.sy,
                b.x2 * self.sx,
                b.y2 * self.sy,
            )
            .clip(self.width, self.height);
        }
    }
}

/// The largest scale-down libjpeg can decode at (1/1, 1/2, 1/4 or 1/8)
/// after which a `w`x`h` picture still covers the model's `input` at the
/// letterbox's gain, taken for either orientation (EXIF may turn it):
/// decoding pixels the letterbox then throws away costs ~15 ms on a
/// 1920x1440 photo and ~75 ms on a 12 MP one, against ~85 ms of inference.
pub fn jpeg_scale(w: u32, h: u32, input: (u32, u32)) -> u32 {
    let gain =
        |a: u32, b: u32| (f64::from(input.0) / f64::from(a)).min(f64::from(input.1) / f64::from(b));
    let g = gain(w, h).max(gain(h, w));
    [8, 4, 2]
        .into_iter()
        .find(|&s| f64::from(s) * g <= 1.0)
        .unwrap_or(1)
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
    decode_upload(bytes, what, max_pixels, None).map(|u| u.image)
}

/// [`decode_untrusted_image`] for a model whose input is `input`: a JPEG
/// larger than the model needs is decoded by libjpeg at the scale
/// [`jpeg_scale`] picks (its DCT scaling averages the pixels it drops, where
/// the letterbox's bilinear resize would skip them), so a phone photo costs
/// little more than a small one. Other formats decode whole.
pub fn decode_upload(
    bytes: &[u8],
    what: &str,
    max_pixels: u64,
    input: Option<(u32, u32)>,
) -> Result<Upload, DetectError> {
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
    let jpeg = bytes.starts_with(&[0xFF, 0xD8]);
    let scale = match input {
        Some(input) if jpeg => jpeg_scale(w, h, input),
        _ => 1,
    };
    let flags = match scale {
        8 => opencv::imgcodecs::IMREAD_REDUCED_COLOR_8,
        4 => opencv::imgcodecs::IMREAD_REDUCED_COLOR_4,
        2 => opencv::imgcodecs::IMREAD_REDUCED_COLOR_2,
        _ => opencv::imgcodecs::IMREAD_COLOR,
    };
    // libjpeg rounds a scaled-down side up.
    let (dw, dh) = (w.div_ceil(scale), h.div_ceil(scale));
    // zune-jpeg meets hostile bytes here: should it ever panic on them,
    // OpenCV decodes (or refuses) instead of the request failing with 500.
    let fast = if input.is_some() && jpeg && scale == 1 {
        std::panic::catch_unwind(|| decode_jpeg_bgr(bytes, (w, h)))
            .ok()
            .flatten()
    } else {
        None
    };
    let image = match fast {
        Some(image) => image,
        None => decode_sized(bytes, what, (dw, dh), flags)?,
    };
    // The header is what was checked; a decoder that disagrees is refused,
    // except that an EXIF orientation may turn the picture a quarter.
    let (width, height) = match (image.width(), image.height()) {
        got if got == (dw, dh) => (w, h),
        got if got == (dh, dw) => (h, w),
        (gw, gh) => {
            return Err(DetectError::Image(format!(
                "{what}: the header says {w}x{h} but the image decodes to {}x{}",
                gw * scale,
                gh * scale
            )))
        }
    };
    Ok(Upload {
        image,
        width,
        height,
    })
}

/// A JPEG decoded by zune-jpeg straight into an [`ImageBgr`], for the
/// model's eyes only: OpenCV 4.6 has libjpeg write RGB and swaps each row to
/// BGR in scalar code (4.5 ms for a 768x576 photo here, 3.3 ms of it
/// libjpeg's), while zune-jpeg writes BGR with SIMD into our buffer (3.3 ms).
/// Its pixels differ from libjpeg's by at most 3 levels (1–2 on ~7 % of
/// them): detections move by a fraction of a pixel. `None` — and OpenCV
/// decodes, with its own error messages — for anything but a plain
/// YCbCr or grey JPEG of the header's `w`x`h` without an EXIF turn or flip
/// (OpenCV applies those), or when zune-jpeg refuses the data.
fn decode_jpeg_bgr(bytes: &[u8], (w, h): (u32, u32)) -> Option<ImageBgr> {
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::BGR)
        .set_strict_mode(true);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(bytes, opts);
    dec.decode_headers().ok()?;
    let plain = matches!(
        dec.get_input_colorspace(),
        Some(ColorSpace::YCbCr | ColorSpace::Luma)
    );
    // Every EXIF block, not only the one a decoder picks, must say upright.
    let turned = jpeg_segments(bytes).any(|(m, p)| {
        m == 0xE1 && p.starts_with(b"Exif\0\0") && exif_orientation(&p[6..]) != Some(1)
    });
    if !plain || turned || dec.dimensions() != Some((w as usize, h as usize)) {
        return None;
    }
    let mut data = vec![0u8; dec.output_buffer_size()?];
    if data.len() != 3 * w as usize * h as usize {
        return None;
    }
    dec.decode_into(&mut data).ok()?;
    ImageBgr::new(w, h, data).ok()
}

/// The orientation tag (0x0112) of an EXIF block's first directory, read
/// from the TIFF header on: 1 (upright) when the directory has no such tag,
/// `None` when the block does not parse.
fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |i: usize| {
        let b = tiff.get(i..i + 2)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |i: usize| {
        let b = tiff.get(i..i + 4)?;
        Some(if big {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let entries = usize::from(u16_at(ifd)?);
    for e in (0..entries).map(|k| ifd + 2 + 12 * k) {
        if u16_at(e)? == 0x0112 {
            return u16_at(e + 8);
        }
    }
    Some(1)
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
        let is_sof = |m: u8| (0xC0..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC);
        let (_, sof) = jpeg_segments(b).find(|&(m, _)| is_sof(m))?;
        let h = u32::from(u16::from_be_bytes([*sof.get(1)?, *sof.get(2)?]));
        let w = u32::from(u16::from_be_bytes([*sof.get(3)?, *sof.get(4)?]));
        return Some((w, h));
    }
    None
}

/// A JPEG's header segments, `(marker, payload)`, up to the first
/// start-of-scan; ends early where the structure breaks.
fn jpeg_segments(b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut i = 2;
    std::iter::from_fn(move || loop {
        if b.get(i) != Some(&0xFF) {
            return None;
        }
        let marker = *b.get(i + 1)?;
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*b.get(i + 2)?, *b.get(i + 3)?]));
        if len < 2 || marker == 0xDA {
            i = b.len();
            return None;
        }
        let payload = b.get(i + 4..i + 2 + len)?;
        i += 2 + len;
        return Some((marker, payload));
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff(big: bool, tag: u16, value: u16) -> Vec<u8> {
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut t = if big {
            b"MM\0*".to_vec()
        } else {
            b"II*\0".to_vec()
        };
        t.extend_from_slice(&w32(8));
        t.extend_from_slice(&w16(2));
        // An unrelated tag first (ImageWidth), then the one asked for.
        for (tag, value) in [(0x0100, 640), (tag, value)] {
            t.extend_from_slice(&w16(tag));
            t.extend_from_slice(&w16(3));
            t.extend_from_slice(&w32(1));
            t.extend_from_slice(&w16(value));
            t.extend_from_slice(&[0, 0]);
        }
        t.extend_from_slice(&[0; 4]);
        t
    }

    #[test]
    fn the_exif_orientation_is_read_in_both_byte_orders() {
        assert_eq!(exif_orientation(&tiff(true, 0x0112, 6)), Some(6));
        assert_eq!(exif_orientation(&tiff(false, 0x0112, 3)), Some(3));
        // No orientation tag: upright.
        assert_eq!(exif_orientation(&tiff(true, 0x010F, 6)), Some(1));
        // Cut short, or not TIFF at all: unknown.
        let t = tiff(false, 0x0112, 8);
        assert_eq!(exif_orientation(&t[..20]), None);
        assert_eq!(exif_orientation(b"nonsense"), None);
        assert_eq!(exif_orientation(&[]), None);
    }

    #[test]
    fn the_fast_decoder_takes_only_plain_upright_jpegs() {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/photos/dog.jpg");
        let Ok(dog) = std::fs::read(&path) else {
            panic!("{}: run `make setup`", path.display())
        };
        let img = decode_jpeg_bgr(&dog, (768, 576));
        assert_eq!(img.map(|i| (i.width(), i.height())), Some((768, 576)));
        // The header's size is what was checked: another one is not decoded.
        assert!(decode_jpeg_bgr(&dog, (576, 768)).is_none());
        // Turned by EXIF: OpenCV's turn applies instead.
        let mut turned = dog[..2].to_vec();
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff(true, 0x0112, 6));
        turned.extend_from_slice(&[0xFF, 0xE1]);
        turned.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
        turned.extend_from_slice(&app1);
        turned.extend_from_slice(&dog[2..]);
        assert!(decode_jpeg_bgr(&turned, (768, 576)).is_none());
        // Not a JPEG, or a damaged one: OpenCV decides (and words the error).
        assert!(decode_jpeg_bgr(b"\x89PNG\r\n\x1a\n", (1, 1)).is_none());
        assert!(decode_jpeg_bgr(&dog[..dog.len() / 2], (768, 576)).is_none());
    }
}
