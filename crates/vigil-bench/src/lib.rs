//! `vigil bench`: how many cameras does this box handle, and what does
//! that cost?
//!
//! For N = 1, 2, … the bench starts the real daemon in-process
//! ([`vigil_server::run`]: decoder threads, the batched detector, trackers,
//! events, metrics) with N copies of a clip played live at their own frame
//! rate, lets it warm up, and reads the daemon's own `/metrics` over HTTP
//! before and after a measured window. A step *holds* when every stream
//! was served at the requested rate, no ring dropped frames (no growing
//! backlog) and the P95 end-to-end latency stayed under the bound. The
//! capacity is the largest N up to which every step held. Every number in
//! the report is a difference of two scrapes of `/metrics`, which are saved
//! beside it, so a reader can check them.

mod prom;
mod report;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vigil_core::config::{Config, MotionConfig, QueueBackend, StreamConfig};

pub use prom::{quantile, Scrape};
pub use report::{Cost, API_PRICE_PER_1000, API_PRICE_SOURCE};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The clip every stream plays, looped, at its own frame rate.
    pub clip: PathBuf,
    /// Detection rate asked of each stream (`fps` of `[[streams]]`).
    pub fps: f64,
    pub max_streams: usize,
    /// P95 end-to-end latency bound, milliseconds.
    pub p95_ms: f64,
    /// Measured seconds per step (after the warm-up).
    pub duration_s: f64,
    /// Motion gating on the streams.
    pub motion: bool,
    /// The machine's price, USD per hour (for the cost section).
    pub price_per_hour: Option<f64>,
    /// A cloud vision API's price, USD per 1,000 images.
    pub api_price_per_1000: f64,
    /// Where the report, JSON, plot and raw scrapes go.
    pub out_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("--clip {path}: {reason}")]
    Clip { path: String, reason: String },
    #[error("{0}")]
    Option(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("daemon for {streams} stream(s): {reason}")]
    Daemon { streams: usize, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One stream's counters over the measured window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamStep {
    pub id: String,
    pub decoded: u64,
    pub processed: u64,
    pub still: u64,
    pub skipped: u64,
    pub dropped: u64,
    /// Frames served per second: processed + still (gated out because
    /// nothing moved, which is the point of gating).
    pub fps_served: f64,
    pub fps_processed: f64,
}

/// One N.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub streams: usize,
    /// Seconds between the two scrapes.
    pub window_s: f64,
    pub per_stream: Vec<StreamStep>,
    /// Lowest served rate of any stream.
    pub fps_served_min: f64,
    /// Detector frames per second over all streams.
    pub fps_processed_total: f64,
    pub dropped_share: f64,
    /// P95 of `vigil_stage_seconds{stage="end_to_end"}`, ms.
    pub p95_ms: Option<f64>,
    /// Mean per stage (`vigil_stage_seconds`), ms.
    pub stage_mean_ms: Vec<(String, f64)>,
    /// Cores busy (`process_cpu_seconds_total` rate).
    pub cpu_cores: f64,
    pub rss_mb: f64,
    /// GPU memory used (nvidia-smi), MiB; `None` on a CPU.
    pub gpu_mem_mb: Option<f64>,
    pub holds: bool,
    /// Why it did not hold.
    pub reasons: Vec<String>,
    /// Raw scrapes beside the report (relative file names).
    pub metrics_start: String,
    pub metrics_end: String,
    pub streams_end: String,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub clip: String,
    pub clip_fps: f64,
    pub fps: f64,
    /// The rate a stream must be served at: `min(fps, clip_fps)`.
    pub target_fps: f64,
    pub p95_bound_ms: f64,
    pub duration_s: f64,
    pub motion: bool,
    pub model: String,
    pub device: String,
    pub machine: String,
    pub cores: usize,
    pub steps: Vec<Step>,
    /// Largest N up to which every step held (0: not even one stream).
    pub capacity: usize,
    pub cost: Option<Cost>,
    pub api_price_per_1000: f64,
    pub api_price_source: String,
    pub price_per_hour: Option<f64>,
    pub command: String,
}

/// Progress for a bar: seconds done out of the planned total.
#[derive(Debug, Clone)]
pub struct Progress {
    pub streams: usize,
    pub phase: &'static str,
    pub done_s: f64,
    pub total_s: f64,
}

/// Warm-up before each measured window: the model loads, streams connect,
/// trackers settle, and the first second of counters is not measured.
fn warmup_s(duration_s: f64) -> f64 {
    (duration_s / 4.0).clamp(3.0, 15.0)
}

/// Runs the bench. `base` supplies `[model]`, `[batch]`, `[tracker]`;
/// streams, storage, server and outputs are the bench's own. `command` is
/// recorded in the report.
pub fn run(
    base: &Config,
    opts: &BenchOptions,
    command: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<BenchReport, BenchError> {
    check(opts)?;
    let clip = opts.clip.to_string_lossy().to_string();
    let info = vigil_video::VideoSource::open(&clip, &vigil_video::SourceOptions::default())
        .map_err(|e| BenchError::Clip {
            path: clip.clone(),
            reason: e.to_string(),
        })?
        .info()
        .clone();
    let clip_abs = std::fs::canonicalize(&opts.clip).map_err(io(&opts.clip))?;
    std::fs::create_dir_all(&opts.out_dir).map_err(io(&opts.out_dir))?;
    let target = opts.fps.min(info.fps);
    let per_step = warmup_s(opts.duration_s) + opts.duration_s;
    let total = per_step * opts.max_streams as f64;
    let mut steps = Vec::new();
    let mut device = String::new();
    for n in 1..=opts.max_streams {
        let done = per_step * (n - 1) as f64;
        let (step, dev) = run_step(base, opts, &clip_abs, n, target, &mut |phase, s| {
            progress(Progress {
                streams: n,
                phase,
                done_s: done + s,
                total_s: total,
            })
        })?;
        device = dev;
        let holds = step.holds;
        steps.push(step);
        if !holds {
            break;
        }
    }
    let capacity = steps.iter().take_while(|s| s.holds).count();
    let cost = opts
        .price_per_hour
        .and_then(|p| report::cost(p, opts.api_price_per_1000, capacity, &steps));
    let report = BenchReport {
        clip,
        clip_fps: info.fps,
        fps: opts.fps,
        target_fps: target,
        p95_bound_ms: opts.p95_ms,
        duration_s: opts.duration_s,
        motion: opts.motion,
        model: base.model.path.display().to_string(),
        device,
        machine: machine(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        steps,
        capacity,
        cost,
        api_price_per_1000: opts.api_price_per_1000,
        api_price_source: API_PRICE_SOURCE.to_string(),
        price_per_hour: opts.price_per_hour,
        command: command.to_string(),
    };
    report::write(&report, &opts.out_dir)?;
    Ok(report)
}

fn check(opts: &BenchOptions) -> Result<(), BenchError> {
    let bad = |m: String| Err(BenchError::Option(m));
    if !(opts.fps.is_finite() && opts.fps > 0.0 && opts.fps <= 1000.0) {
        return bad(format!("--fps must be within (0, 1000], got {}", opts.fps));
    }
    if !(1..=256).contains(&opts.max_streams) {
        return bad(format!(
            "--max-streams must be between 1 and 256, got {}",
            opts.max_streams
        ));
    }
    if !(opts.p95_ms.is_finite() && opts.p95_ms > 0.0) {
        return bad(format!("--p95-ms must be positive, got {}", opts.p95_ms));
    }
    if !(opts.duration_s.is_finite() && (2.0..=86_400.0).contains(&opts.duration_s)) {
        return bad(format!(
            "--duration must be between 2 and 86400 seconds, got {}",
            opts.duration_s
        ));
    }
    if let Some(p) = opts.price_per_hour {
        if !(p.is_finite() && p >= 0.0) {
            return bad(format!("--price-per-hour must be 0 or more, got {p}"));
        }
    }
    if !(opts.api_price_per_1000.is_finite() && opts.api_price_per_1000 >= 0.0) {
        return bad(format!(
            "--api-price-per-1000 must be 0 or more, got {}",
            opts.api_price_per_1000
        ));
    }
    if !opts.clip.is_file() {
        return Err(BenchError::Clip {
            path: opts.clip.display().to_string(),
            reason: "no such file".into(),
        });
    }
    Ok(())
}

/// The daemon's config for one step.
fn step_config(
    base: &Config,
    opts: &BenchOptions,
    clip: &Path,
    n: usize,
    store: &Path,
    port: u16,
) -> Config {
    let mut cfg = base.clone();
    cfg.server.listen = format!("127.0.0.1:{port}");
    cfg.server.token = None;
    cfg.storage.dir = store.to_path_buf();
    cfg.queue.backend = QueueBackend::Local;
    cfg.queue.url = None;
    cfg.shard = Default::default();
    cfg.webhooks.clear();
    cfg.mqtt.clear();
    cfg.events.snapshots = false;
    cfg.streams = (0..n)
        .map(|i| StreamConfig {
            id: format!("bench-{i}"),
            url: clip.display().to_string(),
            fps: Some(opts.fps),
            looping: true,
            motion: MotionConfig {
                enabled: opts.motion,
                ..MotionConfig::default()
            },
            ..StreamConfig::default()
        })
        .collect();
    cfg
}

fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BenchError::Io {
            path: "127.0.0.1:0".into(),
            source: e,
        })
}

/// A GET on a fresh connection; the body on 200.
fn get(addr: &str, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("GET {path}: HTTP {status}"));
    }
    // The daemon sends small bodies; de-chunk if needed.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            out.push_str(after.get(..n).ok_or("truncated chunk")?);
            rest = after.get(n + 2..).unwrap_or("");
        }
        return Ok(out);
    }
    Ok(body.to_string())
}

fn run_step(
    base: &Config,
    opts: &BenchOptions,
    clip: &Path,
    n: usize,
    target: f64,
    progress: &mut dyn FnMut(&'static str, f64),
) -> Result<(Step, String), BenchError> {
    let daemon_err = |reason: String| BenchError::Daemon { streams: n, reason };
    let store = opts.out_dir.join(format!(".store-{n}"));
    let _ = std::fs::remove_dir_all(&store);
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let cfg = step_config(base, opts, clip, n, &store, port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("vigil-bench-http")
        .build()
        .map_err(|e| daemon_err(format!("cannot start the async runtime: {e}")))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = rt.spawn(vigil_server::run(cfg, async move {
        let _ = stop_rx.await;
    }));
    let result = measure(&addr, opts, n, target, &daemon, progress);
    let _ = stop_tx.send(());
    let stopped =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), daemon).await });
    rt.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&store);
    let step = result.map_err(daemon_err)?;
    match stopped {
        Ok(Ok(Ok(()))) | Err(_) => {}
        Ok(Ok(Err(e))) => return Err(daemon_err(vigil_server::ServeError::chain(&e))),
        Ok(Err(e)) => return Err(daemon_err(format!("crashed: {e}"))),
    }
    Ok(step)
}

fn measure(
    addr: &str,
    opts: &BenchOptions,
    n: usize,
    target: f64,
    daemon: &tokio::task::JoinHandle<Result<(), vigil_server::ServeError>>,
    progress: &mut dyn FnMut(&'static str, f64),
) -> Result<(Step, String), String> {
    let started = Instant::now();
    let ready = loop {
        if daemon.is_finished() {
            return Err("the daemon stopped before it was ready (see the log above)".into());
        }
        if let Ok(body) = get(addr, "/readyz") {
            break body;
        }
        if started.elapsed() > Duration::from_secs(180) {
            return Err("not ready within 180 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let device = serde_json::from_str::<serde_json::Value>(&ready)
        .ok()
        .and_then(|v| v["device"].as_str().map(str::to_string))
        .unwrap_or_default();
    let warm = warmup_s(opts.duration_s);
    tick(warm, "warm-up", 0.0, progress);
    let start_text = get(addr, "/metrics")?;
    let t0 = Instant::now();
    tick(opts.duration_s, "measuring", warm, progress);
    let end_text = get(addr, "/metrics")?;
    let window_s = t0.elapsed().as_secs_f64();
    let streams_text = get(addr, "/v1/streams")?;
    let gpu_mem_mb = (device == "cuda").then(gpu_memory_mb).flatten();
    let names = (
        format!("metrics-{n}-start.prom"),
        format!("metrics-{n}-end.prom"),
        format!("streams-{n}.json"),
    );
    for (name, text) in [
        (&names.0, &start_text),
        (&names.1, &end_text),
        (&names.2, &streams_text),
    ] {
        let path = opts.out_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let step = step_from_scrapes(
        n,
        target,
        opts.p95_ms,
        window_s,
        &Scrape::parse(&start_text),
        &Scrape::parse(&end_text),
        gpu_mem_mb,
        names,
    );
    Ok((step, device))
}

/// Sleeps `secs` in one-second ticks, reporting progress.
fn tick(secs: f64, phase: &'static str, offset: f64, progress: &mut dyn FnMut(&'static str, f64)) {
    let start = Instant::now();
    loop {
        let done = start.elapsed().as_secs_f64();
        progress(phase, offset + done.min(secs));
        if done >= secs {
            return;
        }
        std::thread::sleep(Duration::from_secs_f64((secs - done).min(1.0)));
    }
}

/// The step's numbers from two scrapes `window_s` apart.
#[allow(clippy::too_many_arguments)]
pub fn step_from_scrapes(
    n: usize,
    target: f64,
    p95_bound: f64,
    window_s: f64,
    start: &Scrape,
    end: &Scrape,
    gpu_mem_mb: Option<f64>,
    files: (String, String, String),
) -> Step {
    let delta = |name: &str, labels: &[(&str, &str)]| {
        (end.sum(name, labels) - start.sum(name, labels)).max(0.0)
    };
    let per_stream: Vec<StreamStep> = (0..n)
        .map(|i| {
            let id = format!("bench-{i}");
            let c = |outcome: &str| {
                delta(
                    "vigil_frames_total",
                    &[("stream", &id), ("outcome", outcome)],
                ) as u64
            };
            let (processed, still) = (c("processed"), c("still"));
            StreamStep {
                decoded: c("decoded"),
                processed,
                still,
                skipped: c("skipped"),
                dropped: c("dropped"),
                fps_served: (processed + still) as f64 / window_s,
                fps_processed: processed as f64 / window_s,
                id,
            }
        })
        .collect();
    let fps_served_min = per_stream
        .iter()
        .map(|s| s.fps_served)
        .fold(f64::INFINITY, f64::min);
    let fps_processed_total = per_stream.iter().map(|s| s.fps_processed).sum();
    let decoded: u64 = per_stream.iter().map(|s| s.decoded).sum();
    let dropped: u64 = per_stream.iter().map(|s| s.dropped).sum();
    let dropped_share = dropped as f64 / decoded.max(1) as f64;
    let e2e = [("stage", "end_to_end")];
    let p95_ms = quantile(
        0.95,
        &start.buckets("vigil_stage_seconds", &e2e),
        &end.buckets("vigil_stage_seconds", &e2e),
    )
    .map(|s| s * 1000.0);
    let stage_mean_ms = vigil_server::STAGES
        .iter()
        .map(|stage| {
            let l = [("stage", *stage)];
            let sum = delta("vigil_stage_seconds_sum", &l);
            let count = delta("vigil_stage_seconds_count", &l);
            (
                stage.to_string(),
                if count > 0.0 {
                    sum / count * 1000.0
                } else {
                    0.0
                },
            )
        })
        .collect();
    let cpu_cores = delta("process_cpu_seconds_total", &[]) / window_s;
    let rss_mb = end.sum("process_resident_memory_bytes", &[]) / (1024.0 * 1024.0);
    let mut reasons = Vec::new();
    // 5 % slack: a one-second sampler tick at either end of the window.
    if fps_served_min < 0.95 * target {
        reasons.push(format!(
            "a stream was served at {fps_served_min:.2} fps, below the {target:.2} fps asked"
        ));
    }
    if dropped_share > 0.01 {
        reasons.push(format!(
            "{:.1} % of decoded frames were dropped (the pipeline fell behind)",
            dropped_share * 100.0
        ));
    }
    match p95_ms {
        Some(p) if p > p95_bound => {
            reasons.push(format!("P95 end-to-end {p:.0} ms > {p95_bound:.0} ms"))
        }
        None if fps_served_min > 0.0 && per_stream.iter().all(|s| s.processed == 0) => {}
        None => reasons.push("no frame reached the detector".into()),
        _ => {}
    }
    Step {
        streams: n,
        window_s,
        per_stream,
        fps_served_min,
        fps_processed_total,
        dropped_share,
        p95_ms,
        stage_mean_ms,
        cpu_cores,
        rss_mb,
        gpu_mem_mb,
        holds: reasons.is_empty(),
        reasons,
        metrics_start: files.0,
        metrics_end: files.1,
        streams_end: files.2,
    }
}

/// Used GPU memory from `nvidia-smi`, when there is one.
fn gpu_memory_mb() -> Option<f64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

/// The CPU model, for the report's header.
fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
