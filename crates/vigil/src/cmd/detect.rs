use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use vigil_core::Detection;
use vigil_detect::{image_io, Detector, DetectorOptions};

use crate::settings::{self, GlobalArgs};

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Images (JPEG, PNG, BMP, WebP).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Images per session call [default: batch.max_size from config].
    #[arg(long, value_name = "B")]
    pub batch: Option<usize>,
}

#[derive(Serialize)]
struct Line<'a> {
    source: String,
    width: u32,
    height: u32,
    detections: &'a [Detection],
}

/// Detects in every image; unreadable images get an `error:` line each and a
/// non-zero exit, but do not stop the others from being processed.
pub fn run(g: &GlobalArgs, a: &DetectArgs) -> anyhow::Result<ExitCode> {
    let cfg = settings::load(g)?;
    let mut detector = Detector::load(&DetectorOptions::single(&cfg.model))?;
    let batch = a.batch.unwrap_or(cfg.batch.max_size).max(1);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for chunk in a.images.chunks(batch) {
        let mut loaded = Vec::with_capacity(chunk.len());
        for path in chunk {
            match image_io::load_image(path) {
                Ok(img) => loaded.push((path, img)),
                Err(e) => {
                    out.flush().ok();
                    eprintln!("error: {e}");
                    failed += 1;
                }
            }
        }
        let refs: Vec<_> = loaded.iter().map(|(_, img)| img).collect();
        let results = detector.detect(&refs)?;
        for ((path, img), dets) in loaded.iter().zip(&results) {
            let line = Line {
                source: path.display().to_string(),
                width: img.width(),
                height: img.height(),
                detections: dets,
            };
            serde_json::to_writer(&mut out, &line).context("writing JSON")?;
            out.write_all(b"\n").context("writing JSON")?;
        }
    }
    out.flush().context("writing JSON")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
