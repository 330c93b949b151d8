//! The bench's outputs: `report.md`, `report.json`, `report.svg`, and the
//! build-versus-API cost comparison.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{BenchError, BenchReport, Step};

/// Default cloud price compared against: Amazon Rekognition Image
/// `DetectLabels` (object and scene detection with boxes), first 1 million
/// images a month, US East (N. Virginia): USD 0.001 per image.
pub const API_PRICE_PER_1000: f64 = 1.0;
/// Where [`API_PRICE_PER_1000`] comes from, and when it was read.
pub const API_PRICE_SOURCE: &str = "Amazon Rekognition Image DetectLabels, first 1M images/month, US East (N. Virginia): USD 0.001/image, https://aws.amazon.com/rekognition/pricing/ (list price as read in 2024; this machine has no internet to re-check it, pass --api-price-per-1000 for today's)";

/// Hours in an average month (8,760 / 12).
const HOURS_PER_MONTH: f64 = 730.0;

/// The build-versus-API comparison at the measured capacity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cost {
    /// The machine for a month, USD.
    pub machine_per_month: f64,
    /// The machine's monthly price shared by the cameras it sustains.
    pub per_camera_month: f64,
    /// Detector frames a camera costs a month at the measured rate.
    pub frames_per_camera_month: f64,
    /// The machine's price per 1,000 frames it actually runs the detector on.
    pub per_1000_frames: f64,
    /// The API on the same frames, per camera and month.
    pub api_per_camera_month: f64,
    /// Frames a month above which owning the machine is cheaper than the API.
    pub break_even_frames_per_month: f64,
    /// The same in cameras like these.
    pub break_even_cameras: f64,
}

/// `None` when nothing held (no capacity to spread the price over).
pub(crate) fn cost(
    price_per_hour: f64,
    api_per_1000: f64,
    capacity: usize,
    steps: &[Step],
) -> Option<Cost> {
    let step = steps.iter().find(|s| s.streams == capacity)?;
    let machine_per_month = price_per_hour * HOURS_PER_MONTH;
    let per_camera_fps = step.fps_processed_total / capacity as f64;
    let frames_per_camera_month = per_camera_fps * 3600.0 * HOURS_PER_MONTH;
    let total_frames = step.fps_processed_total * 3600.0 * HOURS_PER_MONTH;
    let api_per_frame = api_per_1000 / 1000.0;
    let break_even_frames = if api_per_frame > 0.0 {
        machine_per_month / api_per_frame
    } else {
        f64::INFINITY
    };
    Some(Cost {
        machine_per_month,
        per_camera_month: machine_per_month / capacity as f64,
        frames_per_camera_month,
        per_1000_frames: if total_frames > 0.0 {
            machine_per_month / total_frames * 1000.0
        } else {
            f64::INFINITY
        },
        api_per_camera_month: frames_per_camera_month * api_per_frame,
        break_even_frames_per_month: break_even_frames,
        break_even_cameras: if frames_per_camera_month > 0.0 {
            break_even_frames / frames_per_camera_month
        } else {
            f64::INFINITY
        },
    })
}

pub(crate) fn write(r: &BenchReport, dir: &Path) -> Result<(), BenchError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| BenchError::Io { path, source }
    };
    let json = dir.join("report.json");
    let text = serde_json::to_string_pretty(r).map_err(|e| BenchError::Io {
        path: json.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&json, text).map_err(io(&json))?;
    let md = dir.join("report.md");
    std::fs::write(&md, markdown(r)).map_err(io(&md))?;
    let svg = dir.join("report.svg");
    plot(r, &svg).map_err(|e| BenchError::Io {
        path: svg.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0}"))
}

/// The Markdown report.
pub fn markdown(r: &BenchReport) -> String {
    let mut s = String::new();
    let gating = if r.motion { "on" } else { "off" };
    let _ = writeln!(s, "# vigil bench\n");
    let _ = writeln!(
        s,
        "**This machine sustains {} camera(s)** at {} fps each (motion gating {gating}), \
         with a P95 end-to-end latency under {:.0} ms and no dropped frames.\n",
        r.capacity, r.target_fps, r.p95_bound_ms
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| machine | {} ({} cores) |", r.machine, r.cores);
    let _ = writeln!(s, "| model | {} on {} |", r.model, r.device);
    let _ = writeln!(
        s,
        "| clip | {} ({:.1} fps, looped, played live) |",
        r.clip, r.clip_fps
    );
    let _ = writeln!(
        s,
        "| asked per stream | {} fps (served: {} fps) |",
        r.fps, r.target_fps
    );
    let _ = writeln!(
        s,
        "| measured | {} s per step after a warm-up |",
        r.duration_s
    );
    let _ = writeln!(s, "| command | `{}` |\n", r.command);
    let _ = writeln!(
        s,
        "| streams | served fps (lowest stream) | detector fps (all) | P95 e2e ms | CPU cores | RSS MB | GPU MB | dropped | holds |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|:---|");
    for st in &r.steps {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {} | {:.2} | {:.0} | {} | {:.1} % | {} |",
            st.streams,
            st.fps_served_min,
            st.fps_processed_total,
            ms(st.p95_ms),
            st.cpu_cores,
            st.rss_mb,
            st.gpu_mem_mb.map_or("–".into(), |g| format!("{g:.0}")),
            st.dropped_share * 100.0,
            if st.holds {
                "yes".to_string()
            } else {
                format!("no: {}", st.reasons.join("; "))
            }
        );
    }
    if let Some(st) = r.steps.iter().find(|s| s.streams == r.capacity.max(1)) {
        let _ = writeln!(
            s,
            "\nMean time per stage at {} stream(s), ms:\n",
            st.streams
        );
        let _ = writeln!(
            s,
            "| {} |",
            st.stage_mean_ms
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(s, "|{}", "---:|".repeat(st.stage_mean_ms.len()));
        let _ = writeln!(
            s,
            "| {} |",
            st.stage_mean_ms
                .iter()
                .map(|(_, v)| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let _ = writeln!(s, "\n## Cost\n");
    match (&r.cost, r.price_per_hour) {
        (Some(c), Some(p)) => {
            let _ = writeln!(
                s,
                "At USD {p}/hour the machine costs USD {:.2} a month: **USD {:.2} per camera-month** \
                 at the measured capacity, USD {:.4} per 1,000 frames the detector runs on.\n",
                c.machine_per_month, c.per_camera_month, c.per_1000_frames
            );
            let _ = writeln!(
                s,
                "A cloud vision API at USD {} per 1,000 images, called on the same {:.0} frames a camera sends it a month, \
                 costs **USD {:.2} per camera-month**. Owning the machine is cheaper above {:.0} frames a month \
                 ({} cameras like these).\n",
                r.api_price_per_1000, c.frames_per_camera_month, c.api_per_camera_month, c.break_even_frames_per_month,
                significant(c.break_even_cameras)
            );
        }
        (None, Some(_)) => {
            let _ = writeln!(
                s,
                "No step held, so there is no capacity to spread the machine's price over.\n"
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "Pass `--price-per-hour` (the machine's price) for the cost per camera-month.\n"
            );
        }
    }
    let _ = writeln!(s, "API price: {}.\n", r.api_price_source);
    let _ = writeln!(
        s,
        "Every number above is the difference of two scrapes of the daemon's `/metrics` \
         (`metrics-N-start.prom`, `metrics-N-end.prom`, beside this report). Plot: `report.svg`."
    );
    s
}

fn plot(r: &BenchReport, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_n = r.steps.iter().map(|s| s.streams).max().unwrap_or(1).max(2) as u32;
    let max_ms = r
        .steps
        .iter()
        .filter_map(|s| s.p95_ms)
        .fold(r.p95_bound_ms, f64::max)
        * 1.15;
    let max_fps = r
        .steps
        .iter()
        .map(|s| s.fps_served_min)
        .fold(r.target_fps, f64::max)
        * 1.25;
    let title = format!(
        "vigil bench: {} fps per stream, motion gating {}",
        r.target_fps,
        if r.motion { "on" } else { "off" }
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(1u32..max_n, 0f64..max_ms)?
        .set_secondary_coord(1u32..max_n, 0f64..max_fps);
    chart
        .configure_mesh()
        .x_desc("streams")
        .y_desc("P95 end-to-end latency (ms)")
        .x_labels(max_n as usize)
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("served fps per stream (lowest)")
        .draw()?;
    let p95: Vec<(u32, f64)> = r
        .steps
        .iter()
        .filter_map(|s| s.p95_ms.map(|p| (s.streams as u32, p)))
        .collect();
    chart
        .draw_series(LineSeries::new(p95.clone(), RED.stroke_width(2)))?
        .label("P95 latency (ms)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.draw_series(p95.iter().map(|&p| Circle::new(p, 4, RED.filled())))?;
    chart
        .draw_series(LineSeries::new(
            vec![(1, r.p95_bound_ms), (max_n, r.p95_bound_ms)],
            RED.mix(0.4),
        ))?
        .label("P95 bound")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.mix(0.4)));
    let fps: Vec<(u32, f64)> = r
        .steps
        .iter()
        .map(|s| (s.streams as u32, s.fps_served_min))
        .collect();
    chart
        .draw_secondary_series(LineSeries::new(fps.clone(), BLUE.stroke_width(2)))?
        .label("served fps (lowest stream)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_secondary_series(fps.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
    chart
        .draw_secondary_series(LineSeries::new(
            vec![(1, r.target_fps), (max_n, r.target_fps)],
            BLUE.mix(0.4),
        ))?
        .label("asked fps")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.mix(0.4)));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Three significant digits: a break-even far below one camera (0.003) must
/// not print as "0.00".
fn significant(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_even_below_one_camera_keeps_its_digits() {
        assert_eq!(significant(0.002_88), "0.00288");
        assert_eq!(significant(2.5), "2.50");
        assert_eq!(significant(1234.4), "1234");
        assert_eq!(significant(0.0), "0");
    }

    fn step(n: usize, fps_total: f64) -> Step {
        Step {
            streams: n,
            window_s: 10.0,
            per_stream: Vec::new(),
            fps_served_min: 5.0,
            fps_processed_total: fps_total,
            dropped_share: 0.0,
            p95_ms: Some(300.0),
            stage_mean_ms: Vec::new(),
            cpu_cores: 1.0,
            rss_mb: 500.0,
            gpu_mem_mb: None,
            holds: true,
            reasons: Vec::new(),
            metrics_start: String::new(),
            metrics_end: String::new(),
            streams_end: String::new(),
        }
    }

    #[test]
    fn cost_at_capacity() {
        // 4 cameras at 5 fps on a USD 0.10/hour machine vs USD 1 per 1,000.
        let c = cost(0.10, 1.0, 4, &[step(4, 20.0)]).unwrap();
        assert!((c.machine_per_month - 73.0).abs() < 1e-9);
        assert!((c.per_camera_month - 18.25).abs() < 1e-9);
        // 5 fps × 3600 × 730 = 13.14 M frames a camera-month.
        assert!((c.frames_per_camera_month - 13_140_000.0).abs() < 1e-3);
        assert!((c.api_per_camera_month - 13_140.0).abs() < 1e-6);
        assert!((c.break_even_frames_per_month - 73_000.0).abs() < 1e-6);
        assert!(cost(0.1, 1.0, 0, &[step(1, 5.0)]).is_none());
    }
}
