//! The preprocessing stage: a pool that letterboxes selected frames into
//! input tensors off the inference thread.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use vigil_detect::{preprocess, Prepared};

use crate::ctx::{InferJob, JobMeta, PreJob, Shared};
use crate::types::Timings;

pub(crate) fn preprocess_worker(
    rx: &Receiver<PreJob>,
    tx: &Sender<InferJob>,
    (w, h): (u32, u32),
    shared: &Shared,
) {
    for job in rx.iter() {
        let t = Instant::now();
        let mut tensor = shared.tensors.take(3 * w as usize * h as usize);
        match preprocess::preprocess_into(&job.decoded.frame.image, w, h, &mut tensor) {
            Ok(letterbox) => {
                let prepared = Prepared { tensor, letterbox };
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
                    m.reply
                        .fail(m.frame, crate::error::PipelineError::ShuttingDown);
                }
            }
            Err(e) => {
                shared.tensors.give(tensor);
                shared.pending.fetch_sub(1, Ordering::SeqCst);
                job.reply.fail(job.decoded.frame, e.into());
            }
        }
    }
}
