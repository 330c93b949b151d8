//! End-to-end tests of the back ends through the real binary: the OpenVINO
//! build of ONNX Runtime that `make setup` fetches, the CPU provider on the
//! same library, `vigil model convert --fp16`, and what `/readyz`, the logs
//! and `vigil_model_info` say about them. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::path::PathBuf;

use support::{assert_clean_error, free_port};

fn openvino_library() -> PathBuf {
    let p = support::root().join("third_party/onnxruntime-openvino/libonnxruntime.so");
    assert!(p.is_file(), "{} missing: run `make setup`", p.display());
    p
}

/// What `auto` must resolve to without CUDA, with the OpenVINO library: on an
/// Intel CPU with AMX-BF16 OpenVINO in BF16, elsewhere the CPU provider at
/// the model's own precision.
fn expected_auto() -> (&'static str, &'static str) {
    let cpu = vigil_detect::CpuFeatures::detect();
    if vigil_detect::runtime::auto_prefers_openvino(cpu) {
        ("openvino", "bf16")
    } else {
        ("cpu", "fp32")
    }
}

/// The AMX branch of `auto`, tried on any CPU: the daemon reads a
/// Sapphire Rapids `/proc/cpuinfo` (`VIGIL_CPUINFO`) and must take OpenVINO
/// in BF16 with one session, say why, and still detect; the same daemon on
/// a CPU without AMX (AVX-512 BF16 only), or with AMX but a runtime build
/// without the OpenVINO provider, must keep the CPU provider.
#[test]
fn auto_takes_openvino_bf16_on_an_amx_cpu_and_the_cpu_provider_without_amx() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let flags = "fpu sse4_2 avx2 avx512f avx512_bf16 avx512_fp16";
    let cpu_library = support::root().join("third_party/onnxruntime/libonnxruntime.so");
    let amx = " amx_bf16 amx_tile amx_int8";
    for (name, extra, library, device, precision, why) in [
        (
            "amx",
            amx,
            openvino_library(),
            "openvino",
            "bf16",
            "AMX-BF16",
        ),
        (
            "no-amx",
            "",
            openvino_library(),
            "cpu",
            "fp32",
            "no AMX-BF16",
        ),
        // AMX, but a runtime build without the OpenVINO provider.
        (
            "amx-cpu-build",
            amx,
            cpu_library.clone(),
            "cpu",
            "fp32",
            "no OpenVINO provider",
        ),
    ] {
        let cpuinfo = tmp.path().join(format!("cpuinfo-{name}"));
        std::fs::write(
            &cpuinfo,
            format!(
                "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}{extra}\n\n\
                 processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}{extra}\n"
            ),
        )
        .expect("cpuinfo");
        let addr = format!("127.0.0.1:{}", free_port());
        let config = format!(
            "[server]\nlisten = \"{addr}\"\n[storage]\ndir = \"{}\"\n[model]\n\
             device = \"auto\"\nort_library = \"{}\"\n",
            tmp.path().join(format!("store-{name}")).display(),
            library.display()
        );
        let cpuinfo = cpuinfo.display().to_string();
        let mut node = support::start_node_env(
            tmp.path(),
            name,
            "serve",
            &addr,
            &config,
            &[("ORT_DYLIB_PATH", ""), ("VIGIL_CPUINFO", cpuinfo.as_str())],
        );
        node.wait_ready();
        let ready = node.get_json("/readyz");
        assert_eq!(ready["device"], device, "{name}: {ready}");
        assert_eq!(ready["precision"], precision, "{name}: {ready}");
        let log = node.log();
        assert!(log.contains(why), "{name}: the log must say why: {log}");
        // One OpenVINO session with every core (two single-thread ones ran at
        // half speed); one CPU-provider session per core.
        let sessions = if device == "openvino" {
            1
        } else {
            vigil_detect::available_cores().clamp(1, 4)
        };
        assert!(
            log.contains(&format!("sessions={sessions}"))
                || log.contains(&format!("\"sessions\":{sessions}")),
            "{name}: auto must run {sessions} session(s): {log}"
        );
        let photo = std::fs::read(support::data("photos/person.jpg")).expect("photo");
        let r = node.req("POST", "/v1/detect", &photo);
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let body: serde_json::Value = serde_json::from_str(&r.text()).expect("JSON");
        let people = body["detections"]
            .as_array()
            .expect("detections")
            .iter()
            .filter(|d| d["label"] == "person")
            .count();
        assert!(people >= 1, "{name}: the person on person.jpg: {body}");
    }
}

#[test]
fn serve_reports_the_resolved_back_end_in_readyz_metrics_and_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let addr = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n[storage]\ndir = \"{}\"\n[model]\ndevice = \"auto\"\n\
         ort_library = \"{}\"\n",
        tmp.path().join("store").display(),
        openvino_library().display()
    );
    let mut node = support::start_node_env(
        tmp.path(),
        "serve",
        "serve",
        &addr,
        &config,
        &[
            // The daemon must not pick up the CPU library the test harness uses.
            ("ORT_DYLIB_PATH", ""),
        ],
    );
    node.wait_ready();
    let (device, precision) = expected_auto();
    let ready = node.get_json("/readyz");
    assert_eq!(ready["device"], device, "{ready}");
    assert_eq!(ready["precision"], precision, "{ready}");
    assert_eq!(ready["backend"], "onnxruntime-1.24.1", "{ready}");
    let metrics = node.req("GET", "/metrics", b"").text();
    let series = format!(
        "vigil_model_info{{backend=\"onnxruntime-1.24.1\",device=\"{device}\",precision=\"{precision}\"}} 1"
    );
    assert!(metrics.contains(&series), "no {series} in:\n{metrics}");
    assert_eq!(
        metrics.matches("vigil_model_info{").count(),
        1,
        "one model_info series"
    );
    // Detection works on it, end to end.
    let photo = std::fs::read(support::data("photos/dog.jpg")).expect("photo");
    let r = support::http(
        &node.addr,
        "POST",
        "/v1/detect",
        &[("Content-Type", "image/jpeg")],
        &photo,
    )
    .expect("POST /v1/detect");
    assert_eq!(r.status, 200, "{}", r.text());
    let labels: Vec<String> = r.json()["detections"]
        .as_array()
        .expect("detections")
        .iter()
        .map(|d| d["label"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(labels.iter().any(|l| l == "dog"), "{labels:?}");
    let log = node.log();
    assert!(
        log.contains("inference sessions share the batcher") && log.contains(precision),
        "{log}"
    );
}

#[test]
fn detect_logs_what_runs_and_refuses_impossible_precisions() {
    let lib = openvino_library();
    let photo = support::data("photos/person.jpg");
    let model = support::model_dynamic();
    let out = support::vigil()
        .env("ORT_DYLIB_PATH", &lib)
        .env("RUST_LOG", "info")
        .args([
            "detect",
            "--device",
            "openvino",
            "--precision",
            "fp32",
            "--model",
        ])
        .arg(&model)
        .arg(&photo)
        .output()
        .expect("spawn vigil");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("model loaded"))
        .unwrap_or_else(|| panic!("no `model loaded` log: {stderr}"));
    for want in [
        "device=openvino",
        "precision=fp32",
        "backend=onnxruntime-1.24.1",
    ] {
        assert!(line.contains(want), "{want} missing in {line}");
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"person\""));

    let out = support::vigil()
        .env("ORT_DYLIB_PATH", &lib)
        .args(["detect", "--precision", "int8", "--model"])
        .arg(&model)
        .arg(&photo)
        .output()
        .expect("spawn vigil");
    assert_clean_error(
        &out,
        &String::from_utf8_lossy(&out.stderr),
        "vigil model quantize",
    );

    let (out, _, stderr) = support::run(&["detect", "--precision", "fp64", "data/photos/dog.jpg"]);
    assert_clean_error(&out, &stderr, "fp64");
}

#[test]
fn convert_fp16_writes_a_checked_float16_model_that_detects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_model = tmp.path().join("fp16.onnx");
    let (out, _, stderr) = support::run(&[
        "model",
        "convert",
        "--fp16",
        support::model_dynamic().to_str().expect("utf-8"),
        out_model.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("agreement with FP32"), "{stderr}");
    let fp32_len = std::fs::metadata(support::model_dynamic())
        .expect("model")
        .len();
    let fp16_len = std::fs::metadata(&out_model).expect("written").len();
    assert!(
        fp16_len * 10 < fp32_len * 6,
        "FP16 file is {fp16_len} bytes, FP32 {fp32_len}"
    );
    // It runs through vigil as an FP16 model (float32 at the boundary).
    let out = support::vigil()
        .env("RUST_LOG", "info")
        .args(["detect", "--device", "cpu", "--model"])
        .arg(&out_model)
        .arg(support::data("photos/dog.jpg"))
        .output()
        .expect("spawn vigil");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("precision=fp16"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"dog\""));

    // A file that is not a model: a clear error, nothing written.
    let junk = tmp.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").expect("write");
    let dest = tmp.path().join("never.onnx");
    let (out, _, stderr) = support::run(&[
        "model",
        "convert",
        "--fp16",
        junk.to_str().expect("utf-8"),
        dest.to_str().expect("utf-8"),
    ]);
    assert_clean_error(&out, &stderr, "junk.onnx");
    assert!(!dest.exists());
}

#[test]
fn quantize_calibrates_on_real_frames_checks_and_refuses_bad_calibration() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = support::model_dynamic();
    let clip = support::data("video/vtest.avi");
    let out_model = tmp.path().join("int8.onnx");
    // Few frames keep the test lean; the benchmark calibrates on more.
    let (out, _, stderr) = support::run(&[
        "model",
        "quantize",
        model.to_str().expect("utf-8"),
        out_model.to_str().expect("utf-8"),
        "--calib",
        clip.to_str().expect("utf-8"),
        "--frames",
        "6",
        "--method",
        "minmax",
    ]);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Conv quantized to INT8"), "{stderr}");
    let out = support::vigil()
        .env("RUST_LOG", "info")
        .args([
            "detect",
            "--device",
            "cpu",
            "--precision",
            "int8",
            "--model",
        ])
        .arg(&out_model)
        .arg(support::data("photos/horses.jpg"))
        .output()
        .expect("spawn vigil");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("precision=int8"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"horse\""));

    // Calibrated on black frames, the ranges are wrong: the check catches it
    // and nothing is written.
    let black = tmp.path().join("black.png");
    support::lavfi_clip(&black, "color=black:s=640x480", None, &["-frames:v", "1"]);
    let dest = tmp.path().join("bad.onnx");
    let (out, _, stderr) = support::run(&[
        "model",
        "quantize",
        model.to_str().expect("utf-8"),
        dest.to_str().expect("utf-8"),
        "--calib",
        black.to_str().expect("utf-8"),
        black.to_str().expect("utf-8"),
        "--method",
        "minmax",
    ]);
    assert_clean_error(&out, &stderr, "INT8 agreement");
    assert!(!dest.exists(), "a refused model must not be written");
    let (out, _, stderr) = support::run(&[
        "model",
        "quantize",
        model.to_str().expect("utf-8"),
        dest.to_str().expect("utf-8"),
        "--calib",
        "no/such/clip.mp4",
    ]);
    assert_clean_error(&out, &stderr, "no/such/clip.mp4");
}
