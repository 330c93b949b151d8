//! The preprocessing stage: a pool that letterboxes selected frames into
//! input tensors off the inference thread.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use vigil_detect::preprocess;

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
                    m.reply
                        .fail(m.frame, crate::error::PipelineError::ShuttingDown);
                }
            }
            Err(e) => {
                shared.pending.fetch_sub(1, Ordering::SeqCst);
                job.reply.fail(job.decoded.frame, e.into());
            }
        }
    }
}
