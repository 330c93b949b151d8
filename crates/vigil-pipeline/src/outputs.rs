//! File outputs shared by `vigil annotate` and the daemon's jobs: the
//! annotated video and the JSON lines, written under temporary names and
//! moved into place only when complete, so nobody ever reads half a result.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use vigil_core::{Detection, ImageBgr};
use vigil_video::{draw_detections, VideoWriter};

use crate::error::PipelineError;
use crate::types::FrameResult;

/// A file written under a temporary name and renamed into place on commit;
/// dropped without commit, the temporary file is removed.
pub struct PartialFile {
    final_path: PathBuf,
    tmp_path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl PartialFile {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let name = path.file_name().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: not a file path", path.display()),
            )
        })?;
        let tmp_path = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        let f = File::create(&tmp_path)?;
        Ok(Self {
            final_path: path.to_path_buf(),
            tmp_path,
            out: Some(BufWriter::new(f)),
        })
    }

    fn writer(&mut self) -> Option<&mut BufWriter<File>> {
        self.out.as_mut()
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> std::io::Result<()> {
        if let Some(mut w) = self.out.take() {
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        std::fs::rename(&self.tmp_path, &self.final_path)?;
        vigil_core::fsutil::sync_dir_of(&self.final_path)
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// One JSON line per processed frame: the contract's `annotate --jsonl` shape.
#[derive(Serialize)]
struct JsonLine<'a> {
    frame: u64,
    pts_ms: f64,
    detections: &'a [Detection],
}

/// The annotated video and/or JSON lines of one stream.
pub struct FileOutputs {
    video: Option<VideoWriter>,
    jsonl: Option<PartialFile>,
}

impl FileOutputs {
    pub fn new(video: Option<VideoWriter>, jsonl: Option<PartialFile>) -> Self {
        Self { video, jsonl }
    }

    /// Writes one frame: a JSON line when it was processed, and the frame
    /// with its objects drawn on it.
    pub fn write(&mut self, r: &FrameResult) -> Result<(), PipelineError> {
        let objects = &r.objects;
        if r.processed {
            if let Some(w) = self.jsonl.as_mut().and_then(PartialFile::writer) {
                let line = JsonLine {
                    frame: r.frame.index.0,
                    pts_ms: r.frame.pts.0,
                    detections: objects,
                };
                serde_json::to_writer(&mut *w, &line)
                    .map_err(|e| PipelineError::Sink(format!("writing JSON lines: {e}")))?;
                w.write_all(b"\n")
                    .map_err(|e| PipelineError::Sink(format!("writing JSON lines: {e}")))?;
            }
        }
        if let Some(video) = self.video.as_mut() {
            let mut img: ImageBgr = (*r.frame.image).clone();
            draw_detections(&mut img, objects);
            video
                .write(&img)
                .map_err(|e| PipelineError::Sink(e.to_string()))?;
        }
        Ok(())
    }

    /// Closes the outputs: moved into place when `keep`, deleted otherwise.
    pub fn finish(&mut self, keep: bool) -> Result<(), PipelineError> {
        let (video, jsonl) = (self.video.take(), self.jsonl.take());
        if !keep {
            return Ok(());
        }
        if let Some(v) = video {
            v.finish().map_err(|e| PipelineError::Sink(e.to_string()))?;
        }
        if let Some(j) = jsonl {
            j.commit()
                .map_err(|e| PipelineError::Sink(format!("writing JSON lines: {e}")))?;
        }
        Ok(())
    }
}
