//! What the stages hand each other: a stream's shared state as the
//! scheduler, inference and post threads see it, the messages on the
//! channels between them, and the engine-wide counters the scheduler reads.
//! Every stage module depends on this one and none on another stage, so
//! the engine (which wires them) and the per-stream threads never import
//! each other.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use vigil_core::config::JobPriority;
use vigil_core::{Detection, Frame, StreamId};
use vigil_detect::Prepared;

use crate::error::PipelineError;
use crate::motion::{Feedback, MotionGate};
use crate::ring::Ring;
use crate::scheduler::SchedulerStats;
use crate::skip::FrameSkipper;
use crate::types::{Priority, StreamStats, Timings};

/// A decoded frame waiting in a stream's ring.
pub(crate) struct Decoded {
    pub(crate) frame: Frame,
    pub(crate) decode: Duration,
}

/// The scheduler's view of one stream.
pub(crate) struct StreamCtx {
    pub(crate) id: StreamId,
    pub(crate) ring: Ring<Decoded>,
    pub(crate) live: bool,
    pub(crate) priority: Priority,
    pub(crate) skipper: Mutex<FrameSkipper>,
    /// `None` when motion gating is off for this stream.
    pub(crate) motion: Option<Mutex<MotionGate>>,
    /// From the post thread to the gate (tracks, detections).
    pub(crate) feedback: Mutex<Feedback>,
    /// Background and live frames in flight, engine-wide (shared with the
    /// scheduler).
    pub(crate) background_in_flight: Arc<AtomicUsize>,
    pub(crate) live_in_flight: Arc<AtomicUsize>,
    /// Wakes the scheduler when a background slot frees up.
    pub(crate) wake_tx: Sender<()>,
    pub(crate) next_seq: AtomicU64,
    pub(crate) ended: AtomicBool,
    /// Frames taken from the ring whose sink has not consumed them yet.
    /// Capped so a slow sink (e.g. the video encoder) backs up into the ring
    /// — where the overflow policy applies — instead of piling up frames in
    /// memory between the scheduler and the sink.
    pub(crate) in_flight: AtomicUsize,
    pub(crate) max_in_flight: usize,
    pub(crate) post_tx: Sender<PostMsg>,
    pub(crate) stats: Arc<StreamStats>,
}

/// Where a frame's result goes: back to its stream, or to a single caller
/// (an HTTP `/v1/detect` request riding in the same batches as the streams).
pub(crate) enum Reply {
    Stream { ctx: Arc<StreamCtx>, seq: u64 },
    Image(Sender<Result<Vec<Detection>, PipelineError>>),
}

impl StreamCtx {
    pub(crate) fn motion_enabled(&self) -> bool {
        self.motion.is_some()
    }

    pub(crate) fn motion_stationary_after_s(&self) -> f64 {
        self.motion
            .as_ref()
            .map_or(0.0, |g| lock(g).config().stationary_after_s)
    }

    /// A frame of this stream left the detector (done or failed).
    pub(crate) fn detector_done(&self) {
        match self.priority {
            Priority::Background => {
                self.background_in_flight.fetch_sub(1, Ordering::SeqCst);
            }
            Priority::Live => {
                self.live_in_flight.fetch_sub(1, Ordering::SeqCst);
            }
            Priority::Interactive => return,
        }
        let _ = self.wake_tx.try_send(());
    }
}

impl Reply {
    pub(crate) fn done(self, frame: Frame, detections: Vec<Detection>, timings: Timings) {
        match self {
            Reply::Stream { ctx, seq } => {
                ctx.detector_done();
                ctx.stats.processed.fetch_add(1, Ordering::Relaxed);
                let _ = ctx.post_tx.send(PostMsg::Processed {
                    seq,
                    frame,
                    detections,
                    timings,
                });
            }
            Reply::Image(tx) => {
                let _ = tx.send(Ok(detections));
            }
        }
    }

    pub(crate) fn fail(self, frame: Frame, error: PipelineError) {
        match self {
            Reply::Stream { ctx, seq } => {
                ctx.detector_done();
                let _ = ctx.post_tx.send(PostMsg::Failed { seq, frame, error });
            }
            Reply::Image(tx) => {
                let _ = tx.send(Err(error));
            }
        }
    }
}

pub(crate) struct PreJob {
    pub(crate) reply: Reply,
    pub(crate) decoded: Decoded,
    pub(crate) selected_at: Instant,
}

/// Everything about a frame in flight except its input tensor, which goes
/// into the batch.
pub(crate) struct JobMeta {
    pub(crate) reply: Reply,
    pub(crate) frame: Frame,
    pub(crate) timings: Timings,
    pub(crate) selected_at: Instant,
}

pub(crate) struct InferJob {
    pub(crate) meta: JobMeta,
    pub(crate) prepared: Prepared,
}

pub(crate) struct Shared {
    pub(crate) streams: Mutex<Vec<Arc<StreamCtx>>>,
    pub(crate) wake_tx: Sender<()>,
    pub(crate) shutdown: AtomicBool,
    /// Single images waiting for the scheduler (`/v1/detect`).
    pub(crate) images: Receiver<PreJob>,
    pub(crate) policy: JobPriority,
    /// Most background frames in flight while cameras send frames to the
    /// detector: one per session, so a camera frame waits behind at most one
    /// job frame, and a job takes only capacity the cameras leave (a cap of
    /// a whole batch would let a job take most of a slow detector).
    pub(crate) background_cap_busy: usize,
    /// …and while no camera frame went to the detector for
    /// [`LIVE_QUIET`] (idle or motion-gated cameras): a full batch per session.
    pub(crate) background_cap_quiet: usize,
    pub(crate) background_in_flight: Arc<AtomicUsize>,
    /// Camera frames between the scheduler and the end of inference: while
    /// any is, job frames wait (except for their guaranteed share).
    pub(crate) live_in_flight: Arc<AtomicUsize>,
    pub(crate) stats: Arc<SchedulerStats>,
    /// Frames handed to preprocessing that no inference thread has taken
    /// yet: what the batcher may still expect within `max_wait_ms`.
    pub(crate) pending: AtomicUsize,
    /// Input tensors back from finished batches, letterboxed into again: a
    /// fresh 4.9 MB buffer per frame costs its zeroing and page faults
    /// (0.7 ms of a 1.5 ms letterbox on a 768x576 frame, `benches/detect_path.rs`).
    pub(crate) tensors: TensorPool,
}

/// Spare input tensors, at most `cap` of them: no more than were in flight
/// at once, so the pool holds memory the engine had already used.
pub(crate) struct TensorPool {
    free: Mutex<Vec<Vec<f32>>>,
    cap: usize,
}

impl TensorPool {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            free: Mutex::new(Vec::with_capacity(cap)),
            cap,
        }
    }

    /// A buffer of `len` floats: a spare one when there is one (its old
    /// values are left for the letterbox to overwrite), else a new one.
    pub(crate) fn take(&self, len: usize) -> Vec<f32> {
        let spare = lock(&self.free).pop();
        match spare {
            Some(mut t) => {
                t.resize(len, 0.0);
                t
            }
            None => vec![0.0; len],
        }
    }

    pub(crate) fn give(&self, tensor: Vec<f32>) {
        let mut free = lock(&self.free);
        if free.len() < self.cap {
            free.push(tensor);
        }
    }
}

impl Shared {
    /// Whether another frame can join a batch being collected: one is
    /// already on its way through preprocessing, an image waits for the
    /// scheduler, or a stream has a decoded frame in its ring that the
    /// scheduler is about to hand over. When none holds, waiting
    /// `max_wait_ms` would only add latency (an idle daemon's `/v1/detect`
    /// would pay it on every call).
    pub(crate) fn more_coming(&self) -> bool {
        self.pending.load(Ordering::SeqCst) > 0
            || !self.images.is_empty()
            || lock(&self.streams)
                .iter()
                .any(|s| !s.ring.is_empty() && s.in_flight.load(Ordering::SeqCst) < s.max_in_flight)
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
        error: PipelineError,
    },
    /// The scheduler handed out `total` sequence numbers; none follow.
    End { total: u64 },
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot spawn thread {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::TensorPool;

    #[test]
    fn the_tensor_pool_reuses_buffers_and_keeps_at_most_its_cap() {
        let pool = TensorPool::new(2);
        let a = pool.take(12);
        assert_eq!(a.len(), 12);
        let a_ptr = a.as_ptr();
        pool.give(a);
        // The spare buffer comes back, same memory, at the length asked for.
        let again = pool.take(12);
        assert_eq!((again.as_ptr(), again.len()), (a_ptr, 12));
        // A different input size still gets exactly its length.
        let grown = pool.take(20);
        assert_eq!(grown.len(), 20);
        for t in [again, grown, vec![0.0; 12]] {
            pool.give(t);
        }
        assert_eq!(super::lock(&pool.free).len(), 2, "never more than the cap");
    }
}
