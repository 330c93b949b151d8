//! The shared half of the pipeline: one scheduler, a preprocessing pool and
//! one inference thread serve every stream.
//!
//! ```text
//! decoder[s] ─ring[s]─┐            ┌─ preprocess ─┐
//! decoder[t] ─ring[t]─┼─scheduler──┼─ preprocess ─┼─ batcher/inference ─┬─ post[s] → sink[s]
//!                     │  (skip,    └──────────────┘   (max_size or       └─ post[t] → sink[t]
//!                     │  round-robin)                  max_wait_ms)
//!                     └─ skipped frames ───────────────────────────────────→ post[*] (reordered)
//! ```
//!
//! The scheduler takes at most one frame per stream per sweep, so a busy
//! stream cannot starve a quiet one; bounded channels between the stages
//! carry backpressure back to the rings, where each stream's overflow policy
//! decides between dropping (live) and waiting (files).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::SystemTime;
use vigil_core::config::{BatchConfig, ModelConfig};

use vigil_core::{Detection, Frame, FrameIndex, ImageBgr, PtsMs, StreamId};
use vigil_detect::{preprocess, DetectError, Detector, DetectorOptions, Prepared};

use crate::ring::{Overflow, Ring};
use crate::skip::FrameSkipper;
use crate::stream::{self, PostMsg, StreamHandle, StreamOptions};
use crate::types::{FrameSink, FrameSource, StreamStats, Timings, TrackStage};

/// Settings of the shared stages.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub batch: BatchConfig,
    /// Preprocessing threads (letterbox runs off the inference thread).
    pub preprocess_threads: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        // Letterboxing takes well under a millisecond a frame; one thread per
        // four cores keeps up with any detector without stealing cores from it.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            batch: BatchConfig::default(),
            preprocess_threads: (cores / 4).max(1),
        }
    }
}

/// A decoded frame waiting in a stream's ring.
pub(crate) struct Decoded {
    pub frame: Frame,
    pub decode: Duration,
}

/// The scheduler's view of one stream.
pub(crate) struct StreamCtx {
    pub id: StreamId,
    pub ring: Ring<Decoded>,
    pub live: bool,
    skipper: Mutex<FrameSkipper>,
    next_seq: AtomicU64,
    ended: AtomicBool,
    /// Frames taken from the ring whose sink has not consumed them yet.
    /// Capped so a slow sink (e.g. the video encoder) backs up into the ring
    /// — where the overflow policy applies — instead of piling up frames in
    /// memory between the scheduler and the sink.
    pub in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: usize,
    pub post_tx: Sender<PostMsg>,
    pub stats: Arc<StreamStats>,
}

/// Where a frame's result goes: back to its stream, or to a single caller
/// (an HTTP `/v1/detect` request riding in the same batches as the streams).
enum Reply {
    Stream { ctx: Arc<StreamCtx>, seq: u64 },
    Image(Sender<Result<Vec<Detection>, String>>),
}

impl Reply {
    fn done(self, frame: Frame, detections: Vec<Detection>, timings: Timings) {
        match self {
            Reply::Stream { ctx, seq } => {
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

    fn fail(self, frame: Frame, error: String) {
        match self {
            Reply::Stream { ctx, seq } => {
                let _ = ctx.post_tx.send(PostMsg::Failed { seq, frame, error });
            }
            Reply::Image(tx) => {
                let _ = tx.send(Err(error));
            }
        }
    }
}

struct PreJob {
    reply: Reply,
    decoded: Decoded,
    selected_at: Instant,
}

/// Everything about a frame in flight except its input tensor, which goes
/// into the batch.
struct JobMeta {
    reply: Reply,
    frame: Frame,
    timings: Timings,
    selected_at: Instant,
}

struct InferJob {
    meta: JobMeta,
    prepared: Prepared,
}

struct Shared {
    streams: Mutex<Vec<Arc<StreamCtx>>>,
    wake_tx: Sender<()>,
    shutdown: AtomicBool,
    /// Frames handed to preprocessing that no inference thread has taken
    /// yet: what the batcher may still expect within `max_wait_ms`.
    pending: AtomicUsize,
}

impl Shared {
    /// Whether another frame can join a batch being collected: one is
    /// already on its way through preprocessing, or a stream has a decoded
    /// frame in its ring that the scheduler is about to hand over. When
    /// neither holds, waiting `max_wait_ms` would only add latency (an
    /// idle daemon's `/v1/detect` would pay it on every call).
    fn more_coming(&self) -> bool {
        self.pending.load(Ordering::SeqCst) > 0
            || lock(&self.streams)
                .iter()
                .any(|s| !s.ring.is_empty() && s.in_flight.load(Ordering::SeqCst) < s.max_in_flight)
    }
}

/// The shared detector and its threads. Streams are attached with
/// [`Engine::add_stream`] and may come and go while it runs.
pub struct Engine {
    shared: Arc<Shared>,
    /// For single images that skip the stream scheduler.
    pre_tx: Option<Sender<PreJob>>,
    input_size: (u32, u32),
    threads: Vec<JoinHandle<()>>,
}

impl Engine {
    /// Loads `model.sessions` copies of the model (`auto` resolved once the
    /// first has chosen its device: one on CUDA), warms each up, and starts
    /// the engine on them. Returns how inference runs (`auto` resolved).
    pub fn load(
        model: &ModelConfig,
        cfg: EngineConfig,
    ) -> Result<(Engine, vigil_detect::Backend), DetectError> {
        let opts = DetectorOptions::from_config(model);
        let mut first = Detector::load(&opts)?;
        first.warm_up()?;
        let backend = first.info().backend.clone();
        let sessions = match (model.sessions, backend.device) {
            (vigil_core::config::Count::Auto, vigil_detect::ResolvedDevice::Cuda) => 1,
            _ => vigil_detect::resolved_sessions(model),
        };
        let mut detectors = Vec::with_capacity(sessions);
        detectors.push(first);
        while detectors.len() < sessions {
            let mut d = Detector::load(&opts)?;
            d.warm_up()?;
            detectors.push(d);
        }
        tracing::info!(
            sessions = detectors.len(),
            intra_threads = backend.intra_threads,
            device = %backend.device,
            precision = %backend.precision,
            "inference sessions share the batcher"
        );
        Ok((Engine::start_sessions(detectors, cfg), backend))
    }

    /// Starts the scheduler, preprocessing pool and inference thread around
    /// `detector` (which moves to the inference thread).
    pub fn start(detector: Detector, cfg: EngineConfig) -> Engine {
        Engine::start_sessions(vec![detector], cfg)
    }

    /// Like [`Engine::start`] with one inference thread per detector, all
    /// taking batches from the same queue. Each stream's post thread puts
    /// frames back in source order, so batches may finish in any order.
    ///
    /// # Panics
    /// If `detectors` is empty (a programming error: there is nothing to run).
    pub fn start_sessions(detectors: Vec<Detector>, cfg: EngineConfig) -> Engine {
        assert!(
            !detectors.is_empty(),
            "an engine needs at least one detector"
        );
        let input_size = detectors[0].input_size();
        let max = cfg.batch.max_size.max(1);
        let (wake_tx, wake_rx) = bounded::<()>(1);
        let shared = Arc::new(Shared {
            streams: Mutex::new(Vec::new()),
            wake_tx,
            shutdown: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
        });
        // One batch's worth per hop keeps the detector fed (the next batch is
        // being letterboxed while this one runs) without queueing frames that
        // go stale: every extra slot is one more frame of camera latency.
        let (pre_tx, pre_rx) = bounded::<PreJob>(max);
        let (infer_tx, infer_rx) = bounded::<InferJob>(max);
        let mut threads = Vec::new();

        let sched_shared = Arc::clone(&shared);
        let sched_tx = pre_tx.clone();
        threads.push(spawn("vigil-scheduler", move || {
            schedule(&sched_shared, &wake_rx, &sched_tx)
        }));
        for i in 0..cfg.preprocess_threads.max(1) {
            let rx = pre_rx.clone();
            let tx = infer_tx.clone();
            let sh = Arc::clone(&shared);
            threads.push(spawn(&format!("vigil-preprocess-{i}"), move || {
                preprocess_worker(&rx, &tx, input_size, &sh)
            }));
        }
        drop((pre_rx, infer_tx));
        let wait = Duration::from_millis(cfg.batch.max_wait_ms);
        for (i, detector) in detectors.into_iter().enumerate() {
            let rx = infer_rx.clone();
            let sh = Arc::clone(&shared);
            threads.push(spawn(&format!("vigil-inference-{i}"), move || {
                inference_worker(detector, &rx, max, wait, &sh)
            }));
        }
        drop(infer_rx);
        Engine {
            shared,
            pre_tx: Some(pre_tx),
            input_size,
            threads,
        }
    }

    /// Detects objects in one still image through the shared batcher, so
    /// HTTP requests and camera streams share inference calls. Blocks until
    /// the result is ready.
    pub fn detect_image(&self, image: ImageBgr) -> Result<Vec<Detection>, String> {
        let (tx, rx) = bounded(1);
        let now = Instant::now();
        let frame = Frame {
            stream: StreamId("detect".into()),
            index: FrameIndex(0),
            pts: PtsMs(0.0),
            captured_at: SystemTime::now(),
            captured: now,
            image: Arc::new(image),
        };
        let job = PreJob {
            reply: Reply::Image(tx),
            decoded: Decoded {
                frame,
                decode: Duration::ZERO,
            },
            selected_at: now,
        };
        let sender = self.pre_tx.as_ref().ok_or("engine is shut down")?;
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        if sender.send(job).is_err() {
            self.shared.pending.fetch_sub(1, Ordering::SeqCst);
            return Err("engine is shut down".to_string());
        }
        rx.recv()
            .map_err(|_| "engine stopped before the image was processed".to_string())?
    }

    pub fn input_size(&self) -> (u32, u32) {
        self.input_size
    }

    /// Attaches a stream: spawns its decoder and post-processing threads.
    pub fn add_stream(
        &self,
        source: Box<dyn FrameSource>,
        sink: Box<dyn FrameSink>,
        tracker: Option<Box<dyn TrackStage>>,
        opts: StreamOptions,
    ) -> StreamHandle {
        let live = source.is_live();
        let stats = Arc::new(StreamStats::default());
        let (post_tx, post_rx) = crossbeam_channel::unbounded();
        let overflow = if live {
            Overflow::DropOldest
        } else {
            Overflow::Block
        };
        let ctx = Arc::new(StreamCtx {
            id: opts.id.clone(),
            ring: Ring::new(opts.ring_capacity, overflow),
            live,
            skipper: Mutex::new(FrameSkipper::new(opts.skip)),
            next_seq: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            max_in_flight: opts.max_in_flight.max(1),
            post_tx,
            stats: Arc::clone(&stats),
        });
        lock(&self.shared.streams).push(Arc::clone(&ctx));
        stream::spawn(
            ctx,
            source,
            sink,
            tracker,
            post_rx,
            self.shared.wake_tx.clone(),
        )
    }

    /// Stops accepting work once every attached stream has ended, then joins
    /// all threads. Streams should be stopped or finished first.
    pub fn shutdown(mut self) {
        self.pre_tx.take();
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let _ = self.shared.wake_tx.try_send(());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let _ = self.shared.wake_tx.try_send(());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot spawn thread {name}: {e}"))
}

/// Round-robin over the streams' rings: one frame per stream per sweep.
fn schedule(shared: &Shared, wake_rx: &Receiver<()>, pre_tx: &Sender<PreJob>) {
    let mut order: VecDeque<Arc<StreamCtx>> = VecDeque::new();
    loop {
        // Pick up streams added since the last sweep, keeping rotation order.
        {
            let all = lock(&shared.streams);
            for s in all.iter() {
                if !order.iter().any(|o| Arc::ptr_eq(o, s)) {
                    order.push_back(Arc::clone(s));
                }
            }
        }
        let mut progressed = false;
        for _ in 0..order.len() {
            let Some(ctx) = order.pop_front() else { break };
            if ctx.in_flight.load(Ordering::SeqCst) >= ctx.max_in_flight {
                // Its sink is behind: leave the frames in the ring for now.
                order.push_back(ctx);
                continue;
            }
            let item = if ctx.live {
                ctx.ring.pop_latest()
            } else {
                ctx.ring.try_pop()
            };
            ctx.stats
                .dropped
                .store(ctx.ring.dropped(), Ordering::Relaxed);
            match item {
                Some(decoded) => {
                    progressed = true;
                    dispatch(&ctx, decoded, pre_tx, &shared.pending);
                    order.push_back(ctx);
                }
                None if ctx.ring.is_finished() => {
                    if !ctx.ended.swap(true, Ordering::SeqCst) {
                        let total = ctx.next_seq.load(Ordering::SeqCst);
                        let _ = ctx.post_tx.send(PostMsg::End { total });
                    }
                    lock(&shared.streams).retain(|s| !Arc::ptr_eq(s, &ctx));
                }
                None => order.push_back(ctx),
            }
        }
        if !progressed {
            if shared.shutdown.load(Ordering::SeqCst) && order.is_empty() {
                return;
            }
            match wake_rx.recv_timeout(Duration::from_millis(20)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

fn dispatch(
    ctx: &Arc<StreamCtx>,
    decoded: Decoded,
    pre_tx: &Sender<PreJob>,
    pending: &AtomicUsize,
) {
    let seq = ctx.next_seq.fetch_add(1, Ordering::SeqCst);
    ctx.in_flight.fetch_add(1, Ordering::SeqCst);
    let take = lock(&ctx.skipper).select(decoded.frame.pts);
    if take {
        let job = PreJob {
            reply: Reply::Stream {
                ctx: Arc::clone(ctx),
                seq,
            },
            decoded,
            selected_at: Instant::now(),
        };
        pending.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = pre_tx.send(job) {
            pending.fetch_sub(1, Ordering::SeqCst);
            // Only during shutdown: keep the stream's sequence complete.
            let job = e.into_inner();
            job.reply
                .fail(job.decoded.frame, "pipeline is shutting down".into());
        }
    } else {
        ctx.stats.skipped.fetch_add(1, Ordering::Relaxed);
        let _ = ctx.post_tx.send(PostMsg::Skipped {
            seq,
            frame: decoded.frame,
            decode: decoded.decode,
        });
    }
}

fn preprocess_worker(
    rx: &Receiver<PreJob>,
    tx: &Sender<InferJob>,
    (w, h): (u32, u32),
    shared: &Shared,
) {
    for job in rx.iter() {
        let t = Instant::now();
        match preprocess::preprocess(&job.decoded.frame.image, w, h) {
            Ok(prepared) => {
                let timings = Timings {
                    decode: job.decoded.decode,
                    preprocess: t.elapsed(),
                    ..Timings::default()
                };
                let out = InferJob {
                    meta: JobMeta {
                        reply: job.reply,
                        frame: job.decoded.frame,
                        timings,
                        selected_at: job.selected_at,
                    },
                    prepared,
                };
                if let Err(e) = tx.send(out) {
                    shared.pending.fetch_sub(1, Ordering::SeqCst);
                    let m = e.into_inner().meta;
                    m.reply.fail(m.frame, "pipeline is shutting down".into());
                }
            }
            Err(e) => {
                shared.pending.fetch_sub(1, Ordering::SeqCst);
                job.reply.fail(job.decoded.frame, e.to_string());
            }
        }
    }
}

/// Collects up to `max` items, waiting at most `max_wait` after the first.
/// `None` once the channel is closed and empty.
pub fn collect_batch<T>(rx: &Receiver<T>, max: usize, max_wait: Duration) -> Option<Vec<T>> {
    collect_batch_while(rx, max, max_wait, || {}, || true)
}

/// Like [`collect_batch`], but waits for more only while `more_coming`
/// says another item can arrive: what is already queued is always taken,
/// and a partial batch runs at once when nothing else is on its way. So
/// batching costs latency only under concurrent load, where it pays.
/// `taken` runs once per item received (before `more_coming` is asked
/// again), so a counter of expected items can be kept exact.
pub fn collect_batch_while<T>(
    rx: &Receiver<T>,
    max: usize,
    max_wait: Duration,
    taken: impl Fn(),
    more_coming: impl Fn() -> bool,
) -> Option<Vec<T>> {
    let first = rx.recv().ok()?;
    taken();
    let deadline = Instant::now() + max_wait;
    let mut batch = Vec::with_capacity(max);
    batch.push(first);
    while batch.len() < max {
        let next = match rx.try_recv() {
            Ok(item) => Some(item),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) if more_coming() => rx.recv_deadline(deadline).ok(),
            Err(TryRecvError::Empty) => None,
        };
        let Some(item) = next else { break };
        taken();
        batch.push(item);
    }
    Some(batch)
}

fn inference_worker(
    mut detector: Detector,
    rx: &Receiver<InferJob>,
    max: usize,
    max_wait: Duration,
    shared: &Shared,
) {
    let taken = || {
        shared.pending.fetch_sub(1, Ordering::SeqCst);
    };
    while let Some(batch) = collect_batch_while(rx, max, max_wait, taken, || shared.more_coming()) {
        let started = Instant::now();
        let (jobs, inputs): (Vec<JobMeta>, Vec<Prepared>) =
            batch.into_iter().map(|j| (j.meta, j.prepared)).unzip();
        let n = jobs.len();
        match detector.run_prepared_timed(&inputs) {
            Ok((results, timing)) => {
                for (job, dets) in jobs.into_iter().zip(results) {
                    let waited = started.saturating_duration_since(job.selected_at);
                    let timings = Timings {
                        queue: waited.saturating_sub(job.timings.preprocess),
                        inference: timing.inference,
                        postprocess: timing.postprocess,
                        batch_size: n,
                        ..job.timings
                    };
                    job.reply.done(job.frame, dets, timings);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = n, "inference failed");
                for job in jobs {
                    job.reply.fail(job.frame, e.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Runs `collect_batch_while` on another thread and waits (bounded) for
    /// its answer, so a batcher that waited `max_wait` (an hour here) fails
    /// the test instead of hanging it.
    fn collect_in_thread(
        rx: Receiver<u32>,
        max: usize,
        more: Arc<AtomicBool>,
        taken: Arc<AtomicUsize>,
    ) -> Receiver<Option<Vec<u32>>> {
        let (tx, out) = bounded(1);
        std::thread::spawn(move || {
            let got = collect_batch_while(
                &rx,
                max,
                Duration::from_secs(3600),
                || {
                    taken.fetch_add(1, Ordering::SeqCst);
                },
                || more.load(Ordering::SeqCst),
            );
            let _ = tx.send(got);
        });
        out
    }

    #[test]
    fn a_partial_batch_runs_at_once_when_nothing_else_is_coming() {
        let (tx, rx) = bounded(8);
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        let taken = Arc::new(AtomicUsize::new(0));
        let out = collect_in_thread(rx, 8, Arc::new(AtomicBool::new(false)), Arc::clone(&taken));
        let batch = out.recv_timeout(Duration::from_secs(60)).unwrap();
        // What was already queued is taken; nothing is waited for.
        assert_eq!(batch, Some(vec![0, 1, 2]));
        assert_eq!(taken.load(Ordering::SeqCst), 3);
        drop(tx);
    }

    #[test]
    fn the_batcher_waits_for_a_frame_that_is_on_its_way() {
        let (tx, rx) = bounded(8);
        tx.send(1).unwrap();
        let more = Arc::new(AtomicBool::new(true));
        let taken = Arc::new(AtomicUsize::new(0));
        let out = collect_in_thread(rx, 2, Arc::clone(&more), Arc::clone(&taken));
        // The batcher holds the first item until the second arrives.
        assert!(out.recv_timeout(Duration::from_millis(50)).is_err());
        tx.send(2).unwrap();
        let batch = out.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(batch, Some(vec![1, 2]));
        assert_eq!(taken.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_closed_channel_ends_collection() {
        let (tx, rx) = bounded::<u32>(1);
        drop(tx);
        assert_eq!(
            collect_batch_while(&rx, 4, Duration::from_secs(3600), || {}, || true),
            None
        );
    }
}
