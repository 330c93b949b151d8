//! A detector without a model: the [`BatchDetector`] that scheduling,
//! batching, ordering and backpressure tests run on, in milliseconds.
//!
//! Frames are identified by their colour: [`tagged_image`] paints a whole
//! frame in a colour that encodes a number (a stream and a frame index, say),
//! and the fake reads it back from the centre of the letterboxed tensor, so a
//! test sees which frames went into which batch, in what order. Each frame
//! yields one detection covering the frame, scored by its tag.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use vigil_core::{BBox, Detection, ImageBgr};
use vigil_detect::{BatchTiming, DetectError, Prepared};

use crate::infer::BatchDetector;

/// A frame painted in the colour of `tag` (24 bits: red, green, blue).
pub fn tagged_image(width: u32, height: u32, tag: u32) -> ImageBgr {
    let [_, r, g, b] = tag.to_be_bytes();
    ImageBgr::filled(width, height, [b, g, r])
}

/// The tag [`tagged_image`] painted into a letterboxed frame.
pub fn tag_of(frame: &Prepared, (w, h): (u32, u32)) -> u32 {
    let plane = w as usize * h as usize;
    let centre = (h as usize / 2) * w as usize + w as usize / 2;
    let channel = |c: usize| {
        let v = frame.tensor.get(c * plane + centre).copied().unwrap_or(0.0);
        (v * 255.0).round().clamp(0.0, 255.0) as u32
    };
    (channel(0) << 16) | (channel(1) << 8) | channel(2)
}

/// What the fake saw: the tags of each batch, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct FakeLog(Arc<Mutex<Vec<Vec<u32>>>>);

impl FakeLog {
    /// Every batch so far.
    pub fn batches(&self) -> Vec<Vec<u32>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every tag so far, in the order the batches ran.
    pub fn tags(&self) -> Vec<u32> {
        self.batches().into_iter().flatten().collect()
    }
}

/// A [`BatchDetector`] that answers from the frames' colours.
pub struct FakeDetector {
    size: (u32, u32),
    /// Time each batch takes (the detector's cost).
    per_batch: Duration,
    /// When set, each batch waits for one message (or the sender's drop)
    /// before it runs, so a test holds the detector busy for as long as
    /// it wants to.
    gate: Option<Receiver<()>>,
    /// A batch holding this tag fails.
    fail_tag: Option<u32>,
    log: FakeLog,
}

impl FakeDetector {
    /// Letterboxes to `32×32`, answers at once.
    pub fn new() -> Self {
        Self {
            size: (32, 32),
            per_batch: Duration::ZERO,
            gate: None,
            fail_tag: None,
            log: FakeLog::default(),
        }
    }

    /// Each batch takes `d` (a busy wait would burn a test runner's CPU: it
    /// sleeps, the cost of a detector that runs elsewhere).
    pub fn taking(mut self, d: Duration) -> Self {
        self.per_batch = d;
        self
    }

    /// Each batch first waits for a message on `gate`.
    pub fn gated(mut self, gate: Receiver<()>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// A batch with a frame tagged `tag` fails with an inference error.
    pub fn failing_on(mut self, tag: u32) -> Self {
        self.fail_tag = Some(tag);
        self
    }

    /// The record of batches, shared with the caller.
    pub fn log(&self) -> FakeLog {
        self.log.clone()
    }
}

impl Default for FakeDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchDetector for FakeDetector {
    fn input_size(&self) -> (u32, u32) {
        self.size
    }

    fn detect_batch(
        &mut self,
        frames: &[Prepared],
    ) -> Result<(Vec<Vec<Detection>>, BatchTiming), DetectError> {
        if let Some(gate) = &self.gate {
            let _ = gate.recv();
        }
        let started = Instant::now();
        if !self.per_batch.is_zero() {
            std::thread::sleep(self.per_batch);
        }
        let tags: Vec<u32> = frames.iter().map(|f| tag_of(f, self.size)).collect();
        self.log
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tags.clone());
        if let Some(bad) = self.fail_tag.filter(|t| tags.contains(t)) {
            return Err(DetectError::Inference(format!("fake failure on tag {bad}")));
        }
        let (w, h) = self.size;
        let results = frames
            .iter()
            .zip(&tags)
            .map(|(f, &tag)| {
                let whole = BBox {
                    x1: 0.0,
                    y1: 0.0,
                    x2: w as f32,
                    y2: h as f32,
                };
                vec![Detection {
                    class_id: 0,
                    label: "tag".into(),
                    score: (tag % 1000) as f32 / 1000.0,
                    bbox: f.letterbox.to_source(whole),
                    track_id: None,
                }]
            })
            .collect();
        let timing = BatchTiming {
            inference: started.elapsed(),
            postprocess: Duration::ZERO,
        };
        Ok((results, timing))
    }
}
