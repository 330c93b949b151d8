//! The engine's scheduling on a fake detector (no model file, milliseconds
//! per test): source order, skipping, batching, `max_wait_ms`, fairness,
//! live-first priority, motion gating, backpressure (from the detector and
//! from a slow sink), stopping and failures. What needs the real model is in
//! `engine.rs` and `tests/capacity.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, Receiver};
use vigil_core::config::{BatchConfig, JobPriority, MotionConfig};
use vigil_core::{FrameIndex, ImageBgr, PtsMs};
use vigil_pipeline::fake::{tagged_image, FakeDetector};
use vigil_pipeline::{
    BatchDetector, Engine, EngineConfig, FrameResult, FrameSink, FrameSource, PipelineError,
    Priority, SkipPolicy, SourceFrame, StreamHandle, StreamOptions, StreamSummary,
};
use vigil_testkit::{join_bounded, wait_for};

const LIMIT: Duration = Duration::from_secs(30);

/// A frame's tag: the stream's number in the high byte, its index below.
fn tag(stream: u32, index: u64) -> u32 {
    (stream << 16) | (index as u32 & 0xffff)
}

/// Frames painted with their tags, at 25 fps media time, from a list or
/// from a channel the test feeds (a camera that sends when told).
struct TagSource {
    stream: u32,
    next: u64,
    n: u64,
    live: bool,
    feed: Option<Receiver<()>>,
    /// Wall-clock time between frames (a camera's frame interval).
    pace: Option<Duration>,
    /// Overrides the tagged picture (motion tests need real pictures).
    picture: Option<Box<dyn Fn(u64) -> ImageBgr + Send>>,
}

impl TagSource {
    fn file(stream: u32, n: u64) -> Box<Self> {
        Box::new(Self {
            stream,
            next: 0,
            n,
            live: false,
            feed: None,
            pace: None,
            picture: None,
        })
    }

    /// The same source delivering a frame every `interval`.
    fn paced(mut self: Box<Self>, interval: Duration) -> Box<Self> {
        self.pace = Some(interval);
        self
    }

    /// A live source that sends one frame per message on `feed`, and ends
    /// when the feed is dropped.
    fn camera(stream: u32, feed: Receiver<()>) -> Box<Self> {
        Box::new(Self {
            stream,
            next: 0,
            n: u64::MAX,
            live: true,
            feed: Some(feed),
            pace: None,
            picture: None,
        })
    }
}

impl FrameSource for TagSource {
    fn next_frame(&mut self) -> Result<Option<SourceFrame>, PipelineError> {
        if self.next >= self.n {
            return Ok(None);
        }
        if let Some(feed) = &self.feed {
            if feed.recv().is_err() {
                return Ok(None);
            }
        }
        if let Some(p) = self.pace {
            std::thread::sleep(p);
        }
        let i = self.next;
        self.next += 1;
        let image = match &self.picture {
            Some(f) => f(i),
            None => tagged_image(32, 32, tag(self.stream, i)),
        };
        Ok(Some(SourceFrame {
            index: FrameIndex(i),
            pts: PtsMs(i as f64 * 40.0),
            captured_at: SystemTime::now(),
            captured: Instant::now(),
            image,
        }))
    }
    fn is_live(&self) -> bool {
        self.live
    }
    fn fps(&self) -> f64 {
        25.0
    }
}

/// What a sink saw of one frame.
#[derive(Debug, Clone)]
struct Seen {
    index: u64,
    processed: bool,
    score: Option<f32>,
    batch: usize,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
    fn processed(&self) -> Vec<u64> {
        self.seen()
            .iter()
            .filter(|s| s.processed)
            .map(|s| s.index)
            .collect()
    }
}

impl FrameSink for Recorder {
    fn on_frame(&mut self, r: FrameResult) -> Result<(), PipelineError> {
        self.0.lock().unwrap().push(Seen {
            index: r.frame.index.0,
            processed: r.processed,
            score: r.detections.first().map(|d| d.score),
            batch: r.timings.batch_size,
        });
        Ok(())
    }
    fn finish(&mut self, _: &StreamSummary) -> Result<(), PipelineError> {
        Ok(())
    }
}

fn config(max_size: usize, policy: JobPriority) -> EngineConfig {
    EngineConfig {
        batch: BatchConfig {
            max_size,
            max_wait_ms: 2,
        },
        preprocess_threads: 1,
        jobs_priority: policy,
    }
}

fn join(h: StreamHandle) -> StreamSummary {
    join_bounded(std::thread::spawn(move || h.join()), LIMIT, "the stream")
}

fn opts(id: &str) -> StreamOptions {
    StreamOptions::new(id)
}

/// The score the fake gives a frame's detection.
fn score_of(tag: u32) -> f32 {
    (tag % 1000) as f32 / 1000.0
}

#[test]
fn frames_reach_each_sink_in_source_order_with_their_own_detections() {
    // Three sessions finishing batches in any order, two streams.
    let fakes: Vec<Box<dyn BatchDetector>> = (0..3u64)
        .map(|i| {
            Box::new(FakeDetector::new().taking(Duration::from_millis(1 + i)))
                as Box<dyn BatchDetector>
        })
        .collect();
    let e = Engine::start_sessions(fakes, config(4, JobPriority::Fair));
    let (a, b) = (Recorder::default(), Recorder::default());
    let ha = e.add_stream(TagSource::file(1, 60), Box::new(a.clone()), None, opts("a"));
    let hb = e.add_stream(TagSource::file(2, 45), Box::new(b.clone()), None, opts("b"));
    let (sa, sb) = (join(ha), join(hb));
    e.shutdown();
    for (rec, stream, n, summary) in [(&a, 1, 60u64, sa), (&b, 2, 45, sb)] {
        let seen = rec.seen();
        let order: Vec<u64> = seen.iter().map(|s| s.index).collect();
        assert_eq!(order, (0..n).collect::<Vec<_>>(), "stream {stream}");
        for s in &seen {
            assert!(s.processed);
            assert_eq!(s.score, Some(score_of(tag(stream, s.index))), "{s:?}");
        }
        assert_eq!(summary.processed, n);
        assert_eq!(summary.error, None);
    }
}

#[test]
fn skipping_runs_the_detector_on_selected_frames_only() {
    let fake = FakeDetector::new();
    let log = fake.log();
    let e = Engine::start(fake, config(2, JobPriority::Background));
    let rec = Recorder::default();
    let mut o = opts("s");
    o.skip = SkipPolicy::Every(3);
    let summary = join(e.add_stream(TagSource::file(1, 30), Box::new(rec.clone()), None, o));
    e.shutdown();
    let selected: Vec<u64> = (0..30).step_by(3).collect();
    assert_eq!(rec.processed(), selected);
    assert_eq!(rec.seen().len(), 30, "skipped frames reach the sink too");
    let mut ran = log.tags();
    ran.sort_unstable();
    assert_eq!(ran, selected.iter().map(|&i| tag(1, i)).collect::<Vec<_>>());
    assert_eq!((summary.processed, summary.skipped), (10, 20));
}

#[test]
fn batches_fill_up_to_max_size_and_never_beyond() {
    // The detector is held until a backlog builds up, so full batches form.
    let (gate_tx, gate_rx) = bounded::<()>(0);
    let fake = FakeDetector::new().gated(gate_rx);
    let log = fake.log();
    let e = Engine::start(fake, config(4, JobPriority::Background));
    let rec = Recorder::default();
    let h = e.add_stream(
        TagSource::file(1, 40),
        Box::new(rec.clone()),
        None,
        opts("s"),
    );
    let released = std::thread::spawn(move || {
        // One batch per message; the sender's drop lets the rest run.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(20));
            let _ = gate_tx.send(());
        }
    });
    let summary = join(h);
    released.join().unwrap();
    e.shutdown();
    let sizes: Vec<usize> = log.batches().iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|&n| (1..=4).contains(&n)), "{sizes:?}");
    assert!(
        sizes.contains(&4),
        "no full batch under a backlog: {sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), 40);
    assert!(rec.seen().iter().all(|s| (1..=4).contains(&s.batch)));
    assert_eq!(summary.processed, 40);
}

#[test]
fn a_busy_stream_does_not_starve_a_quiet_one() {
    // Round-robin: one frame per stream per sweep, batches of one.
    let fake = FakeDetector::new().taking(Duration::from_millis(1));
    let log = fake.log();
    let e = Engine::start(fake, config(1, JobPriority::Fair));
    let busy = e.add_stream(
        TagSource::file(1, 200),
        Box::new(Recorder::default()),
        None,
        opts("busy"),
    );
    let quiet = e.add_stream(
        TagSource::file(2, 10),
        Box::new(Recorder::default()),
        None,
        opts("quiet"),
    );
    join(quiet);
    join(busy);
    e.shutdown();
    let tags = log.tags();
    let last_quiet = tags
        .iter()
        .rposition(|t| t >> 16 == 2)
        .expect("quiet frames ran");
    // Ten quiet frames interleaved with the busy ones: done within about
    // twenty detector calls, not after the busy stream's two hundred.
    assert!(
        last_quiet < 40,
        "the quiet stream's last frame ran at call {last_quiet}"
    );
}

/// Drives one camera frame at a time through an engine whose detector runs
/// one batch per token, beside a job with a backlog; returns how many job
/// frames ran before each camera frame (after the first, which may queue
/// behind frames dispatched before the camera connected).
fn job_frames_between_camera_frames(policy: JobPriority) -> Vec<usize> {
    let (gate_tx, gate_rx) = bounded::<()>(0);
    let fake = FakeDetector::new().gated(gate_rx);
    let log = fake.log();
    let e = Engine::start(fake, config(1, policy));
    let job = e.add_stream(
        TagSource::file(1, 400),
        Box::new(Recorder::default()),
        None,
        opts("job"),
    );
    let (feed_tx, feed_rx) = bounded::<()>(1);
    let cam_rec = Recorder::default();
    let mut o = opts("cam");
    o.priority = Some(Priority::Live);
    let cam = e.add_stream(
        TagSource::camera(2, feed_rx),
        Box::new(cam_rec.clone()),
        None,
        o,
    );
    let mut between = Vec::new();
    for k in 0..8u64 {
        feed_tx.send(()).unwrap();
        // Wait for the scheduler to take the camera frame into flight.
        wait_for("the camera frame is decoded", LIMIT, || {
            cam.stats()
                .decoded
                .load(std::sync::atomic::Ordering::SeqCst)
                > k
        });
        let mut jobs = 0;
        let deadline = Instant::now() + LIMIT;
        loop {
            assert!(Instant::now() < deadline, "camera frame {k} never ran");
            let before = log.tags().len();
            gate_tx.send(()).unwrap();
            wait_for("the batch ran", LIMIT, || log.tags().len() > before);
            let last = *log.tags().last().unwrap();
            if last == tag(2, k) {
                break;
            }
            assert_eq!(last >> 16, 1, "unexpected frame {last:#x}");
            jobs += 1;
        }
        between.push(jobs);
    }
    drop(feed_tx);
    cam.stop();
    job.stop();
    drop(gate_tx); // lets the rest run
    join(cam);
    join(job);
    e.shutdown();
    between
}

#[test]
fn live_first_a_camera_frame_waits_behind_at_most_one_job_frame() {
    let between = job_frames_between_camera_frames(JobPriority::Background);
    // The first camera frame may find frames already handed to the
    // detector's queues; from then on, at most one per session.
    assert!(
        between[1..].iter().all(|&n| n <= 1),
        "job frames before each camera frame: {between:?}"
    );
}

#[test]
fn fair_policy_lets_a_job_backlog_delay_cameras() {
    // The counterpart of the test above: without live-first, a camera frame
    // queues behind the job frames that fill the stages' channels, which
    // is what `priority = "background"` exists to prevent.
    let between = job_frames_between_camera_frames(JobPriority::Fair);
    assert!(
        between[1..].iter().any(|&n| n >= 2),
        "job frames before each camera frame: {between:?}"
    );
}

#[test]
fn motion_gating_skips_a_still_scene_and_wakes_on_change() {
    // 4 s still at 25 fps, then a bright square moves in; files never defer.
    let picture = |i: u64| {
        let mut img = ImageBgr::filled(64, 48, [80, 80, 80]);
        if i >= 100 {
            let x0 = 8 + ((i - 100) as usize * 2) % 40;
            for y in 10..30 {
                for x in x0..x0 + 14 {
                    let o = (y * 64 + x) * 3;
                    img.data_mut()[o..o + 3].copy_from_slice(&[250, 250, 250]);
                }
            }
        }
        img
    };
    let mut src = TagSource::file(1, 125);
    src.picture = Some(Box::new(picture));
    let fake = FakeDetector::new();
    let e = Engine::start(fake, config(1, JobPriority::Background));
    let rec = Recorder::default();
    let mut o = opts("gated");
    o.motion = Some(MotionConfig {
        check_every_s: 2.0,
        ..MotionConfig::default()
    });
    let summary = join(e.add_stream(src, Box::new(rec.clone()), None, o));
    e.shutdown();
    let processed = rec.processed();
    let still_part = processed.iter().filter(|&&i| i < 100).count();
    // The first frame, then a check frame every 2 s: 3 of 100.
    assert!(
        still_part <= 4,
        "detector ran on {still_part} still frames: {processed:?}"
    );
    assert!(
        processed.contains(&100),
        "the change was not detected at once: {processed:?}"
    );
    assert!(summary.still >= 95, "{summary:?}");
    assert_eq!(rec.seen().len(), 125, "gated frames reach the sink");
}

#[test]
fn a_live_stream_behind_drops_oldest_and_every_frame_is_accounted_for() {
    // The detector is held while a camera sends 60 frames into a ring of 4.
    let (gate_tx, gate_rx) = bounded::<()>(0);
    let e = Engine::start(
        FakeDetector::new().gated(gate_rx),
        config(1, JobPriority::Background),
    );
    let (feed_tx, feed_rx) = bounded::<()>(64);
    let mut o = opts("cam");
    o.ring_capacity = 4;
    let rec = Recorder::default();
    let h = e.add_stream(
        TagSource::camera(1, feed_rx),
        Box::new(rec.clone()),
        None,
        o,
    );
    for _ in 0..60 {
        feed_tx.send(()).unwrap();
    }
    wait_for("60 frames decoded", LIMIT, || {
        h.stats().decoded.load(std::sync::atomic::Ordering::SeqCst) == 60
    });
    drop(feed_tx);
    drop(gate_tx);
    let s = join(h);
    e.shutdown();
    assert_eq!(s.decoded, 60);
    assert!(
        s.dropped > 0,
        "nothing dropped behind a held detector: {s:?}"
    );
    assert_eq!(
        s.processed + s.skipped + s.still + s.dropped,
        s.decoded,
        "every decoded frame is processed, skipped or dropped: {s:?}"
    );
    let seen: Vec<u64> = rec.seen().iter().map(|s| s.index).collect();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "out of order: {seen:?}"
    );
}

#[test]
fn a_file_stream_behind_waits_and_loses_nothing() {
    let (gate_tx, gate_rx) = bounded::<()>(0);
    let e = Engine::start(
        FakeDetector::new().gated(gate_rx),
        config(2, JobPriority::Background),
    );
    let mut o = opts("file");
    o.ring_capacity = 2;
    let rec = Recorder::default();
    let h = e.add_stream(TagSource::file(1, 50), Box::new(rec.clone()), None, o);
    // Held: the decoder fills the ring and the stages' channels, then waits.
    wait_for("the decoder is held by the full ring", LIMIT, || {
        h.stats().decoded.load(std::sync::atomic::Ordering::SeqCst) >= 4
    });
    let decoded = h.stats().decoded.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        decoded < 50,
        "the decoder ran ahead of a held detector: {decoded}"
    );
    drop(gate_tx);
    let s = join(h);
    e.shutdown();
    assert_eq!((s.decoded, s.processed, s.dropped), (50, 50, 0), "{s:?}");
    assert_eq!(rec.processed(), (0..50).collect::<Vec<_>>());
}

#[test]
fn a_failed_batch_stops_its_stream_with_the_frame_named() {
    let e = Engine::start(
        FakeDetector::new().failing_on(tag(1, 5)),
        config(1, JobPriority::Background),
    );
    let rec = Recorder::default();
    let s = join(e.add_stream(
        TagSource::file(1, 30),
        Box::new(rec.clone()),
        None,
        opts("s"),
    ));
    e.shutdown();
    let error = s.error.clone().expect("the stream reports the failure");
    assert!(
        error.contains("frame 5 of stream s") && error.contains("fake failure"),
        "{error}"
    );
    // The failed frame never reaches the sink; frames already in flight
    // drain, and the decoder stops.
    assert!(!rec.seen().iter().any(|f| f.index == 5), "{:?}", rec.seen());
    assert_eq!(rec.processed()[..5], [0, 1, 2, 3, 4]);
    assert!(s.stopped, "{s:?}");
}

#[test]
fn single_images_share_the_batcher_and_get_their_own_answers() {
    let fake = FakeDetector::new();
    let log = fake.log();
    let e = Arc::new(Engine::start(fake, config(4, JobPriority::Background)));
    let callers: Vec<_> = (0..8u32)
        .map(|i| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || (i, e.detect_image(tagged_image(40, 30, 0x0300 + i))))
        })
        .collect();
    for c in callers {
        let (i, got) = join_bounded(c, LIMIT, "a detect_image call");
        let dets = got.expect("detections");
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].score, score_of(0x0300 + i));
        // The fake's whole-input box comes back in the image's own pixels.
        assert_eq!((dets[0].bbox.x2, dets[0].bbox.y2), (40.0, 30.0));
    }
    assert_eq!(log.tags().len(), 8);
    Arc::try_unwrap(e)
        .ok()
        .expect("no other engine handle")
        .shutdown();
}

#[test]
fn a_lone_stream_does_not_wait_for_companions_that_cannot_come() {
    // max_wait is 10 s, but a lone camera never has a second frame ready
    // when its frame reaches the batcher: each frame must run at once and
    // alone (a batcher that waited for companions would hold each for 10 s).
    // The bound is half of max_wait.
    let e = Engine::start(
        FakeDetector::new(),
        EngineConfig {
            batch: BatchConfig {
                max_size: 8,
                max_wait_ms: 10_000,
            },
            ..config(8, JobPriority::Background)
        },
    );
    let (feed_tx, feed_rx) = bounded::<()>(1);
    let rec = Recorder::default();
    let h = e.add_stream(
        TagSource::camera(1, feed_rx),
        Box::new(rec.clone()),
        None,
        opts("lone"),
    );
    for n in 1..=3 {
        feed_tx.send(()).unwrap();
        wait_for(
            &format!("frame {n} reaches the sink without waiting max_wait"),
            Duration::from_secs(5),
            || rec.seen().len() == n,
        );
    }
    drop(feed_tx);
    join(h);
    e.shutdown();
    let seen = rec.seen();
    assert!(seen.iter().all(|s| s.processed && s.batch == 1), "{seen:?}");
}

#[test]
fn stop_ends_a_stream_cleanly() {
    let e = Engine::start(FakeDetector::new(), config(2, JobPriority::Background));
    let rec = Recorder::default();
    let h = e.add_stream(
        TagSource::file(1, 10_000).paced(Duration::from_millis(2)),
        Box::new(rec.clone()),
        None,
        opts("s"),
    );
    // Stop it once it is demonstrably running.
    wait_for("the stream has delivered 5 frames", LIMIT, || {
        rec.seen().len() >= 5
    });
    h.stop();
    // The frames already in flight are finished first.
    let s = join(h);
    e.shutdown();
    assert!(s.stopped, "{s:?}");
    assert!(s.decoded < 10_000, "{s:?}");
    assert_eq!(rec.seen().len() as u64, s.decoded);
}

/// A sink slower than the decoder (e.g. a video encoder) must hold the decoder
/// back through the ring instead of letting frames pile up in memory.
#[test]
fn a_slow_sink_bounds_the_frames_in_flight() {
    #[derive(Clone, Default)]
    struct Slow(Arc<Mutex<u64>>);
    impl FrameSink for Slow {
        fn on_frame(&mut self, _r: FrameResult) -> Result<(), PipelineError> {
            std::thread::sleep(Duration::from_millis(5));
            *self.0.lock().unwrap() += 1;
            Ok(())
        }
        fn finish(&mut self, _s: &StreamSummary) -> Result<(), PipelineError> {
            Ok(())
        }
    }
    let e = Engine::start(FakeDetector::new(), config(4, JobPriority::Background));
    let sink = Slow::default();
    let mut o = opts("slow-sink");
    o.skip = SkipPolicy::Every(10);
    o.ring_capacity = 4;
    o.max_in_flight = 16;
    let h = e.add_stream(TagSource::file(1, 300), Box::new(sink.clone()), None, o);
    let stats = Arc::clone(h.stats());
    // Samples the gap while the stream runs (at most 2,000 samples).
    let mut worst = 0u64;
    for _ in 0..2000 {
        if h.is_finished() {
            break;
        }
        let decoded = stats.decoded.load(std::sync::atomic::Ordering::SeqCst);
        let done = *sink.0.lock().unwrap();
        worst = worst.max(decoded.saturating_sub(done));
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = join(h);
    e.shutdown();
    assert_eq!(s.decoded, 300);
    assert_eq!(*sink.0.lock().unwrap(), 300);
    // ring (4) + in flight (16) + the frame the decoder holds + sampling slack.
    assert!(
        worst <= 4 + 16 + 2,
        "up to {worst} frames between decoder and sink"
    );
}

/// An idle engine gives each request to the session that finished last (its
/// weights are still in the caches), not round the sessions; a session busy
/// with one request does not hold up the next, which another session takes.
#[test]
fn an_idle_engine_keeps_to_one_session_and_a_busy_one_spreads() {
    let fakes: Vec<FakeDetector> = (0..3).map(|_| FakeDetector::new()).collect();
    let logs: Vec<_> = fakes.iter().map(FakeDetector::log).collect();
    let boxed = fakes
        .into_iter()
        .map(|f| Box::new(f) as Box<dyn BatchDetector>)
        .collect();
    let e = Engine::start_sessions(boxed, config(4, JobPriority::Fair));
    for i in 0..12 {
        e.detect_image(tagged_image(40, 30, 0x0500 + i))
            .expect("detections");
    }
    let counts: Vec<usize> = logs.iter().map(|l| l.tags().len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 12, "{counts:?}");
    assert_eq!(
        counts.iter().filter(|&&n| n > 0).count(),
        1,
        "one session ran every request of an idle engine: {counts:?}"
    );
    e.shutdown();

    // Two sessions that each hold their batch until both are inside one
    // (or LIMIT passes): two requests at once meet only if the second went
    // to the session the first left free, not into a queue behind it.
    let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let met = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fakes: Vec<Box<dyn BatchDetector>> = (0..2)
        .map(|_| {
            Box::new(Rendezvous {
                inside: Arc::clone(&inside),
                met: Arc::clone(&met),
            }) as Box<dyn BatchDetector>
        })
        .collect();
    let e = Arc::new(Engine::start_sessions(fakes, config(1, JobPriority::Fair)));
    let callers: Vec<_> = (0..2u32)
        .map(|i| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || e.detect_image(tagged_image(40, 30, 0x0600 + i)))
        })
        .collect();
    for c in callers {
        join_bounded(c, 2 * LIMIT, "a request").expect("detections");
    }
    assert_eq!(
        met.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the two requests never ran in the two sessions at once"
    );
    Arc::try_unwrap(e)
        .ok()
        .expect("no other engine handle")
        .shutdown();
}

/// A detector whose batches wait (bounded by [`LIMIT`]) until another
/// session is inside a batch too; counts the batches that met one.
struct Rendezvous {
    inside: Arc<std::sync::atomic::AtomicUsize>,
    met: Arc<std::sync::atomic::AtomicUsize>,
}

impl BatchDetector for Rendezvous {
    fn input_size(&self) -> (u32, u32) {
        (32, 32)
    }

    fn detect_batch(
        &mut self,
        frames: &[vigil_detect::Prepared],
    ) -> Result<
        (Vec<Vec<vigil_core::Detection>>, vigil_detect::BatchTiming),
        vigil_detect::DetectError,
    > {
        use std::sync::atomic::Ordering::SeqCst;
        self.inside.fetch_add(1, SeqCst);
        if vigil_testkit::try_wait_until(LIMIT, || (self.inside.load(SeqCst) >= 2).then_some(()))
            .is_some()
        {
            self.met.fetch_add(1, SeqCst);
        }
        let out = (vec![Vec::new(); frames.len()], Default::default());
        Ok(out)
    }
}
