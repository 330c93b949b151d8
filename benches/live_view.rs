//! The console's live view against a running `vigil serve`: latency from a
//! processed frame to a viewer (P50/P95, 1 and 8 viewers) and what watching
//! costs the pipeline (processed fps and CPU with 0, 1 and 8 viewers),
//! measured side by side in alternating rounds so drift in machine load
//! hits every mode alike.
//!
//! Latency is the viewer's receive time minus the frame's
//! `processed_unix_ms` (same machine, same clock): encode, hand-off, send,
//! and the client's read.
//!
//! `live-view ADDR STREAM [ROUND_SECONDS] [ROUNDS] [TOKEN]`; see
//! `benches/live_view.sh`, which starts the daemon.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

struct Args {
    addr: String,
    stream: String,
    seconds: u64,
    rounds: usize,
    token: Option<String>,
}

fn args() -> Result<Args, Error> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        return Err("usage: live-view ADDR STREAM [ROUND_SECONDS=20] [ROUNDS=3] [TOKEN]".into());
    }
    Ok(Args {
        addr: a[0].clone(),
        stream: a[1].clone(),
        seconds: a.get(2).map_or(Ok(20), |s| s.parse())?,
        rounds: a.get(3).map_or(Ok(3), |s| s.parse())?,
        token: a.get(4).cloned(),
    })
}

async fn run() -> Result<(), Error> {
    let args = args()?;
    let modes = [0usize, 1, 8];
    let mut fps: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..args.rounds {
        for (m, &viewers) in modes.iter().enumerate() {
            let (f, c, l) = measure(&args, viewers).await?;
            eprintln!(
                "round {round} viewers {viewers}: {f:.2} fps, {c:.3} CPU s/s, {} frames seen",
                l.len()
            );
            fps[m].push(f);
            cpu[m].push(c);
            lat[m].extend(l);
        }
    }
    println!("| viewers | processed fps (mean of rounds) | vs 0 viewers | daemon CPU (cores) | latency P50 | latency P95 | frames seen |");
    println!("|---|---|---|---|---|---|---|");
    let base = mean(&fps[0]);
    for (m, &viewers) in modes.iter().enumerate() {
        let mut l = lat[m].clone();
        l.sort_by(f64::total_cmp);
        let q = |p: f64| {
            l.get(((l.len() as f64 - 1.0) * p).round() as usize)
                .map_or("—".to_string(), |v| format!("{v:.1} ms"))
        };
        println!(
            "| {viewers} | {:.2} | {:.3} | {:.2} | {} | {} | {} |",
            mean(&fps[m]),
            mean(&fps[m]) / base,
            mean(&cpu[m]),
            q(0.5),
            q(0.95),
            l.len()
        );
    }
    Ok(())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// One round: `viewers` live views for the round's length; the processed
/// frame rate and CPU use over it, and every frame's latency.
async fn measure(args: &Args, viewers: usize) -> Result<(f64, f64, Vec<f64>), Error> {
    let stop = Instant::now() + Duration::from_secs(3 + args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..viewers {
        let mut req =
            format!("ws://{}/v1/streams/{}/live", args.addr, args.stream).into_client_request()?;
        if let Some(t) = &args.token {
            req.headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse()?);
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let warm = Instant::now() + Duration::from_secs(3);
            while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(stop.into(), ws.next()).await {
                let Message::Binary(b) = msg else { continue };
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                if b.len() < 4 || Instant::now() < warm {
                    continue;
                }
                let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let header: serde_json::Value = match b.get(4..4 + n).map(serde_json::from_slice) {
                    Some(Ok(h)) => h,
                    _ => continue,
                };
                if let Some(p) = header["processed_unix_ms"].as_f64() {
                    out.push(now - p);
                }
            }
            let _ = ws.close(None).await;
            out
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (p0, c0, t0) = (
        scrape(&args.addr, "vigil_frames_total", "outcome=\"processed\"").await?,
        scrape(&args.addr, "process_cpu_seconds_total", "").await?,
        Instant::now(),
    );
    tokio::time::sleep_until(stop.into()).await;
    let (p1, c1) = (
        scrape(&args.addr, "vigil_frames_total", "outcome=\"processed\"").await?,
        scrape(&args.addr, "process_cpu_seconds_total", "").await?,
    );
    let dt = t0.elapsed().as_secs_f64();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    Ok(((p1 - p0) / dt, (c1 - c0) / dt, lat))
}

/// Sum of a metric's series whose labels contain `filter`. The frame
/// counters are updated once a second by the daemon's sampler, so rounds
/// are long against that tick.
async fn scrape(addr: &str, name: &str, filter: &str) -> Result<f64, Error> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
