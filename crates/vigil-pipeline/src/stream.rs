//! The per-stream half of the pipeline: its options, and the handle that
//! owns its decoder thread (`decode`) and post thread (`post`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use vigil_core::config::MotionConfig;
use vigil_core::StreamId;

use crate::ctx::{PostMsg, StreamCtx};
use crate::decode::decode_loop;
use crate::motion::MotionMask;
use crate::post::post_loop;
use crate::skip::SkipPolicy;
use crate::types::{FrameSink, FrameSource, Priority, StreamStats, StreamSummary, TrackStage};

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
