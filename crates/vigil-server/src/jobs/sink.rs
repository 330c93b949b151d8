//! The sink that turns a job's frames into its result files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use vigil_core::{Detection, ImageBgr};
use vigil_pipeline::{FrameResult, FrameSink, StreamSummary};
use vigil_video::{draw_detections, VideoWriter};

use crate::metrics::Metrics;

/// A file written under a temporary name and renamed into place only on
/// success, so `GET /v1/jobs/{id}/detections` never serves half a result.
pub struct PartialFile {
    final_path: PathBuf,
    tmp_path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl PartialFile {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp_path = path.with_file_name(format!(".{name}.partial"));
        let f = File::create(&tmp_path)?;
        Ok(Self {
            final_path: path.to_path_buf(),
            tmp_path,
            out: Some(BufWriter::new(f)),
        })
    }

    fn commit(mut self) -> std::io::Result<()> {
        if let Some(mut w) = self.out.take() {
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        std::fs::rename(&self.tmp_path, &self.final_path)
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// One JSON line per processed frame, exactly as `vigil annotate --jsonl`.
#[derive(Serialize)]
struct JsonLine<'a> {
    frame: u64,
    pts_ms: f64,
    detections: &'a [Detection],
}

pub struct JobSink {
    writer: Option<VideoWriter>,
    jsonl: Option<PartialFile>,
    done: Arc<AtomicU64>,
    /// A per-job threshold above `model.conf` (the detector's own cut).
    conf: Option<f32>,
    metrics: Arc<Metrics>,
}

impl JobSink {
    pub fn new(
        writer: VideoWriter,
        jsonl: PartialFile,
        done: Arc<AtomicU64>,
        conf: Option<f32>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            writer: Some(writer),
            jsonl: Some(jsonl),
            done,
            conf,
            metrics,
        }
    }
}

impl FrameSink for JobSink {
    fn on_frame(&mut self, mut r: FrameResult) -> Result<(), String> {
        self.metrics.observe_frame(None, &r);
        if let Some(c) = self.conf {
            r.objects.retain(|d| d.score >= c);
        }
        if r.processed {
            if let Some(w) = self.jsonl.as_mut().and_then(|p| p.out.as_mut()) {
                let line = JsonLine {
                    frame: r.frame.index.0,
                    pts_ms: r.frame.pts.0,
                    detections: &r.objects,
                };
                serde_json::to_writer(&mut *w, &line).map_err(|e| e.to_string())?;
                w.write_all(b"\n")
                    .map_err(|e| format!("writing detections: {e}"))?;
            }
        }
        if let Some(writer) = self.writer.as_mut() {
            let mut img: ImageBgr = (*r.frame.image).clone();
            draw_detections(&mut img, &r.objects);
            writer.write(&img).map_err(|e| e.to_string())?;
        }
        self.done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn finish(&mut self, summary: &StreamSummary) -> Result<(), String> {
        // A failed or interrupted job leaves no result files: the partial
        // outputs are dropped, which deletes them.
        if summary.error.is_some() || summary.stopped {
            self.writer.take();
            self.jsonl.take();
            return Ok(());
        }
        if let Some(w) = self.writer.take() {
            w.finish().map_err(|e| e.to_string())?;
        }
        if let Some(j) = self.jsonl.take() {
            j.commit().map_err(|e| format!("writing detections: {e}"))?;
        }
        Ok(())
    }
}
