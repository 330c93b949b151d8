//! The post stage: one thread per stream that puts frames back in source
//! order, runs the stream's tracker (and the stationary-object feedback of
//! motion gating), and hands every frame to the stream's sink.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use vigil_core::Detection;

use crate::ctx::{PostMsg, StreamCtx};
use crate::error::PipelineError;
use crate::motion::Stationary;
use crate::types::{FrameResult, FrameSink, StreamSummary, Timings, TrackStage};

/// Restores source order and applies tracking before handing frames to the sink.
pub(crate) fn post_loop(
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
                    stats.set_error(e.to_string());
                    stop.store(true, Ordering::SeqCst);
                    continue;
                }
            };
            if sink_ok {
                if let Err(e) = sink.on_frame(result) {
                    tracing::error!(stream = %id, error = %e, "sink failed; stopping stream");
                    stats.set_error(e.to_string());
                    stop.store(true, Ordering::SeqCst);
                    sink_ok = false;
                }
            }
        }
    }
    let summary = stats.summary(stop.load(Ordering::SeqCst));
    if let Err(e) = sink.finish(&summary) {
        stats.set_error(e.to_string());
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
    ) -> Result<FrameResult, PipelineError> {
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
            PostMsg::Failed { frame, error, .. } => Err(PipelineError::Frame {
                stream: frame.stream.0,
                index: frame.index.0,
                error: Box::new(error),
            }),
            // Never sent: `End` is consumed by `post_loop` before `handle`.
            PostMsg::End { .. } => Err(PipelineError::Stopped),
        }
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
