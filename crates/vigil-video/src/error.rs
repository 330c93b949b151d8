use std::path::PathBuf;

/// Everything that can go wrong opening, reading, writing or encoding video.
///
/// Variants carry the (credential-masked) URL or path so an operator reading a
/// single log line knows which camera or file is at fault without correlating.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// Separate from [`VideoError::NotReadable`] because the fix differs: a typo
    /// in a path versus a file in a format FFmpeg cannot decode.
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },

    /// The file exists but FFmpeg could not open it or decode a single frame
    /// from it (random bytes, a text file, an MP4 cut before its index).
    #[error("{path}: not a readable video ({reason})")]
    NotReadable { path: PathBuf, reason: String },

    /// A network stream could not be opened (refused, unreachable, timed out,
    /// or it delivered no frame). `url` is masked.
    #[error("cannot open stream {url}: {reason}")]
    StreamOpen { url: String, reason: String },

    /// OpenCV raised an error while reading from an already-open live stream.
    /// `source_name` is masked.
    #[error("{source_name}: read failed: {reason}")]
    Read { source_name: String, reason: String },

    /// The annotated-output writer could not be created or finalised.
    #[error("{path}: cannot write video: {reason}")]
    Write { path: PathBuf, reason: String },

    /// A frame of another size was handed to a writer; encoders cannot change
    /// resolution mid-file, so this is an error rather than a silent resize.
    #[error("frame is {got_width}x{got_height} but the writer was created for {width}x{height}")]
    SizeMismatch {
        width: u32,
        height: u32,
        got_width: u32,
        got_height: u32,
    },

    /// The source's frames are larger than the caller's `max_pixels`: it is
    /// refused (declared size checked before decoding, every decoded frame
    /// after), so one camera or file cannot make the daemon hold frames of
    /// any size. `source_name` is masked.
    #[error("{source_name}: frames are {width}x{height} ({} pixels); at most max_pixels ({max_pixels}) are accepted", u64::from(*width) * u64::from(*height))]
    FrameTooLarge {
        source_name: String,
        width: u32,
        height: u32,
        max_pixels: u64,
    },

    /// Still-image encoding (snapshots) failed.
    #[error("cannot encode image: {0}")]
    Encode(String),
}
