//! `/metrics` of the real daemon: valid for Prometheus (`promtool check
//! metrics`), every contract metric present, end-to-end latency consistent
//! with the stage histograms, and a dead camera reported as down.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, http, ChildGuard};

const CONTRACT_METRICS: &[&str] = &[
    "vigil_stage_seconds",
    "vigil_frames_total",
    "vigil_batch_size",
    "vigil_detections_total",
    "vigil_stream_up",
    "vigil_stream_reconnects_total",
    "vigil_events_total",
    "vigil_webhook_deliveries_total",
    "vigil_outbox_pending",
    "vigil_jobs",
    "vigil_http_request_seconds",
];

/// `sum / count` of one `vigil_stage_seconds` series, in seconds.
fn stage_mean(text: &str, stage: &str) -> f64 {
    let value = |suffix: &str| -> f64 {
        let prefix = format!("vigil_stage_seconds_{suffix}{{stage=\"{stage}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in scrape"))
    };
    let count = value("count");
    assert!(count > 0.0, "stage {stage} never observed");
    value("sum") / count
}

#[test]
fn live_scrape_is_valid_complete_and_consistent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = tmp.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{addr}\"\n[storage]\ndir = \"{}\"\n[model]\ndevice = \"cpu\"\n\n\
             [[streams]]\nid = \"plaza\"\nurl = \"{}\"\nloop = true\n\n\
             [[streams]]\nid = \"dead\"\nurl = \"rtsp://user:secret@127.0.0.1:{}/none\"\nstall_timeout_s = 1.0\n",
            tmp.path().join("store").display(),
            support::data("video/vtest.avi").display(),
            free_port()
        ),
    )
    .expect("config");
    let log = tmp.path().join("daemon.log");
    let child = support::vigil()
        .env("RUST_LOG", "info")
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn vigil serve");
    let _guard = ChildGuard(Some(child));
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();

    // Wait for the sample stream to get through a few dozen frames.
    let start = Instant::now();
    let scrape = loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no frames processed:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(300));
        let Ok(r) = http(&addr, "GET", "/metrics", &[], b"") else {
            continue;
        };
        let text = r.text();
        let processed = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("vigil_frames_total{outcome=\"processed\",stream=\"plaza\"} ")
            })
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if processed >= 30.0 && text.contains("vigil_stream_up{stream=\"dead\"} 0") {
            break text;
        }
    };

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus, installed by make setup)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("write scrape");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    for name in CONTRACT_METRICS {
        assert!(
            scrape.lines().any(|l| l.starts_with(name)),
            "{name} missing from /metrics"
        );
    }
    assert!(
        scrape.contains("vigil_stream_up{stream=\"plaza\"} 1"),
        "{scrape}"
    );
    assert!(
        !scrape.contains("secret"),
        "credentials leaked into metrics"
    );

    // Every frame of the sample stream is processed (every = 1), so the mean
    // end-to-end time covers the stages after capture.
    let stages: f64 = ["preprocess", "queue", "inference", "postprocess", "track"]
        .iter()
        .map(|s| stage_mean(&scrape, s))
        .sum();
    let e2e = stage_mean(&scrape, "end_to_end");
    assert!(
        e2e + 0.002 >= stages,
        "end_to_end mean {e2e:.4}s is below the sum of stage means {stages:.4}s"
    );
    assert!(e2e < 10.0, "end_to_end mean {e2e}s");
}
