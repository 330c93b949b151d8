//! The live view of one stream: each processed frame is JPEG-encoded once,
//! on the stream's own post thread, and only while someone watches; every
//! viewer reads the same shared bytes.
//!
//! A `tokio::sync::watch` channel holds only the newest frame, which gives
//! the two properties the console needs for free: a viewer whose socket is
//! slow skips to the newest frame instead of queueing old ones (it gets
//! dropped frames, counted), and the sender never waits for a viewer, so
//! the pipeline cannot be slowed by one.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;
use vigil_core::Detection;
use vigil_pipeline::FrameResult;

use crate::metrics::Metrics;

/// JPEG quality of live frames: the picture is for eyes at tile size, and
/// a smaller frame is faster for every viewer.
const LIVE_JPEG_QUALITY: u8 = 75;

/// One encoded frame as every viewer receives it.
pub struct LiveFrame {
    /// Increases by one per encoded frame, so a viewer can count the frames
    /// it skipped.
    pub seq: u64,
    /// When the frame left the pipeline (start of the live-view latency).
    pub processed: Instant,
    /// The whole WebSocket message: a 4-byte big-endian length, that many
    /// bytes of JSON ([`FrameHeader`]), then the JPEG.
    pub message: Bytes,
}

/// What is drawn over the picture; the boxes are drawn by the browser, so
/// the overlays can be toggled without a second encode.
#[derive(Serialize)]
struct FrameHeader<'a> {
    seq: u64,
    width: u32,
    height: u32,
    pts_ms: f64,
    /// Wall-clock time the frame left the pipeline, Unix milliseconds; a
    /// client on the same clock measures the end-to-end live latency.
    processed_unix_ms: f64,
    objects: &'a [Detection],
}

/// The shared end of a stream's live view.
pub struct LiveFeed {
    stream: String,
    tx: watch::Sender<Option<Arc<LiveFrame>>>,
    seq: std::sync::atomic::AtomicU64,
    metrics: Arc<Metrics>,
}

impl LiveFeed {
    pub fn new(stream: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            stream: stream.to_string(),
            tx: watch::Sender::new(None),
            seq: std::sync::atomic::AtomicU64::new(0),
            metrics,
        }
    }

    /// A new viewer; it sees the latest frame at once (if any) and every
    /// newer one it is fast enough for.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<LiveFrame>>> {
        self.tx.subscribe()
    }

    /// Called by the sink for each processed frame; costs an atomic load
    /// when nobody watches.
    pub fn offer(&self, r: &FrameResult) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let jpeg = match vigil_video::encode_jpeg(&r.frame.image, LIVE_JPEG_QUALITY) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(stream = %self.stream, error = %e, "cannot encode the live frame");
                return;
            }
        };
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let header = FrameHeader {
            seq,
            width: r.frame.image.width(),
            height: r.frame.image.height(),
            pts_ms: r.frame.pts.0,
            processed_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            objects: &r.objects,
        };
        let message = match encode_message(&header, &jpeg) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(stream = %self.stream, error = %e, "cannot encode the live frame header");
                return;
            }
        };
        self.metrics
            .live_frames_encoded
            .with_label_values(&[self.stream.as_str()])
            .inc();
        self.tx.send_replace(Some(Arc::new(LiveFrame {
            seq,
            processed: Instant::now(),
            message,
        })));
    }
}

fn encode_message(header: &FrameHeader<'_>, jpeg: &[u8]) -> Result<Bytes, serde_json::Error> {
    let json = serde_json::to_vec(header)?;
    let mut msg = Vec::with_capacity(4 + json.len() + jpeg.len());
    // A header is a few KB at most (objects of one frame), far below 4 GiB.
    msg.extend_from_slice(&(json.len() as u32).to_be_bytes());
    msg.extend_from_slice(&json);
    msg.extend_from_slice(jpeg);
    Ok(Bytes::from(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::{Frame, FrameIndex, ImageBgr, PtsMs, StreamId};

    fn result(pts: f64) -> FrameResult {
        FrameResult {
            frame: Frame {
                stream: StreamId("s".into()),
                index: FrameIndex(0),
                pts: PtsMs(pts),
                captured_at: SystemTime::now(),
                captured: Instant::now(),
                image: Arc::new(ImageBgr::new(32, 24, vec![90; 32 * 24 * 3]).unwrap()),
            },
            processed: true,
            objects: Vec::new(),
            detections: Vec::new(),
            started_tracks: Vec::new(),
            ended_tracks: Vec::new(),
            timings: Default::default(),
        }
    }

    fn encoded(m: &Metrics) -> u64 {
        m.live_frames_encoded.with_label_values(&["s"]).get()
    }

    #[test]
    fn encodes_only_while_watched_and_once_for_all_viewers() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let feed = LiveFeed::new("s", Arc::clone(&metrics));
        feed.offer(&result(0.0));
        assert_eq!(encoded(&metrics), 0, "nobody watches: nothing encoded");

        let mut a = feed.subscribe();
        let mut b = feed.subscribe();
        feed.offer(&result(40.0));
        assert_eq!(encoded(&metrics), 1, "two viewers, one encode");
        let fa = a.borrow_and_update().clone().unwrap();
        let fb = b.borrow_and_update().clone().unwrap();
        assert!(Arc::ptr_eq(&fa, &fb), "both viewers share the bytes");

        // The message is length + JSON + a JPEG.
        let m = &fa.message;
        let n = u32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize;
        let header: serde_json::Value = serde_json::from_slice(&m[4..4 + n]).unwrap();
        assert_eq!(header["width"], 32);
        assert_eq!(header["pts_ms"], 40.0);
        assert_eq!(&m[4 + n..4 + n + 2], &[0xFF, 0xD8], "JPEG start marker");

        drop((a, b));
        feed.offer(&result(80.0));
        assert_eq!(encoded(&metrics), 1, "viewers gone: encoding stops");
    }

    #[test]
    fn a_slow_viewer_skips_to_the_newest_frame() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let feed = LiveFeed::new("s", metrics);
        let mut slow = feed.subscribe();
        for i in 0..10 {
            feed.offer(&result(f64::from(i) * 40.0));
        }
        // Ten frames were published while it did not read; it gets the
        // newest, and the gap in `seq` is what it counts as dropped.
        let f = slow.borrow_and_update().clone().unwrap();
        assert_eq!(f.seq, 10);
        assert!(!slow.has_changed().unwrap());
    }
}
