//! Encoding annotated frames to a video file, atomically.

use std::path::{Path, PathBuf};

use opencv::core::Size;
use opencv::prelude::*;
use opencv::videoio;
use vigil_core::ImageBgr;

use crate::convert::borrow_mat;
use crate::VideoError;

/// One codec to try for a container, in order of preference.
struct CodecChoice {
    fourcc: [char; 4],
    name: &'static str,
}

/// Codecs to try per output extension. H.264 first because every player and
/// browser plays it; MPEG-4 Part 2 as the fallback when OpenCV's FFmpeg lacks
/// an H.264 encoder (it is always built in).
fn codecs_for(ext: &str) -> Option<&'static [CodecChoice]> {
    const MP4: &[CodecChoice] = &[
        CodecChoice {
            fourcc: ['a', 'v', 'c', '1'],
            name: "h264",
        },
        CodecChoice {
            fourcc: ['m', 'p', '4', 'v'],
            name: "mpeg4",
        },
    ];
    const AVI: &[CodecChoice] = &[CodecChoice {
        fourcc: ['M', 'J', 'P', 'G'],
        name: "mjpeg",
    }];
    match ext {
        "mp4" | "m4v" | "mov" | "mkv" => Some(MP4),
        "avi" => Some(AVI),
        _ => None,
    }
}

/// Writes annotated frames to a temporary sibling file and moves it onto the
/// requested path only in [`finish`](VideoWriter::finish).
///
/// A crash, an error or an early return therefore never leaves a half-written
/// (unplayable, moov-less) file at the output path that a user or a later job
/// could mistake for a result; dropping an unfinished writer deletes the
/// temporary file.
pub struct VideoWriter {
    inner: Option<videoio::VideoWriter>,
    path: PathBuf,
    temp_path: PathBuf,
    width: u32,
    height: u32,
    codec: &'static str,
    frames: u64,
}

impl std::fmt::Debug for VideoWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoWriter")
            .field("path", &self.path)
            .field("codec", &self.codec)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl VideoWriter {
    /// Opens an encoder for `width`×`height` frames at `fps`.
    ///
    /// The container follows the extension (`.mp4`/`.m4v`/`.mov`/`.mkv` get
    /// H.264, falling back to MPEG-4 Part 2 with a warning; `.avi` gets MJPEG).
    /// The encoder is verified to be open here so a missing codec or an
    /// unwritable directory is reported before any frame is processed.
    /// OpenCV drops the last column/row of odd-sized frames (4:2:0 chroma needs
    /// even sizes), so such a file comes out one pixel narrower/shorter.
    pub fn create(
        path: &Path,
        width: u32,
        height: u32,
        fps: f64,
    ) -> Result<VideoWriter, VideoError> {
        let err = |reason: String| VideoError::Write {
            path: path.to_path_buf(),
            reason,
        };
        if width == 0 || height == 0 || width > i32::MAX as u32 || height > i32::MAX as u32 {
            return Err(err(format!("invalid frame size {width}x{height}")));
        }
        if !(fps.is_finite() && fps > 0.0) {
            return Err(err(format!("invalid frame rate {fps}")));
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let Some(codecs) = codecs_for(&ext) else {
            return Err(err(format!(
                "unsupported output extension {ext:?} (use .mp4, .m4v, .mov, .mkv or .avi)"
            )));
        };
        Self::create_with_codecs(path, width, height, fps, codecs)
    }

    /// `create` with an explicit codec preference list, so tests can exercise
    /// the fallback path on machines that do have H.264.
    fn create_with_codecs(
        path: &Path,
        width: u32,
        height: u32,
        fps: f64,
        codecs: &[CodecChoice],
    ) -> Result<VideoWriter, VideoError> {
        let err = |reason: String| VideoError::Write {
            path: path.to_path_buf(),
            reason,
        };
        let temp_path =
            temp_sibling(path).ok_or_else(|| err("path has no file name".to_owned()))?;
        if let Some(dir) = temp_path.parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(err(format!("directory {} does not exist", dir.display())));
            }
        }
        // A leftover from a crashed run would otherwise be appended to or confuse
        // the existence check below.
        let _ = std::fs::remove_file(&temp_path);
        let temp_str = temp_path
            .to_str()
            .ok_or_else(|| err("the path is not valid UTF-8".to_owned()))?
            .to_owned();

        let size = Size::new(width as i32, height as i32);
        let mut failures: Vec<String> = Vec::new();
        for choice in codecs {
            let [a, b, c, d] = choice.fourcc;
            let fourcc = videoio::VideoWriter::fourcc(a, b, c, d)
                .map_err(|e| err(format!("fourcc: {}", e.message)))?;
            let attempt = videoio::VideoWriter::new_with_backend(
                &temp_str,
                videoio::CAP_FFMPEG,
                fourcc,
                fps,
                size,
                true,
            );
            let why = match attempt {
                Ok(w) if w.is_opened().unwrap_or(false) => {
                    if !failures.is_empty() {
                        tracing::warn!(
                            path = %path.display(),
                            codec = choice.name,
                            failed = %failures.join("; "),
                            "preferred video codec unavailable; using fallback"
                        );
                    }
                    tracing::debug!(
                        path = %path.display(),
                        codec = choice.name,
                        width,
                        height,
                        fps,
                        "video writer opened"
                    );
                    return Ok(VideoWriter {
                        inner: Some(w),
                        path: path.to_path_buf(),
                        temp_path,
                        width,
                        height,
                        codec: choice.name,
                        frames: 0,
                    });
                }
                Ok(_) => {
                    "encoder did not open (codec missing in this FFmpeg build, or size unsupported)"
                        .to_owned()
                }
                Err(e) => e.message,
            };
            failures.push(format!("{}: {why}", choice.name));
            let _ = std::fs::remove_file(&temp_path);
        }
        Err(err(format!("no usable codec: {}", failures.join("; "))))
    }

    /// Which codec the encoder ended up with (`"h264"`, `"mpeg4"`, `"mjpeg"`),
    /// so callers can report a fallback to the user.
    pub fn codec(&self) -> &str {
        self.codec
    }

    /// Frames accepted so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// The final output path (the file appears there only after `finish`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encodes one frame; its size must match the one given to `create`
    /// because encoders cannot change resolution mid-file.
    pub fn write(&mut self, img: &ImageBgr) -> Result<(), VideoError> {
        if img.width() != self.width || img.height() != self.height {
            return Err(VideoError::SizeMismatch {
                width: self.width,
                height: self.height,
                got_width: img.width(),
                got_height: img.height(),
            });
        }
        let err = |reason: String| VideoError::Write {
            path: self.path.clone(),
            reason,
        };
        let Some(inner) = self.inner.as_mut() else {
            return Err(err("writer already closed".to_owned()));
        };
        let mat = borrow_mat(img).map_err(|e| err(e.message))?;
        inner.write(&mat).map_err(|e| err(e.message))?;
        self.frames += 1;
        Ok(())
    }

    /// Flushes the encoder, closes the container and moves the file onto the
    /// output path. Returns the number of frames written.
    pub fn finish(mut self) -> Result<u64, VideoError> {
        let err = |reason: String| VideoError::Write {
            path: self.path.clone(),
            reason,
        };
        if let Some(mut inner) = self.inner.take() {
            inner
                .release()
                .map_err(|e| err(format!("closing the encoder: {}", e.message)))?;
        }
        match std::fs::metadata(&self.temp_path) {
            Ok(m) if m.len() > 0 => {}
            Ok(_) => return Err(err("encoder produced an empty file".to_owned())),
            Err(e) => return Err(err(format!("encoder output missing: {e}"))),
        }
        vigil_core::fsutil::rename_durable(&self.temp_path, &self.path).map_err(|e| {
            err(format!(
                "moving {} into place: {e}",
                self.temp_path.display()
            ))
        })?;
        tracing::info!(
            path = %self.path.display(),
            codec = self.codec,
            frames = self.frames,
            "video written"
        );
        Ok(self.frames)
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        if let Some(mut inner) = self.inner.take() {
            // Not finished: close the encoder so the file handle is gone, then
            // discard the partial output.
            let _ = inner.release();
        }
        if self.temp_path.exists() {
            match std::fs::remove_file(&self.temp_path) {
                Ok(()) => tracing::debug!(
                    path = %self.path.display(),
                    frames = self.frames,
                    "unfinished video output discarded"
                ),
                Err(e) => tracing::warn!(
                    path = %self.temp_path.display(),
                    error = %e,
                    "could not remove unfinished video output"
                ),
            }
        }
    }
}

/// `dir/.name.partial.ext`: hidden, in the same directory (so the final rename
/// is atomic on one filesystem) and with the same extension (OpenCV picks the
/// container from it).
fn temp_sibling(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_str()?;
    let ext = path.extension()?.to_str()?;
    Some(path.with_file_name(format!(".{stem}.partial.{ext}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_back_when_the_preferred_codec_does_not_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("fallback.mp4");
        let codecs = [
            CodecChoice {
                fourcc: ['z', 'z', 'z', 'z'],
                name: "bogus",
            },
            CodecChoice {
                fourcc: ['m', 'p', '4', 'v'],
                name: "mpeg4",
            },
        ];
        let mut w =
            VideoWriter::create_with_codecs(&out, 320, 240, 10.0, &codecs).expect("fallback opens");
        assert_eq!(w.codec(), "mpeg4");
        for _ in 0..4 {
            w.write(&ImageBgr::filled(320, 240, [0, 0, 255]))
                .expect("write");
        }
        assert_eq!(w.finish().expect("finish"), 4);
        let probe = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name",
                "-of",
                "csv=p=0",
            ])
            .arg(&out)
            .output()
            .expect("ffprobe installed");
        assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "mpeg4");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "no temp files left behind");
    }

    #[test]
    fn writer_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<VideoWriter>();
    }

    #[test]
    fn temp_sibling_keeps_dir_and_extension() {
        assert_eq!(
            temp_sibling(Path::new("/out/run.mp4")),
            Some(PathBuf::from("/out/.run.partial.mp4"))
        );
        assert_eq!(
            temp_sibling(Path::new("a.b.MKV")),
            Some(PathBuf::from(".a.b.partial.MKV"))
        );
        assert_eq!(temp_sibling(Path::new("noext")), None);
    }
}
