//! The decode stage: one thread per stream reading its source into the
//! stream's ring (drop-oldest for live sources, blocking for files).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use crossbeam_channel::Sender;
use vigil_core::Frame;

use crate::ctx::{Decoded, StreamCtx};
use crate::ring::Pushed;
use crate::types::FrameSource;

pub(crate) fn decode_loop(
    ctx: &StreamCtx,
    mut source: Box<dyn FrameSource>,
    stop: &AtomicBool,
    wake_tx: &Sender<()>,
) {
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        match source.next_frame() {
            Ok(Some(f)) => {
                let decode = t.elapsed().saturating_sub(source.idle());
                ctx.stats.decoded.fetch_add(1, Ordering::Relaxed);
                let unix_ms = f
                    .captured_at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                ctx.stats
                    .last_frame_unix_ms
                    .store(unix_ms, Ordering::Relaxed);
                let frame = Frame {
                    stream: ctx.id.clone(),
                    index: f.index,
                    pts: f.pts,
                    captured_at: f.captured_at,
                    captured: f.captured,
                    image: Arc::new(f.image),
                };
                if ctx.ring.push(Decoded { frame, decode }) == Pushed::Closed {
                    break;
                }
                let _ = wake_tx.try_send(());
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(stream = %ctx.id, error = %e, "source failed");
                ctx.stats.set_error(e.to_string());
                break;
            }
        }
    }
    ctx.ring.close();
    let _ = wake_tx.try_send(());
}
