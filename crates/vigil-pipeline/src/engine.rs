//! The engine: the shared half of the pipeline (one scheduler, a
//! preprocessing pool and one inference thread per session) serving every
//! stream, and the API to attach streams and send single images.
//!
//! ```text
//! decoder[s] ─ring[s]─┐            ┌─ preprocess ─┐
//! decoder[t] ─ring[t]─┼─scheduler──┼─ preprocess ─┼─ batcher/inference ─┬─ post[s] → sink[s]
//!                     │  (skip,    └──────────────┘   (max_size or       └─ post[t] → sink[t]
//!                     │  round-robin)                  max_wait_ms)
//!                     └─ skipped frames ───────────────────────────────────→ post[*] (reordered)
//! ```
//!
//! One file per stage: `decode` (decoder threads), `scheduler`,
//! `preprocess`, `inference`, `post`; `ctx` holds what they hand each other.
//! The detector is a [`BatchDetector`]: the ONNX one, or a fake in tests.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, Sender};
use vigil_core::config::{BatchConfig, JobPriority, ModelConfig};
use vigil_core::{Detection, Frame, FrameIndex, ImageBgr, PtsMs, StreamId};
use vigil_detect::{DetectError, Detector, DetectorOptions};

use crate::ctx::{lock, spawn, Decoded, InferJob, PreJob, Reply, Shared, StreamCtx, TensorPool};
use crate::error::PipelineError;
use crate::infer::BatchDetector;
use crate::motion::{Feedback, MotionGate};
use crate::ring::{Overflow, Ring};
use crate::scheduler::{schedule, SchedulerStats};
use crate::skip::FrameSkipper;
use crate::stream::{self, StreamHandle, StreamOptions};
use crate::types::{FrameSink, FrameSource, Priority, StreamStats, TrackStage};
use crate::{inference, preprocess};

/// Settings of the shared stages.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub batch: BatchConfig,
    /// Preprocessing threads (letterbox runs off the inference thread).
    pub preprocess_threads: usize,
    /// How background streams (jobs, files) share the detector with live ones.
    pub jobs_priority: JobPriority,
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
        let detectors = detectors
            .into_iter()
            .map(|d| Box::new(d) as Box<dyn BatchDetector>)
            .collect();
        Ok((Engine::start_sessions(detectors, cfg), backend))
    }

    /// Starts the scheduler, preprocessing pool and inference thread around
    /// `detector` (which moves to the inference thread).
    pub fn start(detector: impl BatchDetector, cfg: EngineConfig) -> Engine {
        Engine::start_sessions(vec![Box::new(detector)], cfg)
    }

    /// Like [`Engine::start`] with one inference thread per detector, all
    /// taking batches from the same queue. Each stream's post thread puts
    /// frames back in source order, so batches may finish in any order.
    ///
    /// # Panics
    /// If `detectors` is empty (a programming error: there is nothing to run).
    pub fn start_sessions(detectors: Vec<Box<dyn BatchDetector>>, cfg: EngineConfig) -> Engine {
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
            // What can be in flight: a batch per session, one being
            // letterboxed and one waiting per hop.
            tensors: TensorPool::new(max * (detectors.len() + 2)),
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
                preprocess::preprocess_worker(&rx, &tx, input_size, &sh)
            }));
        }
        drop((pre_rx, infer_tx));
        let wait = Duration::from_millis(cfg.batch.max_wait_ms);
        let turns = Arc::new(inference::Turns::new(detectors.len()));
        for (i, mut detector) in detectors.into_iter().enumerate() {
            let rx = infer_rx.clone();
            let sh = Arc::clone(&shared);
            let turns = Arc::clone(&turns);
            threads.push(spawn(&format!("vigil-inference-{i}"), move || {
                inference::inference_worker(detector.as_mut(), (i, &turns), &rx, (max, wait), &sh)
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
    pub fn detect_image(&self, image: ImageBgr) -> Result<Vec<Detection>, PipelineError> {
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
        let sender = self.image_tx.as_ref().ok_or(PipelineError::ShuttingDown)?;
        sender.send(job).map_err(|_| PipelineError::ShuttingDown)?;
        let _ = self.shared.wake_tx.try_send(());
        rx.recv().map_err(|_| PipelineError::Stopped)?
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
