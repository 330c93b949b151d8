//! Agreement and speed of the back ends and precisions side by side, in one
//! process, against FP32 detections computed in the same run.
//!
//! Usage: agreement [--every N] [--threads T] [--calls C] [--variant NAME=SPEC]...
//! where SPEC is `DEVICE:PRECISION[:MODEL]` (default model
//! models/yolov12n-dyn.onnx). Without --variant: OpenVINO FP32, OpenVINO
//! BF16, and every `models/yolov12n-dyn-{fp16,int8}.onnx` that exists.
//!
//! The reference is ONNX Runtime's CPU provider in FP32 on the loaded
//! library (ort loads one per process: set ORT_DYLIB_PATH to the
//! onnxruntime-openvino library to include OpenVINO). Frames: the sample
//! photos and every Nth frame of the sample clip. Agreement: boxes of the
//! same class paired one-to-one at IoU >= 0.9 (and >= 0.5), both directions.
//! Speed: median of C single-frame session calls, T threads, batch 1.
//! Prints a Markdown table.

use std::path::PathBuf;
use std::time::Instant;

use vigil_core::config::{Count, Device, ModelConfig, Precision, UnknownDevice, UnknownPrecision};
use vigil_core::{Detection, ImageBgr};
use vigil_detect::agreement::{compare, confident};
use vigil_detect::{image_io, preprocess, Detector, DetectorOptions};
use vigil_video::{SourceOptions, VideoSource};

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

struct Variant {
    name: String,
    device: Device,
    precision: Precision,
    model: PathBuf,
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    let (name, spec) = s
        .split_once('=')
        .ok_or(format!("--variant {s}: NAME=SPEC"))?;
    let mut parts = spec.splitn(3, ':');
    let device = parts
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|e: UnknownDevice| e.to_string())?;
    let precision = parts
        .next()
        .unwrap_or("auto")
        .parse()
        .map_err(|e: UnknownPrecision| e.to_string())?;
    let model = parts
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| vigil_benches::require("models/yolov12n-dyn.onnx"));
    Ok(Variant {
        name: name.to_string(),
        device,
        precision,
        model,
    })
}

fn load(v: &Variant, threads: usize) -> Result<Detector, String> {
    let cfg = ModelConfig {
        path: v.model.clone(),
        device: v.device,
        precision: v.precision,
        intra_threads: Count::Fixed(threads),
        ..ModelConfig::default()
    };
    Detector::load(&DetectorOptions::single(&cfg)).map_err(|e| format!("{}: {e}", v.name))
}

fn frames(every: usize) -> Result<Vec<ImageBgr>, String> {
    let mut out = Vec::new();
    for p in ["dog", "person", "horses", "giraffe"] {
        let path = vigil_benches::require(&format!("data/photos/{p}.jpg"));
        out.push(image_io::load_image(&path).map_err(|e| e.to_string())?);
    }
    let clip = vigil_benches::require("data/video/vtest.avi");
    let mut src = VideoSource::open(&clip.to_string_lossy(), &SourceOptions::default())
        .map_err(|e| e.to_string())?;
    let mut i = 0usize;
    while let Some(f) = src.read().map_err(|e| e.to_string())? {
        if i.is_multiple_of(every) {
            out.push(f.image);
        }
        i += 1;
    }
    Ok(out)
}

fn detect_all(d: &mut Detector, imgs: &[ImageBgr]) -> Result<Vec<Vec<Detection>>, String> {
    imgs.iter()
        .map(|img| {
            d.detect(&[img])
                .map(|mut v| v.remove(0))
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn median_ms(d: &mut Detector, imgs: &[ImageBgr], calls: usize) -> Result<f64, String> {
    let (w, h) = d.input_size();
    let input = preprocess::preprocess(&imgs[imgs.len() / 2], w, h)
        .map_err(|e| e.to_string())?
        .tensor;
    for _ in 0..3 {
        d.run_only(&input, 1).map_err(|e| e.to_string())?;
    }
    let mut t: Vec<f64> = (0..calls)
        .map(|_| {
            let s = Instant::now();
            d.run_only(&input, 1)
                .map(|_| s.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let every: usize = arg(&args, "--every")
        .unwrap_or("5")
        .parse()
        .map_err(|_| "--every N")?;
    let threads: usize = arg(&args, "--threads")
        .unwrap_or("2")
        .parse()
        .map_err(|_| "--threads T")?;
    let calls: usize = arg(&args, "--calls")
        .unwrap_or("30")
        .parse()
        .map_err(|_| "--calls C")?;
    let mut variants: Vec<Variant> = args
        .windows(2)
        .filter(|w| w[0] == "--variant")
        .map(|w| parse_variant(&w[1]))
        .collect::<Result<_, _>>()?;
    if variants.is_empty() {
        variants.push(parse_variant("OpenVINO FP32=openvino:fp32")?);
        variants.push(parse_variant("OpenVINO BF16=openvino:bf16")?);
        for (suffix, p) in [("fp16", "fp16"), ("int8", "int8")] {
            let m = vigil_benches::root().join(format!("models/yolov12n-dyn-{suffix}.onnx"));
            if m.is_file() {
                for dev in ["cpu", "openvino"] {
                    let prec = if dev == "openvino" && p == "fp16" {
                        "auto"
                    } else {
                        p
                    };
                    variants.push(parse_variant(&format!(
                        "{dev} {suffix} file={dev}:{prec}:{}",
                        m.display()
                    ))?);
                }
            }
        }
    }
    let imgs = frames(every.max(1))?;
    let reference = Variant {
        name: "CPU provider FP32 (reference)".into(),
        device: Device::Cpu,
        precision: Precision::Fp32,
        model: vigil_benches::require("models/yolov12n-dyn.onnx"),
    };
    let mut d = load(&reference, threads)?;
    let backend = d.info().backend.runtime.clone();
    let want = detect_all(&mut d, &imgs)?;
    let ref_ms = median_ms(&mut d, &imgs, calls)?;
    drop(d);
    let boxes: usize = want.iter().map(Vec::len).sum();
    println!(
        "{} frames (4 photos + every {every}th clip frame), {boxes} reference boxes, {threads} threads, batch 1, {backend}\n",
        imgs.len()
    );
    println!("| variant | runs as | ms/frame (median of {calls}) | speed-up | agreement IoU≥0.9 | IoU≥0.5 | IoU≥0.5, score≥0.4 |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {} | cpu fp32 | {ref_ms:.1} | 1.00× | — | — | — |",
        reference.name
    );
    let want_conf = confident(&want, 0.4);
    for v in &variants {
        let mut d = match load(v, threads) {
            Ok(d) => d,
            Err(e) => {
                println!("| {} | failed: {e} | | | | | |", v.name);
                continue;
            }
        };
        let b = d.info().backend.clone();
        let got = detect_all(&mut d, &imgs)?;
        let ms = median_ms(&mut d, &imgs, calls)?;
        let a9 = compare(&want, &got, 0.9);
        let a5 = compare(&want, &got, 0.5);
        let a5c = compare(&want_conf, &confident(&got, 0.4), 0.5);
        println!(
            "| {} | {} {} | {ms:.1} | {:.2}× | {:.1} % | {:.1} % | {:.1} % |",
            v.name,
            b.device,
            b.precision,
            ref_ms / ms,
            100.0 * a9.ratio(),
            100.0 * a5.ratio(),
            100.0 * a5c.ratio()
        );
    }
    Ok(())
}
