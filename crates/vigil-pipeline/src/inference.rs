//! The inference stage: the batcher and one thread per detector session,
//! each running batches through its [`BatchDetector`] and handing each
//! frame's detections back to its stream (or its `/v1/detect` caller).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use vigil_detect::Prepared;

use crate::ctx::{lock, InferJob, JobMeta, Shared};
use crate::error::PipelineError;
use crate::infer::BatchDetector;
use crate::types::Timings;

/// Session `session`'s next batch, once it holds the turn ([`Turns`]): up
/// to `max` items, waiting for more only while `more_coming` says another
/// item can arrive. What is already queued is always taken, and a partial
/// batch runs at once when nothing else is on its way, so batching costs
/// latency only under concurrent load, where it pays. `taken` runs once per
/// item received (before `more_coming` is asked again), so a counter of
/// expected items can be kept exact. `None` once the channel is closed.
fn collect_batch<T>(
    (session, turns): (usize, &Turns),
    rx: &Receiver<T>,
    max: usize,
    max_wait: Duration,
    taken: impl Fn(),
    more_coming: impl Fn() -> bool,
) -> Option<Vec<T>> {
    let first = turns.next(session, rx)?;
    taken();
    Some(fill_batch(first, rx, max, max_wait, taken, more_coming))
}

/// The rest of a batch whose first item was just taken: what is queued, and
/// while `more_coming`, what arrives within `max_wait`.
fn fill_batch<T>(
    first: T,
    rx: &Receiver<T>,
    max: usize,
    max_wait: Duration,
    taken: impl Fn(),
    more_coming: impl Fn() -> bool,
) -> Vec<T> {
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
    batch
}

/// Which idle session takes the next frame: the one that finished last.
/// Every session holds its own copy of the model's packed weights, and a
/// shared channel wakes the receiver that has waited longest, so an idle
/// engine's requests alternated between sessions and each call met weights
/// the other session had just pushed out of the caches: a session call in
/// `vigil serve` with 2 sessions took 83.6 ms against 80.8 ms back to back
/// (`/v1/detect`, one request at a time). Exactly one idle session (the
/// receiver) waits on the channel; the others wait for a kick.
pub(crate) struct Turns {
    state: Mutex<TurnState>,
    kicks: Vec<(Sender<()>, Receiver<()>)>,
}

struct TurnState {
    receiver: Option<usize>,
    /// Idle sessions that are not the receiver, the most recent on top.
    idle: Vec<usize>,
    closed: bool,
}

impl Turns {
    /// Session 0 receives first, then 1, 2, …: fixed before any thread runs,
    /// so which session serves an idle engine does not depend on which
    /// thread started last.
    pub(crate) fn new(sessions: usize) -> Self {
        let state = TurnState {
            receiver: (sessions > 0).then_some(0),
            idle: (1..sessions).rev().collect(),
            closed: false,
        };
        Self {
            state: Mutex::new(state),
            kicks: (0..sessions).map(|_| bounded(1)).collect(),
        }
    }

    fn kick(&self, i: usize) {
        if let Some((tx, _)) = self.kicks.get(i) {
            let _ = tx.try_send(());
        }
    }

    /// Session `i` is free: it becomes the receiver, and the one that was
    /// steps down under it.
    fn free(&self, i: usize) {
        let mut st = lock(&self.state);
        st.idle.retain(|&s| s != i);
        if let Some(prev) = st.receiver.replace(i) {
            if prev != i {
                st.idle.push(prev);
                self.kick(prev);
            }
        }
    }

    /// Session `i` took a frame: the idle session that finished last
    /// receives next.
    fn took(&self, i: usize) {
        let mut st = lock(&self.state);
        if st.receiver == Some(i) {
            st.receiver = st.idle.pop();
            if let Some(next) = st.receiver {
                self.kick(next);
            }
        } else {
            // It had stepped down but the channel answered first: busy now.
            st.idle.retain(|&s| s != i);
        }
    }

    /// The channel closed: every session stops.
    fn close(&self) {
        lock(&self.state).closed = true;
        for i in 0..self.kicks.len() {
            self.kick(i);
        }
    }

    /// Waits until session `i` is the receiver, then for its first item:
    /// `None` once the channel is closed.
    fn next<T>(&self, i: usize, rx: &Receiver<T>) -> Option<T> {
        let kicked = &self.kicks.get(i)?.1;
        loop {
            {
                let st = lock(&self.state);
                if st.closed {
                    return None;
                }
                if st.receiver != Some(i) {
                    drop(st);
                    let _ = kicked.recv();
                    continue;
                }
            }
            // A kick while waiting here means the turn may have passed on.
            crossbeam_channel::select! {
                recv(rx) -> item => match item {
                    Ok(item) => {
                        self.took(i);
                        return Some(item);
                    }
                    Err(_) => {
                        self.close();
                        return None;
                    }
                },
                recv(kicked) -> _ => {}
            }
        }
    }
}

/// Session `session`'s thread: batches from `rx` through `detector` until
/// the channel closes.
pub(crate) fn inference_worker(
    detector: &mut dyn BatchDetector,
    (session, turns): (usize, &Turns),
    rx: &Receiver<InferJob>,
    (max, max_wait): (usize, Duration),
    shared: &Shared,
) {
    let taken = || {
        shared.pending.fetch_sub(1, Ordering::SeqCst);
    };
    let more_coming = || shared.more_coming();
    while let Some(batch) = collect_batch((session, turns), rx, max, max_wait, taken, more_coming) {
        let started = Instant::now();
        let (jobs, inputs): (Vec<JobMeta>, Vec<Prepared>) =
            batch.into_iter().map(|j| (j.meta, j.prepared)).unzip();
        let n = jobs.len();
        let outcome = detector.detect_batch(&inputs);
        for p in inputs {
            shared.tensors.give(p.tensor);
        }
        match outcome {
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
                let e = PipelineError::from(e);
                for job in jobs {
                    job.reply.fail(job.frame, e.clone());
                }
            }
        }
        turns.free(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::Arc;

    /// Runs `collect_batch` (one session) on another thread and waits (bounded) for
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
            let got = collect_batch(
                (0, &Turns::new(1)),
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
            collect_batch(
                (0, &Turns::new(1)),
                &rx,
                4,
                Duration::from_secs(3600),
                || {},
                || true
            ),
            None
        );
    }
}
