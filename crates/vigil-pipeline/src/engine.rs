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
//!
//! **Live first** (`[jobs] priority = "background"`, the default): cameras
//! are latency-bound, jobs are not. Each sweep serves every live stream
//! that has a frame first, then single images (`/v1/detect`), then
//! background streams (jobs, files) — and those only while no camera frame
//! is on its way through the detector and fewer than one frame per
//! inference session of theirs is in flight (a batch per session once the
//! cameras sent nothing for a second): jobs use the detector's idle time,
//! and a camera frame waits behind at most one job frame. Lower classes keep a guaranteed share
//! while cameras keep the detector busy ([`INTERACTIVE_SHARE`],
//! [`BACKGROUND_SHARE`]), so a job always progresses and a `/v1/detect`
//! burst is answered. `fair` is the plain round-robin over every stream.
//!
//! **Motion gating** (`[streams.motion]`) happens here too: a frame the
//! skip policy selected goes to the detector only if the stream's
//! [`MotionGate`] says so; otherwise it is a *still* frame and goes straight
//! to the post thread like a skipped one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::SystemTime;
use vigil_core::config::{BatchConfig, JobPriority, ModelConfig};

use vigil_core::{Detection, Frame, FrameIndex, ImageBgr, PtsMs, StreamId};
use vigil_detect::{preprocess, DetectError, Detector, DetectorOptions, Prepared};

use crate::motion::{Feedback, Gate, MotionGate};
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
    /// How background streams (jobs, files) share the detector with live ones.
    pub jobs_priority: JobPriority,
}

/// Who a frame is detected for; decides its place in the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Cameras: their configured rate first.
    Live,
    /// Single images (`/v1/detect`): before jobs, within a share while
    /// cameras are busy.
    Interactive,
    /// Jobs and files: the spare capacity.
    Background,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Live => "live",
            Priority::Interactive => "interactive",
            Priority::Background => "background",
        }
    }
}

/// While live frames keep the detector busy, single images still get this
/// share of the dispatched frames (one per four camera frames)…
pub const INTERACTIVE_SHARE: f64 = 0.25;
/// …and background streams this one (one per ten), so a job never stops.
pub const BACKGROUND_SHARE: f64 = 0.1;
/// Cameras that sent nothing to the detector for this long are quiet: jobs
/// may fill whole batches again.
const LIVE_QUIET: Duration = Duration::from_secs(1);

/// Frames sent to the detector per priority class since the engine started
/// (`vigil_scheduled_frames_total{priority}`).
#[derive(Debug, Default)]
pub struct SchedulerStats {
    pub live: AtomicU64,
    pub interactive: AtomicU64,
    pub background: AtomicU64,
}

impl SchedulerStats {
    fn count(&self, p: Priority) {
        match p {
            Priority::Live => &self.live,
            Priority::Interactive => &self.interactive,
            Priority::Background => &self.background,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// `(priority, frames)` for each class.
    pub fn totals(&self) -> [(Priority, u64); 3] {
        [
            (Priority::Live, self.live.load(Ordering::Relaxed)),
            (
                Priority::Interactive,
                self.interactive.load(Ordering::Relaxed),
            ),
            (
                Priority::Background,
                self.background.load(Ordering::Relaxed),
            ),
        ]
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        // Letterboxing takes well under a millisecond a frame; one thread per
        // four cores keeps up with any detector without stealing cores from it.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            batch: BatchConfig::default(),
            preprocess_threads: (cores / 4).max(1),
            jobs_priority: JobPriority::default(),
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
    pub priority: Priority,
    skipper: Mutex<FrameSkipper>,
    /// `None` when motion gating is off for this stream.
    motion: Option<Mutex<MotionGate>>,
    /// From the post thread to the gate (tracks, detections).
    pub(crate) feedback: Mutex<Feedback>,
    /// Background and live frames in flight, engine-wide (shared with the
    /// scheduler).
    background_in_flight: Arc<AtomicUsize>,
    live_in_flight: Arc<AtomicUsize>,
    /// Wakes the scheduler when a background slot frees up.
    wake_tx: Sender<()>,
    next_seq: AtomicU64,
    ended: AtomicBool,
    /// Frames taken from the ring whose sink has not consumed them yet.
    /// Capped so a slow sink (e.g. the video encoder) backs up into the ring
    /// — where the overflow policy applies — instead of piling up frames in
    /// memory between the scheduler and the sink.
    pub in_flight: AtomicUsize,
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
    fn detector_done(&self) {
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
    fn done(self, frame: Frame, detections: Vec<Detection>, timings: Timings) {
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

    fn fail(self, frame: Frame, error: String) {
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
    /// Single images waiting for the scheduler (`/v1/detect`).
    images: Receiver<PreJob>,
    policy: JobPriority,
    /// Most background frames in flight while cameras send frames to the
    /// detector: one per session, so a camera frame waits behind at most one
    /// job frame, and a job takes only capacity the cameras leave (a cap of
    /// a whole batch would let a job take most of a slow detector).
    background_cap_busy: usize,
    /// …and while no camera frame went to the detector for
    /// [`LIVE_QUIET`] (idle or motion-gated cameras): a full batch per session.
    background_cap_quiet: usize,
    background_in_flight: Arc<AtomicUsize>,
    /// Camera frames between the scheduler and the end of inference: while
    /// any is, job frames wait (except for their guaranteed share).
    live_in_flight: Arc<AtomicUsize>,
    stats: Arc<SchedulerStats>,
    /// Frames handed to preprocessing that no inference thread has taken
    /// yet: what the batcher may still expect within `max_wait_ms`.
    pending: AtomicUsize,
}

impl Shared {
    /// Whether another frame can join a batch being collected: one is
    /// already on its way through preprocessing, an image waits for the
    /// scheduler, or a stream has a decoded frame in its ring that the
    /// scheduler is about to hand over. When none holds, waiting
    /// `max_wait_ms` would only add latency (an idle daemon's `/v1/detect`
    /// would pay it on every call).
    fn more_coming(&self) -> bool {
        self.pending.load(Ordering::SeqCst) > 0
            || !self.images.is_empty()
            || lock(&self.streams)
                .iter()
                .any(|s| !s.ring.is_empty() && s.in_flight.load(Ordering::SeqCst) < s.max_in_flight)
    }
}

/// The shared detector and its threads. Streams are attached with
/// [`Engine::add_stream`] and may come and go while it runs.
pub struct Engine {
    shared: Arc<Shared>,
    /// Single images, handed to the scheduler (see [`Priority::Interactive`]).
    image_tx: Option<Sender<PreJob>>,
    stats: Arc<SchedulerStats>,
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
        // A burst of HTTP images waits here (the handlers block), not in
        // the detector's queue ahead of camera frames.
        let (image_tx, image_rx) = bounded::<PreJob>(4 * max);
        let stats = Arc::new(SchedulerStats::default());
        let shared = Arc::new(Shared {
            streams: Mutex::new(Vec::new()),
            wake_tx,
            shutdown: AtomicBool::new(false),
            images: image_rx,
            policy: cfg.jobs_priority,
            background_cap_busy: detectors.len(),
            background_cap_quiet: max * detectors.len(),
            background_in_flight: Arc::new(AtomicUsize::new(0)),
            live_in_flight: Arc::new(AtomicUsize::new(0)),
            stats: Arc::clone(&stats),
            pending: AtomicUsize::new(0),
        });
        // One batch's worth per hop keeps the detector fed (the next batch is
        // being letterboxed while this one runs) without queueing frames that
        // go stale: every extra slot is one more frame of camera latency.
        let (pre_tx, pre_rx) = bounded::<PreJob>(max);
        let (infer_tx, infer_rx) = bounded::<InferJob>(max);
        let mut threads = Vec::new();

        let sched_shared = Arc::clone(&shared);
        threads.push(spawn("vigil-scheduler", move || {
            schedule(&sched_shared, &wake_rx, &pre_tx)
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
            image_tx: Some(image_tx),
            stats,
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
        let sender = self.image_tx.as_ref().ok_or("engine is shut down")?;
        sender
            .send(job)
            .map_err(|_| "engine is shut down".to_string())?;
        let _ = self.shared.wake_tx.try_send(());
        rx.recv()
            .map_err(|_| "engine stopped before the image was processed".to_string())?
    }

    pub fn input_size(&self) -> (u32, u32) {
        self.input_size
    }

    /// Frames sent to the detector per priority class.
    pub fn scheduler_stats(&self) -> &Arc<SchedulerStats> {
        &self.stats
    }

    /// How background streams share the detector (`[jobs] priority`).
    pub fn jobs_priority(&self) -> JobPriority {
        self.shared.policy
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
        let priority = opts.priority.unwrap_or(if live {
            Priority::Live
        } else {
            Priority::Background
        });
        let stats = Arc::new(StreamStats::default());
        let (post_tx, post_rx) = crossbeam_channel::unbounded();
        let overflow = if live {
            Overflow::DropOldest
        } else {
            Overflow::Block
        };
        let ctx =
            Arc::new(StreamCtx {
                id: opts.id.clone(),
                ring: Ring::new(opts.ring_capacity, overflow),
                live,
                priority,
                skipper: Mutex::new(FrameSkipper::new(opts.skip)),
                motion: opts.motion.clone().filter(|m| m.enabled).map(|m| {
                    Mutex::new(MotionGate::new(m, opts.motion_masks.clone()).deferring(live))
                }),
                feedback: Mutex::new(Feedback::default()),
                background_in_flight: Arc::clone(&self.shared.background_in_flight),
                live_in_flight: Arc::clone(&self.shared.live_in_flight),
                wake_tx: self.shared.wake_tx.clone(),
                next_seq: AtomicU64::new(0),
                ended: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
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
        self.image_tx.take();
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

/// Credit of the lower classes while live frames keep the detector busy.
#[derive(Default)]
struct Credit {
    interactive: f64,
    background: f64,
}

impl Credit {
    fn live_dispatched(&mut self) {
        self.interactive = (self.interactive + INTERACTIVE_SHARE).min(1.0);
        self.background = (self.background + BACKGROUND_SHARE).min(1.0);
    }
}

/// One sweep over the streams' rings, one frame per stream; see the module
/// documentation for the order of the classes.
fn schedule(shared: &Shared, wake_rx: &Receiver<()>, pre_tx: &Sender<PreJob>) {
    let mut order: VecDeque<Arc<StreamCtx>> = VecDeque::new();
    let mut credit = Credit::default();
    let live_first = shared.policy == JobPriority::Background;
    let mut last_live: Option<Instant> = None;
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
        // Live streams (every stream in `fair` mode).
        let mut live_sent = 0usize;
        sweep(shared, &mut order, pre_tx, &mut progressed, |ctx| {
            !live_first || ctx.priority != Priority::Background
        })
        .into_iter()
        .for_each(|p| {
            if p == Priority::Live {
                live_sent += 1;
                credit.live_dispatched();
                last_live = Some(Instant::now());
            }
        });
        // Single images: freely while cameras wait for nothing, else on credit.
        if live_sent == 0 || credit.interactive >= 1.0 || !live_first {
            if let Ok(job) = shared.images.try_recv() {
                if live_sent > 0 && live_first {
                    credit.interactive -= 1.0;
                }
                progressed = true;
                shared.stats.count(Priority::Interactive);
                shared.pending.fetch_add(1, Ordering::SeqCst);
                if let Err(e) = pre_tx.send(job) {
                    shared.pending.fetch_sub(1, Ordering::SeqCst);
                    let job = e.into_inner();
                    job.reply
                        .fail(job.decoded.frame, "pipeline is shutting down".into());
                }
            }
        }
        // Background streams get what the cameras leave, a bounded amount
        // at a time, plus their guaranteed share.
        if live_first {
            let any_live = order.iter().any(|c| c.priority == Priority::Live);
            let cap = if last_live.is_some_and(|t| t.elapsed() < LIVE_QUIET) {
                shared.background_cap_busy
            } else {
                shared.background_cap_quiet
            };
            let room = !any_live || shared.background_in_flight.load(Ordering::SeqCst) < cap;
            // The detector is free of camera frames: jobs use idle time.
            let idle =
                !any_live || (live_sent == 0 && shared.live_in_flight.load(Ordering::SeqCst) == 0);
            if room && (idle || credit.background >= 1.0) {
                let sent = sweep(shared, &mut order, pre_tx, &mut progressed, |ctx| {
                    ctx.priority == Priority::Background
                });
                if !idle && sent.contains(&Priority::Background) {
                    credit.background -= 1.0;
                }
            }
        }
        if !progressed {
            if shared.shutdown.load(Ordering::SeqCst)
                && order.is_empty()
                && shared.images.is_empty()
            {
                return;
            }
            match wake_rx.recv_timeout(Duration::from_millis(20)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Takes at most one frame from each stream in `order` that `eligible`
/// admits; returns the classes of the frames that went to the detector.
fn sweep(
    shared: &Shared,
    order: &mut VecDeque<Arc<StreamCtx>>,
    pre_tx: &Sender<PreJob>,
    progressed: &mut bool,
    eligible: impl Fn(&StreamCtx) -> bool,
) -> Vec<Priority> {
    let mut sent = Vec::new();
    for _ in 0..order.len() {
        let Some(ctx) = order.pop_front() else { break };
        if !eligible(&ctx) || ctx.in_flight.load(Ordering::SeqCst) >= ctx.max_in_flight {
            // Not its turn, or its sink is behind: leave the frames in the ring.
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
                *progressed = true;
                if dispatch(&ctx, decoded, pre_tx, &shared.pending) {
                    shared.stats.count(ctx.priority);
                    sent.push(ctx.priority);
                }
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
    sent
}

/// Skip policy, then motion gate; true when the frame went to the detector.
fn dispatch(
    ctx: &Arc<StreamCtx>,
    decoded: Decoded,
    pre_tx: &Sender<PreJob>,
    pending: &AtomicUsize,
) -> bool {
    let seq = ctx.next_seq.fetch_add(1, Ordering::SeqCst);
    ctx.in_flight.fetch_add(1, Ordering::SeqCst);
    let selected = lock(&ctx.skipper).select(decoded.frame.pts);
    let gate = match (&ctx.motion, selected) {
        (Some(gate), true) => {
            let mut feedback = lock(&ctx.feedback);
            lock(gate).decide(&decoded.frame.image, decoded.frame.pts, seq, &mut feedback)
        }
        (None, true) => Gate::First,
        (_, false) => Gate::Deferred,
    };
    if ctx.motion.is_some() && selected {
        tracing::trace!(stream = %ctx.id, pts_ms = decoded.frame.pts.0, gate = ?gate, "motion gate");
    }
    let still = gate == Gate::Still;
    if gate.runs() {
        match ctx.priority {
            Priority::Background => {
                ctx.background_in_flight.fetch_add(1, Ordering::SeqCst);
            }
            Priority::Live => {
                ctx.live_in_flight.fetch_add(1, Ordering::SeqCst);
            }
            Priority::Interactive => {}
        }
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
        return true;
    }
    if still {
        ctx.stats.still.fetch_add(1, Ordering::Relaxed);
    } else {
        ctx.stats.skipped.fetch_add(1, Ordering::Relaxed);
    }
    let _ = ctx.post_tx.send(PostMsg::Skipped {
        seq,
        frame: decoded.frame,
        decode: decoded.decode,
        still,
    });
    false
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
