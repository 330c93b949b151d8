//! Ultralytics-identical letterbox preprocessing.
//!
//! Resize keeping aspect with bilinear interpolation (OpenCV `INTER_LINEAR`,
//! as Ultralytics), pad centred with grey 114, BGR→RGB, scale to 0–1, NCHW.
//! The rounding of the new size and of the padding follows Ultralytics'
//! `LetterBox` exactly, so boxes land on the same pixels as the reference.

use opencv::core::{Mat, Size, Vec3b};
use opencv::prelude::*;
use vigil_core::{BBox, ImageBgr};

use crate::DetectError;

const PAD: u8 = 114;

/// How a source frame was fitted into the model input; undoes itself on boxes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub src_width: u32,
    pub src_height: u32,
    /// Model-input pixels per source pixel.
    pub gain: f32,
    /// Padding added on the left and top, in model-input pixels.
    pub pad_x: f32,
    pub pad_y: f32,
    /// Size of the resized image inside the padded input.
    pub new_width: u32,
    pub new_height: u32,
}

impl Letterbox {
    /// Computes the fit of `src` into `dst_w`×`dst_h` with Ultralytics' rounding.
    pub fn fit(src_width: u32, src_height: u32, dst_w: u32, dst_h: u32) -> Self {
        let r = (dst_h as f64 / src_height as f64).min(dst_w as f64 / src_width as f64);
        // Python's round() is banker's rounding; sizes never sit exactly on .5
        // in practice, and round_ties_even matches it when they do.
        let new_w = ((src_width as f64 * r).round_ties_even() as u32).clamp(1, dst_w);
        let new_h = ((src_height as f64 * r).round_ties_even() as u32).clamp(1, dst_h);
        let dw = (dst_w - new_w) as f64 / 2.0;
        let dh = (dst_h - new_h) as f64 / 2.0;
        let left = (dw - 0.1).round_ties_even();
        let top = (dh - 0.1).round_ties_even();
        Self {
            src_width,
            src_height,
            gain: r as f32,
            pad_x: left as f32,
            pad_y: top as f32,
            new_width: new_w,
            new_height: new_h,
        }
    }

    /// Maps a box in model-input pixels back to source pixels, clipped.
    pub fn to_source(&self, b: BBox) -> BBox {
        BBox::new(
            (b.x1 - self.pad_x) / self.gain,
            (b.y1 - self.pad_y) / self.gain,
            (b.x2 - self.pad_x) / self.gain,
            (b.y2 - self.pad_y) / self.gain,
        )
        .clip(self.src_width as f32, self.src_height as f32)
    }

    /// Maps a source box into model-input pixels (the inverse of [`Self::to_source`]).
    pub fn to_input(&self, b: BBox) -> BBox {
        BBox::new(
            b.x1 * self.gain + self.pad_x,
            b.y1 * self.gain + self.pad_y,
            b.x2 * self.gain + self.pad_x,
            b.y2 * self.gain + self.pad_y,
        )
    }
}

/// A frame ready for inference: one NCHW plane set plus how to undo the fit.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `3 * height * width` floats, RGB planes, 0–1.
    pub tensor: Vec<f32>,
    pub letterbox: Letterbox,
}

/// Letterboxes `img` into a fresh `3×dst_h×dst_w` tensor.
pub fn preprocess(img: &ImageBgr, dst_w: u32, dst_h: u32) -> Result<Prepared, DetectError> {
    let mut tensor = vec![0f32; 3 * dst_w as usize * dst_h as usize];
    let letterbox = preprocess_into(img, dst_w, dst_h, &mut tensor)?;
    Ok(Prepared { tensor, letterbox })
}

/// Letterboxes `img` into `out` (length `3*dst_h*dst_w`), reusing its memory.
pub fn preprocess_into(
    img: &ImageBgr,
    dst_w: u32,
    dst_h: u32,
    out: &mut [f32],
) -> Result<Letterbox, DetectError> {
    let plane = dst_w as usize * dst_h as usize;
    if out.len() != 3 * plane {
        return Err(DetectError::Inference(format!(
            "preprocess buffer has {} floats, expected {}",
            out.len(),
            3 * plane
        )));
    }
    let lb = Letterbox::fit(img.width(), img.height(), dst_w, dst_h);
    let cv = |e: opencv::Error| DetectError::Inference(format!("resize: {}", e.message));
    let resized_holder;
    let src_bytes: &[u8] = if lb.new_width == img.width() && lb.new_height == img.height() {
        img.data()
    } else {
        let src = Mat::new_rows_cols_with_bytes::<Vec3b>(
            img.height() as i32,
            img.width() as i32,
            img.data(),
        )
        .map_err(cv)?;
        let mut dst = Mat::default();
        opencv::imgproc::resize(
            &src,
            &mut dst,
            Size::new(lb.new_width as i32, lb.new_height as i32),
            0.0,
            0.0,
            opencv::imgproc::INTER_LINEAR,
        )
        .map_err(cv)?;
        resized_holder = dst;
        resized_holder.data_bytes().map_err(cv)?
    };

    let lut = unit_lut();
    let pad = lut[PAD as usize];
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    let (nw, nh) = (lb.new_width as usize, lb.new_height as usize);
    let (left, top) = (lb.pad_x as usize, lb.pad_y as usize);
    let w = dst_w as usize;
    for y in 0..dst_h as usize {
        let row = y * w;
        let inside = y >= top && y < top + nh;
        if !inside {
            r_plane[row..row + w].fill(pad);
            g_plane[row..row + w].fill(pad);
            b_plane[row..row + w].fill(pad);
            continue;
        }
        let src_row = &src_bytes[(y - top) * nw * 3..(y - top + 1) * nw * 3];
        for p in [&mut *r_plane, &mut *g_plane, &mut *b_plane] {
            p[row..row + left].fill(pad);
            p[row + left + nw..row + w].fill(pad);
        }
        let (r, g, b) = (
            &mut r_plane[row + left..row + left + nw],
            &mut g_plane[row + left..row + left + nw],
            &mut b_plane[row + left..row + left + nw],
        );
        for (i, px) in src_row.chunks_exact(3).enumerate() {
            b[i] = lut[px[0] as usize];
            g[i] = lut[px[1] as usize];
            r[i] = lut[px[2] as usize];
        }
    }
    Ok(lb)
}

/// `v / 255` for every byte; a table lookup is faster than a division per
/// channel and gives bit-identical values.
fn unit_lut() -> &'static [f32; 256] {
    static LUT: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    LUT.get_or_init(|| std::array::from_fn(|i| i as f32 / 255.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_matches_ultralytics_rounding() {
        // 768x576 -> 640: r = 0.8333, new 640x480, pad 80 top and bottom.
        let lb = Letterbox::fit(768, 576, 640, 640);
        assert_eq!((lb.new_width, lb.new_height), (640, 480));
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 80.0));
        // 773x512 -> 640: new 640x424 (423.9 rounds up), dh = 108.
        let lb = Letterbox::fit(773, 512, 640, 640);
        assert_eq!((lb.new_width, lb.new_height), (640, 424));
        assert_eq!(lb.pad_y, 108.0);
        // odd padding: 640x427 -> dh = 106.5 -> top 106 (round(106.4)).
        let lb = Letterbox::fit(640, 427, 640, 640);
        assert_eq!(lb.pad_y, 106.0);
    }

    #[test]
    fn box_round_trip_through_letterbox() {
        let lb = Letterbox::fit(773, 512, 640, 640);
        let b = BBox::new(10.0, 20.5, 300.0, 400.25);
        let back = lb.to_source(lb.to_input(b));
        for (a, e) in <[f32; 4]>::from(back).iter().zip(<[f32; 4]>::from(b)) {
            assert!((a - e).abs() < 1e-3, "{back:?} vs {b:?}");
        }
    }

    #[test]
    fn to_source_clips_to_frame() {
        let lb = Letterbox::fit(100, 50, 640, 640);
        let b = lb.to_source(BBox::new(0.0, 0.0, 640.0, 640.0));
        assert_eq!(b, BBox::new(0.0, 0.0, 100.0, 50.0));
    }

    #[test]
    fn pads_with_114_and_swaps_channels() {
        // A 4x2 image of pure blue (BGR 255,0,0) into 4x4: rows 0 and 3 padded.
        let img = ImageBgr::filled(4, 2, [255, 0, 0]);
        let p = preprocess(&img, 4, 4).unwrap();
        let plane = 16;
        let pad = 114.0 / 255.0;
        assert_eq!(p.letterbox.pad_y, 1.0);
        assert!((p.tensor[0] - pad).abs() < 1e-6); // R plane, padded row 0
        assert_eq!(p.tensor[4], 0.0); // R plane row 1: blue has no red
        assert_eq!(p.tensor[2 * plane + 4], 1.0); // B plane row 1
        assert!((p.tensor[2 * plane + 12] - pad).abs() < 1e-6); // padded row 3
    }

    #[test]
    fn rejects_wrong_buffer() {
        let img = ImageBgr::filled(4, 2, [0, 0, 0]);
        let mut buf = vec![0.0; 10];
        assert!(preprocess_into(&img, 4, 4, &mut buf).is_err());
    }
}
