//! Decoding video files and network streams into [`DecodedFrame`]s.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use opencv::core::{Mat, Vector};
use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};
use vigil_core::{Frame, FrameIndex, ImageBgr, PtsMs, StreamId};

use crate::container::Container;
use crate::convert::mat_to_image;
use crate::url::{is_live_url, is_network_url, is_rtsp_url, mask_url};
use crate::VideoError;

/// Frame rate assumed when a source declares none (FFmpeg's own default), so
/// timestamps and the output writer still get a usable rate.
const DEFAULT_FPS: f64 = 25.0;

/// How many empty/undecodable frames in a row are tolerated before a source is
/// considered finished; a few glitches are survivable, an endless run is not.
const MAX_CONSECUTIVE_BAD_FRAMES: u32 = 25;

/// FFmpeg "codecs" that render text files (ANSI art, BinText, XBin) as video.
/// FFmpeg happily opens any `.txt` that way, but for a detection service such a
/// file is a user mistake, not a video, so it is rejected like noise.
const TEXT_ART_CODECS: &[&str] = &["ansi", "bint", "xbin"];

/// Process-global FFmpeg capture options read by OpenCV at every open.
const CAPTURE_OPTIONS_ENV: &str = "OPENCV_FFMPEG_CAPTURE_OPTIONS";

/// Guards [`CAPTURE_OPTIONS_ENV`]. OpenCV takes FFmpeg options (the RTSP
/// transport, the protocol whitelist, a forced demuxer) only from this
/// environment variable, which every thread shares. Opens that need the same
/// value run in parallel; one that needs another value waits until the opens
/// in progress are done, and once it waits, newcomers queue behind it so it
/// is not starved by a stream of reconnecting cameras.
static CAPTURE_OPTIONS: OptionsGate = OptionsGate {
    state: Mutex::new(GateState {
        current: None,
        base: None,
        active: 0,
        waiting: 0,
    }),
    changed: Condvar::new(),
};

/// FFmpeg protocols a file may use: the file itself, nothing it names.
const FILE_PROTOCOLS: &str = "file";
/// FFmpeg protocols an RTSP camera needs (TCP interleaved or UDP/RTP; TLS
/// for `rtsps`), and nothing else (no `file`, no `http`).
const RTSP_PROTOCOLS: &str = "tcp,udp,rtp,srtp,tls";
/// FFmpeg protocols an HTTP(S) (MJPEG) camera needs.
const HTTP_PROTOCOLS: &str = "http,https,tcp,tls";

/// How RTP packets travel for `rtsp://` sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtspTransport {
    /// Interleaved in the RTSP TCP connection: survives NAT/firewalls and never
    /// loses packets (no smeared frames), at the cost of some latency. Default.
    #[default]
    Tcp,
    /// Separate UDP ports: lowest latency on a clean LAN, but lost packets show
    /// up as decode artefacts and many networks block it.
    Udp,
}

impl RtspTransport {
    fn as_ffmpeg(self) -> &'static str {
        match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        }
    }
}

/// Knobs for [`VideoSource::open`].
///
/// The timeouts exist because without them FFmpeg waits 30 s on a hung camera,
/// both at open and on every read; a pipeline must notice a dead stream sooner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    /// Only used for `rtsp://`/`rtsps://` URLs.
    pub transport: RtspTransport,
    /// Longest wait for a network stream to connect and deliver its first frame.
    pub open_timeout: Duration,
    /// Longest wait for the next frame of a network stream before giving up.
    pub read_timeout: Duration,
    /// The input comes from someone other than the operator (an upload, a
    /// file named through the API): a file must be one of the plain
    /// containers in [`Container`] and FFmpeg is forced to that demuxer, so
    /// playlists and lists that name other files or URLs are refused.
    pub untrusted: bool,
    /// Frames with more pixels than this fail with
    /// [`VideoError::FrameTooLarge`] (the container's declared size before
    /// the first decode, then every decoded frame); `None` = no cap.
    pub max_pixels: Option<u64>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            transport: RtspTransport::Tcp,
            open_timeout: Duration::from_millis(5000),
            read_timeout: Duration::from_millis(5000),
            untrusted: false,
            max_pixels: None,
        }
    }
}

/// What a source turned out to be, known once it is open.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// Size of the first decoded frame (more trustworthy than container
    /// headers). Later frames are returned as decoded, so a camera that changes
    /// resolution mid-stream shows up in `DecodedFrame::image`, not here.
    pub width: u32,
    pub height: u32,
    /// Declared frame rate; [`DEFAULT_FPS`] (25) when the source declares none.
    pub fps: f64,
    /// Frame count from the container (exact for AVI/MP4, estimated from the
    /// duration for others); `None` for live streams or when unknown.
    pub frame_count: Option<u64>,
    /// Live sources never end on their own and may need reconnecting.
    pub live: bool,
}

/// One decoded frame with the timestamps the pipeline needs.
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    /// Counts from 0 for every frame this source decoded.
    pub index: FrameIndex,
    /// Presentation time from the container, non-decreasing.
    pub pts: PtsMs,
    /// Wall-clock time the frame came out of the decoder.
    pub captured_at: SystemTime,
    /// Monotonic twin of `captured_at`, the start of end-to-end latency.
    pub captured: Instant,
    pub image: ImageBgr,
}

impl DecodedFrame {
    /// Wraps the frame for the pipeline's channels without copying pixels.
    pub fn into_frame(self, stream: StreamId) -> Frame {
        Frame {
            stream,
            index: self.index,
            pts: self.pts,
            captured_at: self.captured_at,
            captured: self.captured,
            image: std::sync::Arc::new(self.image),
        }
    }
}

/// A video file or network stream being decoded frame by frame.
///
/// Opening decodes the first frame eagerly (and keeps it for the first
/// [`read`](VideoSource::read)), so an unreadable input fails at `open` — before
/// the caller creates output files or reports a job as started.
pub struct VideoSource {
    cap: VideoCapture,
    /// Masked URL or path, safe for logs and errors.
    name: String,
    info: SourceInfo,
    buf: Mat,
    pending: Option<DecodedFrame>,
    next_index: u64,
    frames_read: u64,
    decode_errors: u64,
    truncated: bool,
    ended: bool,
    last_pts: Option<f64>,
    first_captured: Option<Instant>,
    /// [`SourceOptions::max_pixels`].
    max_pixels: Option<u64>,
}

impl std::fmt::Debug for VideoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoSource")
            .field("name", &self.name)
            .field("info", &self.info)
            .field("frames_read", &self.frames_read)
            .field("decode_errors", &self.decode_errors)
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

/// [`VideoError::FrameTooLarge`] when `width` × `height` exceeds `max`
/// (0 × 0, an unknown declared size, passes: the decoded frame is checked).
fn check_pixels(name: &str, width: u32, height: u32, max: Option<u64>) -> Result<(), VideoError> {
    match max {
        Some(max) if u64::from(width) * u64::from(height) > max => Err(VideoError::FrameTooLarge {
            source_name: name.to_owned(),
            width,
            height,
            max_pixels: max,
        }),
        _ => Ok(()),
    }
}

impl VideoSource {
    /// Opens a file path (anything FFmpeg can demux and decode) or a network URL
    /// (`rtsp://`, `rtsps://`, `rtmp://`, `http(s)://`, …) and decodes its first
    /// frame.
    ///
    /// Errors name the path or the credential-masked URL: [`VideoError::NotFound`]
    /// for a missing file, [`VideoError::NotReadable`] for a file that yields no
    /// frame, [`VideoError::StreamOpen`] for a stream that does not connect or
    /// deliver a frame within `opts.open_timeout` + `opts.read_timeout`.
    pub fn open(url: &str, opts: &SourceOptions) -> Result<VideoSource, VideoError> {
        let network = is_network_url(url);
        let live = is_live_url(url);
        let name = mask_url(url);
        let file_path = if network {
            None
        } else {
            Some(check_file(url)?)
        };
        let fail = |reason: String| -> VideoError {
            match &file_path {
                Some(p) => VideoError::NotReadable {
                    path: p.clone(),
                    reason,
                },
                None => VideoError::StreamOpen {
                    url: name.clone(),
                    reason,
                },
            }
        };

        let mut params: Vec<i32> = Vec::new();
        if network {
            params.extend_from_slice(&[
                videoio::CAP_PROP_OPEN_TIMEOUT_MSEC,
                millis_i32(opts.open_timeout),
                videoio::CAP_PROP_READ_TIMEOUT_MSEC,
                millis_i32(opts.read_timeout),
            ]);
        }
        let transport = is_rtsp_url(url).then_some(opts.transport);
        let format = match (&file_path, opts.untrusted) {
            (Some(p), true) => Some(
                Container::sniff_file(p)
                    .map_err(|e| fail(e.to_string()))?
                    .ok_or_else(|| {
                        fail(format!(
                            "not a video container vigil accepts ({}); playlists and other \
                             formats are refused",
                            Container::ACCEPTED
                        ))
                    })?,
            ),
            _ => None,
        };
        let options = ffmpeg_options(url, transport, format, opts.untrusted);

        let started = Instant::now();
        tracing::debug!(source = %name, live, ?transport, ?format, "opening video source");
        let cap = open_capture(url, &params, &options).map_err(|e| fail(e.message))?;
        if !cap.is_opened().unwrap_or(false) {
            let reason = if network {
                let waited = started.elapsed();
                if waited + Duration::from_millis(100) >= opts.open_timeout {
                    format!("timed out after {} ms", waited.as_millis())
                } else {
                    format!(
                        "failed after {} ms (refused, unreachable or rejected by the server; \
                         FFmpeg's log says which)",
                        waited.as_millis()
                    )
                }
            } else {
                "FFmpeg cannot open it as a video (unknown format, corrupt, or missing its index)"
                    .to_owned()
            };
            return Err(fail(reason));
        }

        let codec = fourcc_string(cap.get(videoio::CAP_PROP_FOURCC).unwrap_or(0.0));
        if TEXT_ART_CODECS.contains(&codec.to_ascii_lowercase().as_str()) {
            return Err(fail(format!(
                "FFmpeg only recognises it as text rendered to an image (codec {codec:?})"
            )));
        }

        // The declared size, before a frame of it is decoded and held.
        let dim = |prop| {
            let v = cap.get(prop).unwrap_or(0.0);
            if v.is_finite() && v >= 1.0 && v <= f64::from(u32::MAX) {
                v as u32
            } else {
                0
            }
        };
        check_pixels(
            &name,
            dim(videoio::CAP_PROP_FRAME_WIDTH),
            dim(videoio::CAP_PROP_FRAME_HEIGHT),
            opts.max_pixels,
        )?;

        let declared_fps = cap.get(videoio::CAP_PROP_FPS).unwrap_or(0.0);
        let fps = if declared_fps.is_finite() && declared_fps > 0.0 && declared_fps <= 1000.0 {
            declared_fps
        } else {
            tracing::warn!(
                source = %name,
                declared_fps,
                assumed_fps = DEFAULT_FPS,
                "source declares no usable frame rate"
            );
            DEFAULT_FPS
        };
        let frame_count = if live {
            None
        } else {
            let n = cap.get(videoio::CAP_PROP_FRAME_COUNT).unwrap_or(0.0);
            (n.is_finite() && n >= 1.0).then_some(n.round() as u64)
        };

        let mut source = VideoSource {
            cap,
            name: name.clone(),
            info: SourceInfo {
                width: 0,
                height: 0,
                fps,
                frame_count,
                live,
            },
            buf: Mat::default(),
            pending: None,
            next_index: 0,
            frames_read: 0,
            decode_errors: 0,
            truncated: false,
            ended: false,
            last_pts: None,
            first_captured: None,
            max_pixels: opts.max_pixels,
        };

        let first = match source.decode_next() {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                let reason = if network {
                    format!(
                        "connected but no frame arrived within {} ms",
                        started.elapsed().as_millis()
                    )
                } else {
                    "no frame could be decoded from it".to_owned()
                };
                return Err(fail(reason));
            }
            Err(e @ VideoError::FrameTooLarge { .. }) => return Err(e),
            Err(e) => return Err(fail(e.to_string())),
        };
        source.info.width = first.image.width();
        source.info.height = first.image.height();
        source.pending = Some(first);

        tracing::info!(
            source = %name,
            width = source.info.width,
            height = source.info.height,
            fps = source.info.fps,
            frame_count = ?source.info.frame_count,
            live,
            codec = %codec,
            open_ms = started.elapsed().as_millis() as u64,
            "video source opened"
        );
        Ok(source)
    }

    /// [`open`](Self::open) for a local path with default options; paths that
    /// are not UTF-8 are rejected because OpenCV takes the name as a C string.
    pub fn open_file(path: &Path) -> Result<VideoSource, VideoError> {
        match path.to_str() {
            Some(s) => VideoSource::open(s, &SourceOptions::default()),
            None => Err(VideoError::NotReadable {
                path: path.to_path_buf(),
                reason: "the path is not valid UTF-8".to_owned(),
            }),
        }
    }

    /// Properties fixed at open time.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// The masked URL or path, for the caller's own log lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the next frame, or `Ok(None)` once the file or stream has ended.
    ///
    /// A file that stops decoding part-way (truncated download, damaged tail)
    /// ends with `Ok(None)` after its last good frame rather than an error,
    /// because the frames before it are still worth processing; the shortfall is
    /// logged and visible through [`truncated`](Self::truncated). A live stream
    /// that stalls for longer than the read timeout or disconnects also ends with
    /// `Ok(None)` (callers reconnect if [`SourceInfo::live`]); an OpenCV error on
    /// a live stream is returned as [`VideoError::Read`]. After the end every call
    /// returns `Ok(None)` without touching the decoder again.
    pub fn read(&mut self) -> Result<Option<DecodedFrame>, VideoError> {
        if let Some(frame) = self.pending.take() {
            self.frames_read += 1;
            return Ok(Some(frame));
        }
        if self.ended {
            return Ok(None);
        }
        match self.decode_next()? {
            Some(frame) => {
                self.frames_read += 1;
                Ok(Some(frame))
            }
            None => {
                self.finish_stream();
                Ok(None)
            }
        }
    }

    /// Frames handed out by [`read`](Self::read) so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Frames the decoder reported but could not turn into an image, plus a
    /// decoder error that ended a file early.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors
    }

    /// True once a file has ended clearly short of its declared frame count (or
    /// after a decoder error), i.e. the output covers only part of the input.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Called once when the decoder runs dry: decides and logs whether the
    /// end was normal.
    fn finish_stream(&mut self) {
        self.ended = true;
        if self.info.live {
            tracing::warn!(
                source = %self.name,
                frames_read = self.frames_read,
                "live stream ended or stalled past the read timeout"
            );
            return;
        }
        if let Some(expected) = self.info.frame_count {
            // Counts of containers without an index are estimated from the
            // duration, so a frame or so of shortfall is not evidence of damage.
            let tolerance = (expected / 200).max(1);
            if self.frames_read + tolerance < expected {
                self.truncated = true;
            }
        }
        if self.truncated {
            tracing::warn!(
                source = %self.name,
                frames_read = self.frames_read,
                expected_frames = ?self.info.frame_count,
                decode_errors = self.decode_errors,
                "video file ended early; it is probably truncated or damaged"
            );
        } else {
            tracing::debug!(
                source = %self.name,
                frames_read = self.frames_read,
                decode_errors = self.decode_errors,
                "end of video file"
            );
        }
    }

    /// Pulls one frame out of OpenCV, skipping (and counting) undecodable ones.
    fn decode_next(&mut self) -> Result<Option<DecodedFrame>, VideoError> {
        let mut bad_in_a_row = 0u32;
        loop {
            match self.cap.read(&mut self.buf) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) if self.info.live => {
                    return Err(VideoError::Read {
                        source_name: self.name.clone(),
                        reason: e.message,
                    });
                }
                Err(e) => {
                    self.decode_errors += 1;
                    self.truncated = true;
                    tracing::warn!(
                        source = %self.name,
                        frame = self.next_index,
                        error = %e.message,
                        "decoder error; ending the file here"
                    );
                    return Ok(None);
                }
            }
            let captured_at = SystemTime::now();
            let captured = Instant::now();
            let image = if self.buf.empty() {
                Err("decoder returned an empty frame".to_owned())
            } else {
                mat_to_image(&self.buf)
            };
            match image {
                Ok(image) => {
                    check_pixels(&self.name, image.width(), image.height(), self.max_pixels)?;
                    let index = self.next_index;
                    self.next_index += 1;
                    let pts = self.next_pts(index, captured);
                    return Ok(Some(DecodedFrame {
                        index: FrameIndex(index),
                        pts: PtsMs(pts),
                        captured_at,
                        captured,
                        image,
                    }));
                }
                Err(reason) => {
                    self.decode_errors += 1;
                    bad_in_a_row += 1;
                    tracing::warn!(
                        source = %self.name,
                        frame = self.next_index,
                        error = %reason,
                        "skipping undecodable frame"
                    );
                    if bad_in_a_row >= MAX_CONSECUTIVE_BAD_FRAMES {
                        self.truncated = !self.info.live;
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Presentation time of the frame just decoded.
    ///
    /// Prefers the container timestamp; when that is missing (reported as 0),
    /// invalid or goes backwards, falls back to `index / fps` for files and to
    /// elapsed capture time for live streams (whose declared rate is often
    /// wrong). Always clamped so timestamps never decrease.
    fn next_pts(&mut self, index: u64, captured: Instant) -> f64 {
        let first = *self.first_captured.get_or_insert(captured);
        let raw = self.cap.get(videoio::CAP_PROP_POS_MSEC).unwrap_or(f64::NAN);
        let usable = raw.is_finite()
            && raw >= 0.0
            && (raw > 0.0 || index == 0)
            && self.last_pts.is_none_or(|last| raw > last);
        let pts = if usable {
            raw
        } else if self.info.live {
            self.last_pts
                .unwrap_or(0.0)
                .max(captured.duration_since(first).as_secs_f64() * 1000.0)
        } else {
            index as f64 * 1000.0 / self.info.fps
        };
        let pts = self.last_pts.map_or(pts, |last| pts.max(last));
        self.last_pts = Some(pts);
        pts
    }
}

/// Rejects missing paths, directories and empty files before FFmpeg sees them,
/// so the error says exactly what is wrong instead of a generic open failure.
fn check_file(url: &str) -> Result<PathBuf, VideoError> {
    let path = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
    if url.trim().is_empty() {
        return Err(VideoError::NotReadable {
            path,
            reason: "no path or URL was given".to_owned(),
        });
    }
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(VideoError::NotFound { path }),
        Err(e) => Err(VideoError::NotReadable {
            path,
            reason: e.to_string(),
        }),
        Ok(m) if m.is_dir() => Err(VideoError::NotReadable {
            path,
            reason: "it is a directory".to_owned(),
        }),
        Ok(m) if m.len() == 0 => Err(VideoError::NotReadable {
            path,
            reason: "the file is empty".to_owned(),
        }),
        Ok(_) => Ok(path),
    }
}

/// OpenCV reports the codec as a FOURCC packed into a double (little-endian
/// characters); unprintable bytes are dropped.
fn fourcc_string(value: f64) -> String {
    if !value.is_finite() || value <= 0.0 {
        return String::new();
    }
    (value as u32)
        .to_le_bytes()
        .iter()
        .filter(|b| b.is_ascii_graphic())
        .map(|&b| char::from(b))
        .collect()
}

fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1)
}

/// The FFmpeg options an open needs: the RTSP transport (OpenCV's own
/// default is TCP), a protocol whitelist that fits the kind of source, and a
/// forced demuxer for untrusted files. Other schemes (from the operator's
/// config only) keep FFmpeg's defaults.
///
/// An untrusted `http(s)` source follows no redirect (`max_redirects` 0): a
/// camera's `302 Location: http://169.254.169.254/…` would otherwise send
/// FFmpeg past the source policy, which checked only the first address.
/// (FFmpeg's RTSP client has no such switch; see the README's security
/// section.)
fn ffmpeg_options(
    url: &str,
    transport: Option<RtspTransport>,
    format: Option<Container>,
    untrusted: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut o = vec![("rtsp_transport", transport.unwrap_or_default().as_ffmpeg())];
    let lower = url.trim_start().to_ascii_lowercase();
    let protocols = if !is_network_url(url) {
        Some(FILE_PROTOCOLS)
    } else if is_rtsp_url(url) {
        Some(RTSP_PROTOCOLS)
    } else if lower.starts_with("http://") || lower.starts_with("https://") {
        Some(HTTP_PROTOCOLS)
    } else {
        None
    };
    if let Some(p) = protocols {
        o.push(("protocol_whitelist", p));
    }
    if untrusted && protocols == Some(HTTP_PROTOCOLS) {
        o.push(("max_redirects", "0"));
    }
    if let Some(f) = format {
        o.push(("input_format", f.ffmpeg_format()));
    }
    o
}

/// Opens the capture with FFmpeg, with `options` in the process-global
/// options variable for the duration of the open.
fn open_capture(
    url: &str,
    params: &[i32],
    options: &[(&'static str, &'static str)],
) -> opencv::Result<VideoCapture> {
    let params = Vector::<i32>::from_slice(params);
    // Files are handed over by path; FFmpeg also accepts `file:` URLs but the
    // plain path is what the existence check looked at.
    let target = url.strip_prefix("file://").unwrap_or(url);
    let _open = CAPTURE_OPTIONS.enter(options);
    VideoCapture::from_file_with_params(target, videoio::CAP_FFMPEG, &params)
}

struct OptionsGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

struct GateState {
    /// The value this process last put in the variable (`None`: not yet).
    current: Option<String>,
    /// The operator's own value from before the first open (kept, with our
    /// keys replaced); `Some(None)` once read and found unset.
    base: Option<Option<String>>,
    /// Opens in progress with `current`.
    active: usize,
    /// Opens waiting for another value.
    waiting: usize,
}

impl OptionsGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The state stays consistent under panics (plain counters), so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the variable holds `options` (merged into the operator's
    /// own) and counts this open in; the guard counts it out.
    fn enter(&self, options: &[(&'static str, &'static str)]) -> GateGuard<'_> {
        let mut s = self.lock();
        let base = s
            .base
            .get_or_insert_with(|| std::env::var(CAPTURE_OPTIONS_ENV).ok())
            .clone();
        let want = merge_capture_options(base.as_deref(), options);
        loop {
            if s.active == 0 {
                if s.current.as_deref() != Some(want.as_str()) {
                    tracing::trace!(options = %want, "setting FFmpeg capture options");
                    std::env::set_var(CAPTURE_OPTIONS_ENV, &want);
                    s.current = Some(want);
                }
                break;
            }
            if s.waiting == 0 && s.current.as_deref() == Some(want.as_str()) {
                break;
            }
            s.waiting += 1;
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
            s.waiting -= 1;
        }
        s.active += 1;
        GateGuard(self)
    }
}

struct GateGuard<'a>(&'a OptionsGate);

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.active -= 1;
        if s.active == 0 {
            self.0.changed.notify_all();
        }
    }
}

/// The options string: the operator's own `key;value|key;value` entries
/// (from the variable as it was at the first open) with our keys replaced.
fn merge_capture_options(base: Option<&str>, ours: &[(&str, &str)]) -> String {
    let mut entries: Vec<String> = base
        .unwrap_or_default()
        .split('|')
        .filter(|e| !e.trim().is_empty())
        .filter(|e| {
            let key = e.split(';').next().map(str::trim).unwrap_or_default();
            !ours.iter().any(|(k, _)| *k == key)
        })
        .map(str::to_owned)
        .collect();
    entries.extend(ours.iter().map(|(k, v)| format!("{k};{v}")));
    entries.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_options_keep_the_operators_and_confine_by_kind() {
        let file = ffmpeg_options("data/a.mp4", None, Some(Container::Mp4), true);
        assert_eq!(
            merge_capture_options(None, &file),
            "rtsp_transport;tcp|protocol_whitelist;file|input_format;mov"
        );
        let rtsp = ffmpeg_options("rtsp://h/s", Some(RtspTransport::Udp), None, true);
        assert_eq!(
            merge_capture_options(Some("stimeout;100|rtsp_transport;tcp"), &rtsp),
            "stimeout;100|rtsp_transport;udp|protocol_whitelist;tcp,udp,rtp,srtp,tls"
        );
        let http = ffmpeg_options("HTTPS://cam/mjpeg", None, None, false);
        assert!(
            merge_capture_options(None, &http).ends_with("protocol_whitelist;http,https,tcp,tls")
        );
        // From an API client: no redirects past the source policy.
        let http = ffmpeg_options("http://cam/mjpeg", None, None, true);
        assert!(merge_capture_options(None, &http)
            .ends_with("protocol_whitelist;http,https,tcp,tls|max_redirects;0"));
        // Operator-configured exotic schemes keep FFmpeg's defaults.
        let srt = ffmpeg_options("srt://h:9000", None, None, false);
        assert_eq!(merge_capture_options(None, &srt), "rtsp_transport;tcp");
    }

    #[test]
    fn source_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<VideoSource>();
        assert_send::<DecodedFrame>();
    }

    #[test]
    fn fourcc_decodes_little_endian() {
        let v = u32::from_le_bytes(*b"avc1");
        assert_eq!(fourcc_string(f64::from(v)), "avc1");
        assert_eq!(fourcc_string(0.0), "");
        assert_eq!(fourcc_string(f64::NAN), "");
    }

    #[test]
    fn millis_saturate() {
        assert_eq!(millis_i32(Duration::from_secs(u64::MAX / 2000)), i32::MAX);
        assert_eq!(millis_i32(Duration::ZERO), 1);
    }
}
