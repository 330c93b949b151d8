//! A stream's externally visible state, shared by its decoder thread, its
//! sink, the metrics sampler and the API.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// First connection attempt in progress.
    Connecting,
    /// Frames are arriving.
    Running,
    /// The source failed or stalled; reconnecting with backoff.
    Reconnecting,
    /// Ended on request or (non-looping file) at its end.
    Stopped,
    /// Cannot continue (missing file, pipeline error); not retried.
    Failed,
}

impl StreamState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => StreamState::Connecting,
            1 => StreamState::Running,
            2 => StreamState::Reconnecting,
            3 => StreamState::Stopped,
            _ => StreamState::Failed,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            StreamState::Connecting => "connecting",
            StreamState::Running => "running",
            StreamState::Reconnecting => "reconnecting",
            StreamState::Stopped => "stopped",
            StreamState::Failed => "failed",
        }
    }
}

pub struct StreamStatus {
    id: String,
    state: AtomicU8,
    reconnects: AtomicU64,
    /// Read/decode errors from the decoder (camera health, see monitor.rs).
    decode_errors: AtomicU64,
    error: Mutex<Option<String>>,
    /// Rates and the blocked flag, computed once a second by the sampler.
    fps_in_bits: AtomicU64,
    fps_processed_bits: AtomicU64,
    blocked: AtomicBool,
    metrics: Arc<Metrics>,
}

impl StreamStatus {
    pub fn new(id: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            id: id.to_string(),
            state: AtomicU8::new(0),
            reconnects: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            error: Mutex::new(None),
            fps_in_bits: AtomicU64::new(0),
            fps_processed_bits: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            metrics,
        }
    }

    pub fn state(&self) -> StreamState {
        StreamState::from_u8(self.state.load(Ordering::SeqCst))
    }

    /// Changes state, logging only actual changes (never per frame) and
    /// keeping `vigil_stream_up` in step. `reason` is already masked.
    pub fn set_state(&self, to: StreamState, reason: Option<&str>) {
        let from = StreamState::from_u8(self.state.swap(to as u8, Ordering::SeqCst));
        if from == to {
            return;
        }
        if let Some(r) = reason {
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.to_string());
        } else if to == StreamState::Running {
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        self.metrics.for_stream(&self.id, |m| {
            m.stream_up
                .with_label_values(&[self.id.as_str()])
                .set(i64::from(to == StreamState::Running));
        });
        match to {
            StreamState::Reconnecting | StreamState::Failed => tracing::warn!(
                stream = %self.id,
                from = from.as_str(),
                to = to.as_str(),
                reason = reason.unwrap_or(""),
                "stream state changed"
            ),
            _ => tracing::info!(
                stream = %self.id,
                from = from.as_str(),
                to = to.as_str(),
                reason = reason.unwrap_or(""),
                "stream state changed"
            ),
        }
    }

    pub fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        self.metrics.for_stream(&self.id, |m| {
            m.stream_reconnects_total
                .with_label_values(&[self.id.as_str()])
                .inc();
        });
    }

    /// A read that failed with a decoder error (not a stall or an end).
    pub fn count_decode_error(&self) {
        self.decode_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_rates(&self, fps_in: f64, fps_processed: f64, blocked: bool) {
        self.fps_in_bits.store(fps_in.to_bits(), Ordering::Relaxed);
        self.fps_processed_bits
            .store(fps_processed.to_bits(), Ordering::Relaxed);
        self.blocked.store(blocked, Ordering::Relaxed);
    }

    pub fn fps_in(&self) -> f64 {
        f64::from_bits(self.fps_in_bits.load(Ordering::Relaxed))
    }

    pub fn fps_processed(&self) -> f64 {
        f64::from_bits(self.fps_processed_bits.load(Ordering::Relaxed))
    }

    pub fn blocked(&self) -> bool {
        self.blocked.load(Ordering::Relaxed)
    }
}
