//! Drawing detections onto frames, and JPEG snapshots.

use opencv::core::{Point, Rect, Scalar, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use vigil_core::{Detection, ImageBgr};

use crate::convert::{borrow_mat, borrow_mat_mut};
use crate::VideoError;

/// Ultralytics' 20-colour palette (RGB hex), so annotated output looks like
/// what users know from the reference tools, and the same class always gets the
/// same colour across frames, streams and runs.
const PALETTE_RGB: [u32; 20] = [
    0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17, 0x3DDB86, 0x1A9334,
    0x00D4BB, 0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF, 0x0018EC, 0x8438FF, 0x520085, 0xCB38FF,
    0xFF95C8, 0xFF37C7,
];

const FONT: i32 = imgproc::FONT_HERSHEY_SIMPLEX;

/// BGR colour used for a class id (palette index `class_id % 20`).
pub fn class_color(class_id: u32) -> [u8; 3] {
    let rgb = PALETTE_RGB[class_id as usize % PALETTE_RGB.len()];
    [
        (rgb & 0xFF) as u8,
        ((rgb >> 8) & 0xFF) as u8,
        (rgb >> 16) as u8,
    ]
}

/// Line thickness and font scale for a frame, so annotations keep the same
/// visual weight from 480p (1 px lines) to 4K (6 px) instead of vanishing on
/// large frames or swamping small ones.
fn style_for(width: u32, height: u32) -> (i32, f64) {
    let base = (f64::from(width) + f64::from(height)) / 2.0;
    let thickness = ((0.002 * base).round() as i32).max(1);
    let font_scale = (base / 1100.0).max(0.4);
    (thickness, font_scale)
}

/// The text drawn next to a box: `person id:12 0.87` (track id only when
/// tracking is on).
pub fn detection_label(det: &Detection) -> String {
    match det.track_id {
        Some(id) => format!("{} id:{id} {:.2}", det.label, det.score),
        None => format!("{} {:.2}", det.label, det.score),
    }
}

/// Draws each detection's box and label into `img` in place.
///
/// Works on the frame's own bytes (no copy) because this runs on every output
/// frame. Boxes are clipped to the frame and labels are moved so they stay
/// fully visible (above the box when there is room, else inside it). Drawing is
/// best effort: an OpenCV failure is logged and the frame is left as far as it
/// got, since a missing overlay must not stop the pipeline.
pub fn draw_detections(img: &mut ImageBgr, dets: &[Detection]) {
    if dets.is_empty() {
        return;
    }
    let (w, h) = (img.width(), img.height());
    let (thickness, font_scale) = style_for(w, h);
    let text_thickness = (thickness - 1).max(1);
    let mut mat = match borrow_mat_mut(img) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e.message, "cannot wrap frame for drawing");
            return;
        }
    };
    for det in dets {
        if let Err(e) = draw_one(&mut mat, det, w, h, thickness, font_scale, text_thickness) {
            tracing::warn!(
                error = %e.message,
                class_id = det.class_id,
                "failed to draw detection"
            );
        }
    }
}

fn draw_one(
    mat: &mut opencv::boxed_ref::BoxedRefMut<'_, opencv::core::Mat>,
    det: &Detection,
    w: u32,
    h: u32,
    thickness: i32,
    font_scale: f64,
    text_thickness: i32,
) -> opencv::Result<()> {
    let b = det.bbox;
    if ![b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let c = b.clip(w as f32, h as f32);
    let max_x = w as i32 - 1;
    let max_y = h as i32 - 1;
    let x1 = (c.x1.round() as i32).clamp(0, max_x);
    let y1 = (c.y1.round() as i32).clamp(0, max_y);
    let x2 = (c.x2.round() as i32).clamp(0, max_x);
    let y2 = (c.y2.round() as i32).clamp(0, max_y);
    if x2 < x1 || y2 < y1 || (c.x2 <= c.x1 && c.y2 <= c.y1) {
        return Ok(()); // entirely outside the frame or degenerate
    }
    let [cb, cg, cr] = class_color(det.class_id);
    let color = Scalar::new(f64::from(cb), f64::from(cg), f64::from(cr), 0.0);
    imgproc::rectangle_points(
        mat,
        Point::new(x1, y1),
        Point::new(x2, y2),
        color,
        thickness,
        // Axis-aligned edges gain nothing from anti-aliasing; LINE_8 keeps them
        // crisp and in the exact class colour.
        imgproc::LINE_8,
        0,
    )?;

    let text = detection_label(det);
    let mut baseline = 0;
    let size = imgproc::get_text_size(&text, FONT, font_scale, text_thickness, &mut baseline)?;
    let pad = thickness.max(2);
    let box_w = size.width + 2 * pad;
    let box_h = size.height + baseline + pad;
    // Above the box if it fits, otherwise just inside its top edge.
    let top = if y1 - box_h >= 0 { y1 - box_h } else { y1 };
    let top = top.min(h as i32 - box_h).max(0);
    let left = x1.min(w as i32 - box_w).max(0);
    imgproc::rectangle(
        mat,
        Rect::new(left, top, box_w, box_h),
        color,
        imgproc::FILLED,
        imgproc::LINE_8,
        0,
    )?;
    // Light palette colours get dark text, dark ones white, for contrast.
    let luma = 0.299 * f64::from(cr) + 0.587 * f64::from(cg) + 0.114 * f64::from(cb);
    let text_color = if luma > 150.0 {
        Scalar::new(0.0, 0.0, 0.0, 0.0)
    } else {
        Scalar::new(255.0, 255.0, 255.0, 0.0)
    };
    imgproc::put_text(
        mat,
        &text,
        Point::new(left + pad, top + size.height + pad / 2),
        FONT,
        font_scale,
        text_color,
        text_thickness,
        imgproc::LINE_AA,
        false,
    )
}

/// Encodes a frame as JPEG (snapshots, the HTTP API's latest-frame endpoint).
///
/// `quality` is 0–100 (values above 100 are clamped); 80–90 is the usual
/// trade-off between size and artefacts.
pub fn encode_jpeg(img: &ImageBgr, quality: u8) -> Result<Vec<u8>, VideoError> {
    let mat = borrow_mat(img).map_err(|e| VideoError::Encode(e.message))?;
    let params = Vector::<i32>::from_slice(&[
        opencv::imgcodecs::IMWRITE_JPEG_QUALITY,
        i32::from(quality.min(100)),
    ]);
    let mut buf = Vector::<u8>::new();
    let ok = opencv::imgcodecs::imencode(".jpg", &mat, &mut buf, &params)
        .map_err(|e| VideoError::Encode(e.message))?;
    if !ok || buf.is_empty() {
        return Err(VideoError::Encode(
            "JPEG encoder produced no data".to_owned(),
        ));
    }
    Ok(buf.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::BBox;

    #[test]
    fn style_scales_with_frame_size() {
        let (t480, f480) = style_for(640, 480);
        let (t4k, f4k) = style_for(3840, 2160);
        assert_eq!(t480, 1);
        assert_eq!(t4k, 6);
        assert!(f480 >= 0.4 && f4k > 2.0);
    }

    #[test]
    fn palette_is_bgr_and_wraps() {
        assert_eq!(class_color(0), [0x38, 0x38, 0xFF]);
        assert_eq!(class_color(20), class_color(0));
    }

    #[test]
    fn label_includes_track_id_when_present() {
        let mut d = Detection {
            class_id: 0,
            label: "person".into(),
            score: 0.871,
            bbox: BBox::new(0.0, 0.0, 1.0, 1.0),
            track_id: Some(12),
        };
        assert_eq!(detection_label(&d), "person id:12 0.87");
        d.track_id = None;
        assert_eq!(detection_label(&d), "person 0.87");
    }
}
