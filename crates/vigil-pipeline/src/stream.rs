//! The per-stream half of the pipeline: a decoder thread feeding the ring,
//! and a post thread that restores source order, tracks, and feeds the sink.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use vigil_core::config::MotionConfig;
use vigil_core::{Detection, Frame, StreamId};

use crate::engine::{Decoded, Priority, StreamCtx};
use crate::motion::{MotionMask, Stationary};
use crate::ring::Pushed;
use crate::skip::SkipPolicy;
use crate::types::{
    FrameResult, FrameSink, FrameSource, StreamStats, StreamSummary, Timings, TrackStage,
};

/// Per-stream settings.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub id: StreamId,
    pub skip: SkipPolicy,
    /// Ring buffer size in frames.
    pub ring_capacity: usize,
    /// Most frames of this stream between the ring and its sink (waiting
    /// for inference, or for an earlier frame so order can be kept).
    pub max_in_flight: usize,
    /// Motion gating; `None` (the default) runs every selected frame.
    pub motion: Option<MotionConfig>,
    /// Where motion never counts (class-agnostic masks).
    pub motion_masks: Vec<MotionMask>,
    /// The scheduler class; `None` = live for live sources, else background.
    pub priority: Option<Priority>,
}

impl StreamOptions {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: StreamId(id.into()),
            skip: SkipPolicy::Every(1),
            ring_capacity: 8,
            max_in_flight: 32,
            motion: None,
            motion_masks: Vec::new(),
            priority: None,
        }
    }
}

/// Messages to a stream's post thread, tagged with the scheduler's sequence
/// number so they can be put back into source order.
pub(crate) enum PostMsg {
    Processed {
        seq: u64,
        frame: Frame,
        detections: Vec<Detection>,
        timings: Timings,
    },
    Skipped {
        seq: u64,
        frame: Frame,
        decode: Duration,
        /// Selected by the skip policy but gated out: nothing moved.
        still: bool,
    },
    Failed {
        seq: u64,
        frame: Frame,
        error: String,
    },
    /// The scheduler handed out `total` sequence numbers; none follow.
    End { total: u64 },
}

/// Controls one running stream.
pub struct StreamHandle {
    id: StreamId,
    stop: Arc<AtomicBool>,
    stats: Arc<StreamStats>,
    decoder: Option<JoinHandle<()>>,
    post: Option<JoinHandle<StreamSummary>>,
}

impl StreamHandle {
    pub fn id(&self) -> &StreamId {
        &self.id
    }

    pub fn stats(&self) -> &Arc<StreamStats> {
        &self.stats
    }

    /// Asks the decoder to stop; frames already decoded still flow through,
    /// so the sink sees a clean end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// A clonable stop switch, e.g. for a Ctrl-C handler.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    pub fn is_finished(&self) -> bool {
        self.post.as_ref().is_none_or(|p| p.is_finished())
    }

    /// Waits for the stream to end and the sink to finish.
    pub fn join(mut self) -> StreamSummary {
        if let Some(d) = self.decoder.take() {
            let _ = d.join();
        }
        match self.post.take().map(JoinHandle::join) {
            Some(Ok(summary)) => summary,
            _ => {
                let mut s = self.stats.summary(self.stop.load(Ordering::SeqCst));
                s.error
                    .get_or_insert_with(|| "stream thread panicked".into());
                s
            }
        }
    }
}

pub(crate) fn spawn(
    ctx: Arc<StreamCtx>,
    source: Box<dyn FrameSource>,
    sink: Box<dyn FrameSink>,
    tracker: Option<Box<dyn TrackStage>>,
    post_rx: Receiver<PostMsg>,
    wake_tx: Sender<()>,
) -> StreamHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::clone(&ctx.stats);
    let id = ctx.id.clone();
    let decoder = {
        let ctx = Arc::clone(&ctx);
        let stop = Arc::clone(&stop);
        let wake_tx = wake_tx.clone();
        std::thread::Builder::new()
            .name(format!("vigil-decode-{}", ctx.id))
            .spawn(move || decode_loop(&ctx, source, &stop, &wake_tx))
    };
    let post = {
        let stop = Arc::clone(&stop);
        let ctx2 = Arc::clone(&ctx);
        std::thread::Builder::new()
            .name(format!("vigil-post-{}", ctx.id))
            .spawn(move || post_loop(&ctx2, &post_rx, sink, tracker, &stop, &wake_tx))
    };
    let (decoder, post) = match (decoder, post) {
        (Ok(d), Ok(p)) => (Some(d), Some(p)),
        (d, p) => {
            ctx.stats.set_error("cannot spawn stream threads".into());
            ctx.ring.close();
            (d.ok(), p.ok())
        }
    };
    StreamHandle {
        id,
        stop,
        stats,
        decoder,
        post,
    }
}

fn decode_loop(
    ctx: &StreamCtx,
    mut source: Box<dyn FrameSource>,
    stop: &AtomicBool,
    wake_tx: &Sender<()>,
) {
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        match source.next_frame() {
            Ok(Some(f)) => {
                let decode = t.elapsed().saturating_sub(source.idle());
                ctx.stats.decoded.fetch_add(1, Ordering::Relaxed);
                let unix_ms = f
                    .captured_at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                ctx.stats
                    .last_frame_unix_ms
                    .store(unix_ms, Ordering::Relaxed);
                let frame = Frame {
                    stream: ctx.id.clone(),
                    index: f.index,
                    pts: f.pts,
                    captured_at: f.captured_at,
                    captured: f.captured,
                    image: Arc::new(f.image),
                };
                if ctx.ring.push(Decoded { frame, decode }) == Pushed::Closed {
                    break;
                }
                let _ = wake_tx.try_send(());
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(stream = %ctx.id, error = %e, "source failed");
                ctx.stats.set_error(e);
                break;
            }
        }
    }
    ctx.ring.close();
    let _ = wake_tx.try_send(());
}

/// Restores source order and applies tracking before handing frames to the sink.
fn post_loop(
    ctx: &StreamCtx,
    rx: &Receiver<PostMsg>,
    mut sink: Box<dyn FrameSink>,
    mut tracker: Option<Box<dyn TrackStage>>,
    stop: &AtomicBool,
    wake_tx: &Sender<()>,
) -> StreamSummary {
    let (id, stats) = (&ctx.id, &*ctx.stats);
    let mut pending: BTreeMap<u64, PostMsg> = BTreeMap::new();
    let mut next = 0u64;
    let mut total: Option<u64> = None;
    let mut state = PostState {
        stationary: ctx
            .motion_enabled()
            .then(|| Stationary::new(ctx.motion_stationary_after_s())),
        ..PostState::default()
    };
    let mut sink_ok = true;
    while total != Some(next) {
        let Ok(msg) = rx.recv() else { break };
        match msg {
            PostMsg::End { total: t } => total = Some(t),
            PostMsg::Processed { seq, .. }
            | PostMsg::Skipped { seq, .. }
            | PostMsg::Failed { seq, .. } => {
                pending.insert(seq, msg);
            }
        }
        while let Some(msg) = pending.remove(&next) {
            let seq = next;
            next += 1;
            // This frame leaves the pipeline with this iteration; let the
            // scheduler take another one from the ring.
            let _release = InFlight(ctx, wake_tx);
            let result = state.handle(ctx, msg, tracker.as_deref_mut());
            if state.stationary.is_some() {
                // The gate may ask again about what this frame was run for.
                ctx.feedback
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .answered = Some(seq);
            }
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(stream = %id, error = %e, "frame failed");
                    stats.set_error(e);
                    stop.store(true, Ordering::SeqCst);
                    continue;
                }
            };
            if sink_ok {
                if let Err(e) = sink.on_frame(result) {
                    tracing::error!(stream = %id, error = %e, "sink failed; stopping stream");
                    stats.set_error(e);
                    stop.store(true, Ordering::SeqCst);
                    sink_ok = false;
                }
            }
        }
    }
    let summary = stats.summary(stop.load(Ordering::SeqCst));
    if let Err(e) = sink.finish(&summary) {
        stats.set_error(e);
    }
    stats.summary(stop.load(Ordering::SeqCst))
}

/// Releases one in-flight slot of a stream when dropped, however the frame's
/// handling ends.
struct InFlight<'a>(&'a StreamCtx, &'a Sender<()>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        let _ = self.1.try_send(());
    }
}

/// What the post thread remembers between frames.
#[derive(Default)]
struct PostState {
    last_processed_index: Option<u64>,
    /// The last frame gated out as still: the scene was unchanged up to
    /// there, so the tracker's clock (its lost-track buffer) does not run
    /// across it.
    last_still_index: Option<u64>,
    last_objects: Vec<Detection>,
    /// With motion gating: which tracks keep the detector busy.
    stationary: Option<Stationary>,
}

impl PostState {
    fn handle(
        &mut self,
        ctx: &StreamCtx,
        msg: PostMsg,
        tracker: Option<&mut dyn TrackStage>,
    ) -> Result<FrameResult, String> {
        match msg {
            PostMsg::Processed {
                seq,
                frame,
                detections,
                mut timings,
            } => {
                let since = match (self.last_processed_index, self.last_still_index) {
                    (Some(p), Some(s)) => Some(p.max(s)),
                    (p, s) => p.or(s),
                };
                let elapsed = since.map_or(1, |last| frame.index.0.saturating_sub(last).max(1));
                self.last_processed_index = Some(frame.index.0);
                let t = Instant::now();
                let (objects, started, ended) = match tracker {
                    Some(tr) => {
                        let size = (frame.image.width(), frame.image.height());
                        let out = tr.update_in_frame(size, &detections, clamp_u32(elapsed));
                        if let Some(st) = &mut self.stationary {
                            let (attention, still) = st.update(frame.pts, &out);
                            let mut fb = ctx.feedback.lock().unwrap_or_else(|p| p.into_inner());
                            fb.attention = attention;
                            fb.stationary = still;
                        }
                        let objs = out.tracks.iter().map(|t| t.to_detection()).collect();
                        (objs, out.started, out.ended)
                    }
                    None => (detections.clone(), Vec::new(), Vec::new()),
                };
                timings.track = t.elapsed();
                if self.stationary.is_some() {
                    ctx.feedback
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .results
                        .push((seq, detections.iter().map(|d| d.bbox).collect()));
                }
                self.last_objects.clone_from(&objects);
                Ok(FrameResult {
                    frame,
                    processed: true,
                    objects,
                    detections,
                    started_tracks: started,
                    ended_tracks: ended,
                    timings,
                })
            }
            PostMsg::Skipped {
                frame,
                decode,
                still,
                ..
            } => {
                if still {
                    self.last_still_index = Some(frame.index.0);
                }
                let objects = match (tracker, self.last_processed_index) {
                    (Some(tr), Some(last)) => tr
                        .predict(clamp_u32(frame.index.0.saturating_sub(last)))
                        .iter()
                        .map(|t| t.to_detection())
                        .collect(),
                    _ => self.last_objects.clone(),
                };
                Ok(FrameResult {
                    frame,
                    processed: false,
                    objects,
                    detections: Vec::new(),
                    started_tracks: Vec::new(),
                    ended_tracks: Vec::new(),
                    timings: Timings {
                        decode,
                        ..Timings::default()
                    },
                })
            }
            PostMsg::Failed { frame, error, .. } => Err(format!(
                "frame {} of stream {}: {error}",
                frame.index.0, frame.stream
            )),
            PostMsg::End { .. } => Err("unexpected end marker".into()),
        }
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
