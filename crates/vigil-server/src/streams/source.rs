//! A [`FrameSource`] that keeps a camera going: reconnects with backoff,
//! loops files, and keeps frame indices and timestamps monotonic across
//! both.
//!
//! Two failure modes are told apart on purpose. A camera that goes silent
//! shows up here, as a read that times out after `stall_timeout_s` (the
//! stream's ring is drop-oldest, so the decoder never waits on the
//! pipeline): the stream is *stalled* and is reconnected. A pipeline that is
//! behind shows up as ring drops, never here: the stream is *blocked* (see
//! the sampler) and reconnecting would not help, so it never triggers one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use vigil_core::Backoff;

use vigil_core::config::{is_network_url, StreamConfig, StreamTransport};
use vigil_core::{FrameIndex, PtsMs};
use vigil_pipeline::{FrameSource, SourceFrame};
use vigil_video::{mask_url, RtspTransport, SourceOptions, VideoError, VideoSource};

use super::status::{StreamState, StreamStatus};
use crate::source_policy::{check_stream_source, CheckedSource, SourcePolicy, GENERIC_REFUSAL};

/// Frame rate assumed for network streams before they connect (it only
/// scales the tracker's lost-track buffer).
pub const ASSUMED_LIVE_FPS: f64 = 25.0;

/// Pacing falls this far behind (a slow decode, a suspended process) before
/// the schedule is reset instead of bursting frames to catch up.
const MAX_PACING_LAG: Duration = Duration::from_secs(1);

pub struct ReconnectingSource {
    cfg: StreamConfig,
    masked: String,
    network: bool,
    status: Arc<StreamStatus>,
    stop: Arc<AtomicBool>,
    inner: Option<VideoSource>,
    fps: f64,
    next_index: u64,
    /// Added to the inner source's pts so time keeps running forward across
    /// loops and reconnects.
    pts_offset: f64,
    last_pts: Option<f64>,
    backoff: Backoff,
    /// Open attempts so far, including the one that produced `first`.
    attempts: u64,
    /// (wall clock, pts) of the frame that anchors file pacing.
    pace_anchor: Option<(Instant, f64)>,
    /// Time slept on purpose (pacing, backoff) in the current `next_frame`.
    idle: Duration,
    /// A looping file reached its end: the next open starts it again and
    /// is not a reconnect (nothing failed).
    rewinding: bool,
    /// Set for streams from API clients: every reconnect checks the source
    /// again (a name can be re-pointed at an internal address after the
    /// first check), files are opened as untrusted, and the reason shown in
    /// the API is generic (the detail is logged) so it cannot serve as an
    /// oracle for ports and paths.
    policy: Option<Arc<SourcePolicy>>,
    /// `server.max_pixels`: a source with larger frames fails.
    max_pixels: u64,
}

impl ReconnectingSource {
    /// `first` is an already opened source (files are opened up front so a
    /// bad path is reported to the caller and the real frame rate is known).
    pub fn new(
        cfg: StreamConfig,
        first: Option<VideoSource>,
        status: Arc<StreamStatus>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let fps = first.as_ref().map_or(ASSUMED_LIVE_FPS, |s| s.info().fps);
        Self {
            masked: mask_url(&cfg.url),
            network: is_network_url(&cfg.url),
            backoff: Backoff::new(secs(cfg.reconnect_initial_s), secs(cfg.reconnect_max_s)),
            attempts: u64::from(first.is_some()),
            cfg,
            status,
            stop,
            inner: first,
            fps,
            next_index: 0,
            pts_offset: 0.0,
            last_pts: None,
            pace_anchor: None,
            idle: Duration::ZERO,
            rewinding: false,
            policy: None,
            max_pixels: u64::MAX,
        }
    }

    /// Caps the frame size (`server.max_pixels`); the default is no cap.
    pub fn with_max_pixels(mut self, max_pixels: u64) -> Self {
        self.max_pixels = max_pixels;
        self
    }

    /// A source whose frames exceed `server.max_pixels` fails for good (a
    /// reconnect would bring the same frames): the message names the size,
    /// never the URL, so API clients see it too.
    fn too_large(&self, width: u32, height: u32) -> String {
        let msg = too_large_message(width, height, self.max_pixels);
        tracing::error!(stream = %self.cfg.id, url = %self.masked, reason = %msg, "stream source refused");
        self.status.set_state(StreamState::Failed, Some(&msg));
        msg
    }

    /// Confines the source to `policy` (see the field).
    pub fn with_policy(mut self, policy: Option<Arc<SourcePolicy>>) -> Self {
        self.policy = policy;
        self
    }

    /// A reason for the stream's status: the real one for the operator's
    /// own streams, the generic one for API streams (detail to the log).
    fn shown(&self, detail: &str) -> String {
        if self.policy.is_some() {
            tracing::warn!(stream = %self.cfg.id, url = %self.masked, reason = %detail, "stream source cannot be opened");
            GENERIC_REFUSAL.to_string()
        } else {
            detail.to_string()
        }
    }

    /// Opens the source; for API streams, checks the policy first (the name
    /// is resolved again on every open: a camera's address may change) and
    /// opens the checked address, never the name (DNS rebinding, see
    /// [`crate::source_policy`]), trying each checked address in turn.
    fn open_checked(&self) -> Result<VideoSource, VideoError> {
        let Some(p) = &self.policy else {
            return Self::open(&self.cfg, false, self.max_pixels);
        };
        let checked =
            check_stream_source(&self.cfg.url, p).map_err(|e| VideoError::StreamOpen {
                url: self.masked.clone(),
                reason: e.to_string(),
            })?;
        let mut last = None;
        for (addr, url) in checked.targets(&self.cfg.url) {
            if let CheckedSource::Network { host, .. } = &checked {
                tracing::info!(
                    stream = %self.cfg.id,
                    host = %host,
                    addr = %addr,
                    url = %mask_url(&url),
                    "stream source pinned to the checked address"
                );
            }
            let cfg = StreamConfig {
                url,
                ..self.cfg.clone()
            };
            match Self::open(&cfg, true, self.max_pixels) {
                Ok(src) => return Ok(src),
                // The frames are too large whichever address sent them.
                Err(e @ VideoError::FrameTooLarge { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| VideoError::StreamOpen {
            url: self.masked.clone(),
            reason: "no address to open".into(),
        }))
    }

    /// Opens the stream's URL with timeouts no longer than the stall timeout,
    /// so a hung camera is noticed within it. `untrusted` for API streams;
    /// frames above `max_pixels` are refused.
    pub fn open(
        cfg: &StreamConfig,
        untrusted: bool,
        max_pixels: u64,
    ) -> Result<VideoSource, VideoError> {
        let stall = secs(cfg.stall_timeout_s);
        let opts = SourceOptions {
            transport: match cfg.transport {
                StreamTransport::Tcp => RtspTransport::Tcp,
                StreamTransport::Udp => RtspTransport::Udp,
            },
            open_timeout: stall,
            read_timeout: stall,
            untrusted,
            max_pixels: Some(max_pixels),
        };
        VideoSource::open(&cfg.url, &opts)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, waking early when the stream is stopped; counted
    /// as idle time, not decoding.
    fn sleep(&mut self, d: Duration) {
        let start = Instant::now();
        let end = start + d;
        while !self.stopped() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
        self.idle += start.elapsed();
    }

    /// Forgets the current connection; the next frame will come from a new one.
    fn lost(&mut self, reason: &str) {
        self.inner = None;
        self.pace_anchor = None;
        // Continue the timeline one frame after the last delivered frame.
        if let Some(last) = self.last_pts {
            self.pts_offset = last + 1000.0 / self.fps;
        }
        self.status
            .set_state(StreamState::Reconnecting, Some(reason));
    }

    /// Waits until a file frame is due at the file's own rate.
    fn pace(&mut self, pts: f64) {
        let now = Instant::now();
        let (t0, p0) = *self.pace_anchor.get_or_insert((now, pts));
        let due = t0 + Duration::from_secs_f64(((pts - p0) / 1000.0).max(0.0));
        if due > now {
            self.sleep(due - now);
        } else if now - due > MAX_PACING_LAG {
            self.pace_anchor = Some((now, pts));
        }
    }
}

/// The stream error for frames above `server.max_pixels`.
pub fn too_large_message(width: u32, height: u32, max_pixels: u64) -> String {
    let pixels = u64::from(width) * u64::from(height);
    format!(
        "frames are {width}x{height} ({pixels} pixels); at most server.max_pixels ({max_pixels}) are accepted"
    )
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(1))
}

impl FrameSource for ReconnectingSource {
    fn next_frame(&mut self) -> Result<Option<SourceFrame>, vigil_pipeline::PipelineError> {
        self.idle = Duration::ZERO;
        loop {
            if self.stopped() {
                return Ok(None);
            }
            if self.inner.is_none() {
                // Every attempt after the first (failed or not) is a
                // reconnect, except starting a looping file over.
                if self.attempts > 0 && !std::mem::take(&mut self.rewinding) {
                    self.status.count_reconnect();
                }
                self.attempts += 1;
                match self.open_checked() {
                    Ok(src) => {
                        if self.next_index == 0 {
                            self.fps = src.info().fps;
                        }
                        self.inner = Some(src);
                    }
                    Err(VideoError::FrameTooLarge { width, height, .. }) => {
                        return Err(vigil_pipeline::PipelineError::Source(
                            self.too_large(width, height),
                        ));
                    }
                    Err(e @ (VideoError::NotFound { .. } | VideoError::NotReadable { .. }))
                        if !self.network =>
                    {
                        // A file that vanished or broke will not heal by
                        // retrying; fail loudly instead of spinning.
                        let msg = self.shown(&e.to_string());
                        self.status.set_state(StreamState::Failed, Some(&msg));
                        return Err(vigil_pipeline::PipelineError::Source(msg));
                    }
                    Err(e) => {
                        // Errors from VideoSource name the masked URL only.
                        let msg = self.shown(&e.to_string());
                        self.status.set_state(StreamState::Reconnecting, Some(&msg));
                        let d = self.backoff.next_delay();
                        tracing::debug!(
                            stream = %self.cfg.id,
                            url = %self.masked,
                            delay_ms = d.as_millis() as u64,
                            "reconnecting after backoff"
                        );
                        self.sleep(d);
                        continue;
                    }
                }
            }
            let Some(inner) = self.inner.as_mut() else {
                continue;
            };
            match inner.read() {
                Ok(Some(f)) => {
                    self.backoff.reset();
                    let mut pts = self.pts_offset + f.pts.0;
                    if let Some(last) = self.last_pts {
                        pts = pts.max(last);
                    }
                    self.last_pts = Some(pts);
                    let index = self.next_index;
                    self.next_index += 1;
                    let (captured_at, captured) = if self.network {
                        (f.captured_at, f.captured)
                    } else {
                        // Files are "captured" when pacing releases them,
                        // so end-to-end latency excludes the pacing wait.
                        self.pace(pts);
                        (SystemTime::now(), Instant::now())
                    };
                    self.status.set_state(StreamState::Running, None);
                    return Ok(Some(SourceFrame {
                        index: FrameIndex(index),
                        pts: PtsMs(pts),
                        captured_at,
                        captured,
                        image: f.image,
                    }));
                }
                Ok(None) if !self.network => {
                    if self.cfg.looping {
                        // Reopen at the start; the timeline continues.
                        self.inner = None;
                        self.rewinding = true;
                        if let Some(last) = self.last_pts {
                            self.pts_offset = last + 1000.0 / self.fps;
                        }
                        continue;
                    }
                    self.status
                        .set_state(StreamState::Stopped, Some("end of file"));
                    return Ok(None);
                }
                Ok(None) => self.lost(&format!(
                    "no frame within {} s (stalled) or disconnected",
                    self.cfg.stall_timeout_s
                )),
                Err(VideoError::FrameTooLarge { width, height, .. }) => {
                    return Err(vigil_pipeline::PipelineError::Source(
                        self.too_large(width, height),
                    ));
                }
                Err(e) => {
                    // Counted for the camera-health monitor (decode_error).
                    self.status.count_decode_error();
                    self.lost(&e.to_string());
                }
            }
        }
    }

    fn is_live(&self) -> bool {
        // Cameras (and looping files standing in for them) drop the oldest
        // frames when the pipeline is behind, so latency stays bounded.
        true
    }

    fn fps(&self) -> f64 {
        self.fps
    }

    fn idle(&self) -> Duration {
        self.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use vigil_core::ImageBgr;

    #[test]
    fn a_looping_file_rewinds_without_a_reconnect_and_its_pacing_is_idle_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("five.avi");
        let mut w = vigil_video::VideoWriter::create(&path, 64, 48, 10.0).unwrap();
        for i in 0..5u8 {
            w.write(&ImageBgr::filled(64, 48, [i * 40, 0, 0])).unwrap();
        }
        w.finish().unwrap();
        let cfg = StreamConfig {
            id: "loop".into(),
            url: path.display().to_string(),
            looping: true,
            ..StreamConfig::default()
        };
        let status = Arc::new(StreamStatus::new("loop", Arc::new(Metrics::new().unwrap())));
        let first = ReconnectingSource::open(&cfg, false, u64::MAX).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut src = ReconnectingSource::new(cfg, Some(first), Arc::clone(&status), stop);
        let mut idle = Duration::ZERO;
        let mut pts = Vec::new();
        // Twelve frames: the five-frame file wraps twice.
        for _ in 0..12 {
            let f = src.next_frame().unwrap().unwrap();
            pts.push(f.pts.0);
            idle += src.idle();
        }
        assert_eq!(status.reconnects(), 0, "a wrap-around is not a reconnect");
        assert!(pts.windows(2).all(|w| w[1] > w[0]), "{pts:?}");
        // Paced at 10 fps, the twelve frames span 1.1 s of schedule; nearly
        // all of it is sleeping, which the decode stage must not count.
        assert!(
            idle >= Duration::from_millis(550),
            "only {idle:?} of pacing reported as idle"
        );
    }

    /// DNS rebinding against an API stream: the name resolves to an allowed
    /// address for the check and to a denied one afterwards. FFmpeg must be
    /// given the checked address (it never resolves the name), and the
    /// reconnect must check the name again and refuse the new answer without
    /// connecting, with the generic reason in the stream's status.
    #[test]
    fn an_api_stream_opens_the_checked_address_and_rechecks_it_on_every_reconnect() {
        let allowed = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = allowed.local_addr().unwrap().port();
        let denied = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        denied.set_nonblocking(true).unwrap();
        let requests = vigil_testkit::record_request_heads(allowed, String::new());
        let lookups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = Arc::clone(&lookups);
        let policy = SourcePolicy::from_config(&vigil_core::config::ServerConfig {
            stream_deny: vec!["127.0.0.1/32".into()],
            ..vigil_core::config::ServerConfig::default()
        })
        .with_resolver(move |host, _| {
            assert_eq!(host, "cam.example");
            let ip = if n.fetch_add(1, Ordering::SeqCst) == 0 {
                "127.0.0.2"
            } else {
                "127.0.0.1"
            };
            Ok(vec![ip.parse().unwrap()])
        });
        let cfg = StreamConfig {
            id: "cam".into(),
            url: format!("rtsp://u:s3cret@cam.example:{port}/live?auth_token=t0k"),
            stall_timeout_s: 2.0,
            reconnect_initial_s: 0.05,
            reconnect_max_s: 0.1,
            ..StreamConfig::default()
        };
        let status = Arc::new(StreamStatus::new("cam", Arc::new(Metrics::new().unwrap())));
        let stop = Arc::new(AtomicBool::new(false));
        let mut src = ReconnectingSource::new(cfg, None, Arc::clone(&status), Arc::clone(&stop))
            .with_policy(Some(Arc::new(policy)));
        let decoder = std::thread::spawn(move || src.next_frame().map(|f| f.is_none()));

        let head = requests
            .recv_timeout(Duration::from_secs(20))
            .expect("FFmpeg connected to the checked address");
        let line = head.lines().next().unwrap_or_default();
        assert!(
            line.contains(&format!("rtsp://127.0.0.2:{port}/live"))
                && !head.contains("cam.example"),
            "FFmpeg was not given the checked address: {head}"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while lookups.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "no re-check on reconnect");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        assert!(matches!(decoder.join().unwrap(), Ok(true)));
        assert!(status.reconnects() >= 2, "{}", status.reconnects());
        assert_eq!(status.error().as_deref(), Some(GENERIC_REFUSAL));
        assert!(
            matches!(denied.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "connected to the denied address"
        );
        assert!(
            requests.try_recv().is_err(),
            "connected to the allowed address again after the name moved"
        );
    }
}
