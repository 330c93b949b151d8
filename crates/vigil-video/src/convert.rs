//! Conversions between OpenCV matrices and [`ImageBgr`].

use opencv::core::{Mat, Vec3b};
use opencv::prelude::*;
use vigil_core::ImageBgr;

/// Copies a decoded OpenCV frame into an owned, tightly packed BGR image.
///
/// Decoders normally hand out 8-bit BGR, but grey or BGRA can appear with some
/// backends/pixel formats, so those are converted instead of rejected.
pub(crate) fn mat_to_image(mat: &Mat) -> Result<ImageBgr, String> {
    let typ = mat.typ();
    let converted;
    let bgr: &Mat = match typ {
        t if t == opencv::core::CV_8UC3 => mat,
        t if t == opencv::core::CV_8UC1 || t == opencv::core::CV_8UC4 => {
            let code = if t == opencv::core::CV_8UC1 {
                opencv::imgproc::COLOR_GRAY2BGR
            } else {
                opencv::imgproc::COLOR_BGRA2BGR
            };
            let mut out = Mat::default();
            opencv::imgproc::cvt_color_def(mat, &mut out, code).map_err(|e| e.message)?;
            converted = out;
            &converted
        }
        t => return Err(format!("unsupported pixel format (OpenCV type {t})")),
    };
    let (w, h) = (bgr.cols(), bgr.rows());
    if w <= 0 || h <= 0 {
        return Err("decoder returned an empty frame".to_owned());
    }
    let data = if bgr.is_continuous() {
        bgr.data_bytes().map_err(|e| e.message)?.to_vec()
    } else {
        let owned = bgr.try_clone().map_err(|e| e.message)?;
        owned.data_bytes().map_err(|e| e.message)?.to_vec()
    };
    ImageBgr::new(w as u32, h as u32, data).map_err(|e| e.to_string())
}

/// A read-only `Mat` header over the image's bytes (no copy).
pub(crate) fn borrow_mat(img: &ImageBgr) -> opencv::Result<opencv::boxed_ref::BoxedRef<'_, Mat>> {
    Mat::new_rows_cols_with_bytes::<Vec3b>(img.height() as i32, img.width() as i32, img.data())
}

/// A writable `Mat` header over the image's bytes (no copy), so OpenCV drawing
/// lands directly in the frame the pipeline passes on.
pub(crate) fn borrow_mat_mut(
    img: &mut ImageBgr,
) -> opencv::Result<opencv::boxed_ref::BoxedRefMut<'_, Mat>> {
    let (w, h) = (img.width() as i32, img.height() as i32);
    Mat::new_rows_cols_with_bytes_mut::<Vec3b>(h, w, img.data_mut())
}
