//! The scheduler stage: one thread that takes frames from the streams'
//! rings, applies each stream's skip policy and motion gate, and hands the
//! selected frames to preprocessing in priority order.
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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use vigil_core::config::JobPriority;

use crate::ctx::{lock, Decoded, PostMsg, PreJob, Reply, Shared, StreamCtx};
use crate::error::PipelineError;
use crate::motion::Gate;
use crate::types::Priority;

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
pub(crate) fn schedule(shared: &Shared, wake_rx: &Receiver<()>, pre_tx: &Sender<PreJob>) {
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
                        .fail(job.decoded.frame, PipelineError::ShuttingDown);
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
                .fail(job.decoded.frame, PipelineError::ShuttingDown);
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
