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
    let bytes = dog();
    let untrusted = image_io::decode_untrusted_image(&bytes, "upload", u64::MAX).expect("jpeg");
    let plain = image_io::decode_image(&bytes, "upload").expect("jpeg");
    assert_eq!((untrusted.width(), untrusted.height()), (768, 576));
    assert_eq!(untrusted.data(), plain.data());
}

fn dog() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/photos/dog.jpg");
    std::fs::read(&path).expect("data/photos/dog.jpg: run `make setup`")
}

/// `jpeg` with an EXIF block whose orientation tag is `o`, as a phone
/// writes a portrait photo (stored landscape, `o` = 6: turn 90° clockwise).
fn with_orientation(jpeg: &[u8], o: u16) -> Vec<u8> {
    let mut tiff = b"MM\0*\0\0\0\x08\0\x01".to_vec();
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend_from_slice(&o.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// dog.jpg scaled to `w`x`h` and encoded again.
fn big_dog(w: i32, h: i32) -> Vec<u8> {
    let src = opencv::imgcodecs::imdecode(
        &Vector::<u8>::from_slice(&dog()),
        opencv::imgcodecs::IMREAD_COLOR,
    )
    .expect("decode");
    let mut big = Mat::default();
    opencv::imgproc::resize(
        &src,
        &mut big,
        opencv::core::Size::new(w, h),
        0.0,
        0.0,
        opencv::imgproc::INTER_LINEAR,
    )
    .expect("resize");
    encode(&big, ".jpg")
}

fn opencv_decode(bytes: &[u8], flags: i32) -> Mat {
    opencv::imgcodecs::imdecode(&Vector::<u8>::from_slice(bytes), flags).expect("decode")
}

const MODEL: Option<(u32, u32)> = Some((640, 640));

#[test]
fn the_scale_down_keeps_at_least_the_model_input_in_either_orientation() {
    let cases = [
        ((768, 576), 1),
        ((640, 480), 1),
        ((1279, 720), 1),
        ((1280, 720), 2),
        ((1920, 1440), 2),
        ((1440, 1920), 2),
        ((2560, 1440), 4),
        ((4032, 3024), 4),
        ((3024, 4032), 4),
        ((8000, 6000), 8),
        ((20000, 100), 8),
    ];
    for ((w, h), s) in cases {
        assert_eq!(image_io::jpeg_scale(w, h, (640, 640)), s, "{w}x{h}");
    }
    // A wide model input: the tighter of the two orientations decides.
    assert_eq!(image_io::jpeg_scale(1920, 1080, (1280, 736)), 1);
}

#[test]
fn a_large_jpeg_decodes_at_the_model_s_scale_and_its_boxes_map_back() {
    let bytes = big_dog(1920, 1440);
    let up = image_io::decode_upload(&bytes, "upload", u64::MAX, MODEL).expect("upload");
    assert_eq!((up.width, up.height), (1920, 1440));
    assert_eq!((up.image.width(), up.image.height()), (960, 720));
    // libjpeg's own half-scale decode, pixel for pixel.
    let half = opencv_decode(&bytes, opencv::imgcodecs::IMREAD_REDUCED_COLOR_2);
    assert_eq!(up.image.data(), half.data_bytes().expect("bytes"));

    let mut dets = vec![vigil_core::Detection {
        class_id: 0,
        label: "person".into(),
        score: 0.9,
        bbox: vigil_core::BBox::new(10.0, 20.0, 30.0, 719.0),
        track_id: None,
    }];
    up.to_client().apply(&mut dets);
    assert_eq!(
        dets[0].bbox,
        vigil_core::BBox::new(20.0, 40.0, 60.0, 1438.0)
    );

    // Without a model size (or for another format) the picture decodes whole.
    let whole = image_io::decode_upload(&bytes, "upload", u64::MAX, None).expect("whole");
    assert_eq!((whole.image.width(), whole.image.height()), (1920, 1440));
    let png = encode(
        &opencv_decode(&bytes, opencv::imgcodecs::IMREAD_COLOR),
        ".png",
    );
    let png = image_io::decode_upload(&png, "upload", u64::MAX, MODEL).expect("png");
    assert_eq!((png.image.width(), png.image.height()), (1920, 1440));
}

#[test]
fn an_exif_turned_photo_is_accepted_and_reported_upright() {
    // Stored 768x576, shown 576x768: the header's size, turned.
    let turned = with_orientation(&dog(), 6);
    for input in [None, MODEL] {
        let up = image_io::decode_upload(&turned, "upload", u64::MAX, input).expect("turned");
        assert_eq!((up.width, up.height), (576, 768), "{input:?}");
        let cv = opencv_decode(&turned, opencv::imgcodecs::IMREAD_COLOR);
        assert_eq!(
            up.image.data(),
            cv.data_bytes().expect("bytes"),
            "{input:?}"
        );
    }
    // Turned and scaled down.
    let big = with_orientation(&big_dog(1920, 1440), 6);
    let up = image_io::decode_upload(&big, "upload", u64::MAX, MODEL).expect("big turned");
    assert_eq!((up.width, up.height), (1440, 1920));
    assert_eq!((up.image.width(), up.image.height()), (720, 960));
    // An upright tag changes nothing.
    let upright = with_orientation(&dog(), 1);
    let up = image_io::decode_upload(&upright, "upload", u64::MAX, MODEL).expect("upright");
    assert_eq!((up.width, up.height), (768, 576));
}

#[test]
fn a_photo_for_the_model_decodes_within_three_levels_of_libjpeg() {
    let bytes = dog();
    let up = image_io::decode_upload(&bytes, "upload", u64::MAX, MODEL).expect("upload");
    let cv = image_io::decode_image(&bytes, "upload").expect("opencv");
    assert_eq!((up.width, up.height), (768, 576));
    assert_eq!((up.image.width(), up.image.height()), (768, 576));
    let worst = up
        .image
        .data()
        .iter()
        .zip(cv.data())
        .map(|(a, b)| a.abs_diff(*b))
        .max();
    assert!(worst.is_some_and(|d| d <= 3), "worst difference {worst:?}");
}

#[test]
fn damaged_jpegs_are_answered_or_refused_never_a_panic() {
    let good = dog();
    // xorshift64: the same damage on every run.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let (mut answered, mut refused) = (0, 0);
    for round in 0..60 {
        let mut bad = good.clone();
        match round % 3 {
            0 => bad.truncate(next() % good.len()),
            1 => {
                for _ in 0..8 {
                    let i = next() % bad.len();
                    bad[i] ^= 1 << (next() % 8);
                }
            }
            // The header: tables, the frame, the scan's start.
            _ => {
                let i = 2 + next() % 620;
                bad[i] = next() as u8;
            }
        }
        let r =
            std::panic::catch_unwind(|| image_io::decode_upload(&bad, "upload", 1 << 26, MODEL));
        match r {
            Ok(Ok(_)) => answered += 1,
            Ok(Err(e)) => {
                assert!(e.to_string().starts_with("upload: "), "{e}");
                refused += 1;
            }
            Err(_) => panic!("round {round}: decoding damaged bytes panicked"),
        }
    }
    // Both kinds happened: the damage reached the decoders.
    assert!(
        answered > 0 && refused > 0,
        "{answered} answered, {refused} refused"
    );
}
