//! Untrusted images decode straight into the image's own buffer; these
//! check that what lands there is the picture, pixel for pixel, against
//! OpenCV's plain decode (the path that copies out of a temporary `Mat`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::path::PathBuf;

use opencv::core::{Mat, Scalar, Vector, CV_8UC1, CV_8UC3};
use opencv::prelude::*;
use vigil_detect::image_io;

fn encode(mat: &Mat, ext: &str) -> Vec<u8> {
    let mut out = Vector::<u8>::new();
    opencv::imgcodecs::imencode(ext, mat, &mut out, &Vector::new()).expect("encode");
    out.to_vec()
}

/// A 37x23 colour picture whose every pixel differs from its neighbours.
fn pattern() -> Mat {
    let (w, h) = (37, 23);
    let mut m = Mat::new_rows_cols_with_default(h, w, CV_8UC3, Scalar::all(0.0)).expect("mat");
    let bytes = m.data_bytes_mut().expect("bytes");
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    m
}

#[test]
fn a_lossless_image_decodes_into_its_buffer_pixel_for_pixel() {
    let src = pattern();
    for ext in [".png", ".bmp"] {
        let bytes = encode(&src, ext);
        let img = image_io::decode_untrusted_image(&bytes, "upload", u64::MAX).expect(ext);
        assert_eq!((img.width(), img.height()), (37, 23), "{ext}");
        assert_eq!(img.data(), src.data_bytes().expect("bytes"), "{ext}");
    }
}

#[test]
fn a_grey_image_decodes_to_three_equal_channels() {
    let mut grey = Mat::new_rows_cols_with_default(9, 11, CV_8UC1, Scalar::all(0.0)).expect("mat");
    for (i, b) in grey.data_bytes_mut().expect("bytes").iter_mut().enumerate() {
        *b = (i * 13 % 256) as u8;
    }
    let img = image_io::decode_untrusted_image(&encode(&grey, ".png"), "upload", u64::MAX)
        .expect("grey png");
    let g = grey.data_bytes().expect("bytes");
    assert_eq!(img.data().len(), 3 * g.len());
    for (px, &v) in img.data().chunks_exact(3).zip(g) {
        assert_eq!(px, [v, v, v]);
    }
}

#[test]
fn a_photo_decodes_as_opencv_decodes_it() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/photos/dog.jpg");
    let bytes = std::fs::read(&path).expect("data/photos/dog.jpg: run `make setup`");
    let untrusted = image_io::decode_untrusted_image(&bytes, "upload", u64::MAX).expect("jpeg");
    let plain = image_io::decode_image(&bytes, "upload").expect("jpeg");
    assert_eq!((untrusted.width(), untrusted.height()), (768, 576));
    assert_eq!(untrusted.data(), plain.data());
}
