//! RTSP against the GStreamer test server (`tests/rtsp_server.py`), plus
//! failures against dead, refusing and hung endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use vigil_video::{RtspTransport, SourceOptions, VideoError, VideoSource};

fn opts(open_ms: u64, read_ms: u64, transport: RtspTransport) -> SourceOptions {
    SourceOptions {
        transport,
        open_timeout: Duration::from_millis(open_ms),
        read_timeout: Duration::from_millis(read_ms),
        ..SourceOptions::default()
    }
}

/// Runs `f` on its own thread and fails the test if it has not returned
/// within `limit`. The reads below block inside FFmpeg; the read timeout is
/// the thing under test, so a deadline checked only between reads would
/// never fire if it broke.
fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    vigil_testkit::join_bounded(std::thread::spawn(f), limit, what)
}

/// Reads `want` frames within `budget`, checking live-stream invariants;
/// hands the source back.
fn read_frames(src: VideoSource, want: u64, budget: Duration) -> VideoSource {
    bounded(
        &format!("{want} frames are read"),
        budget + Duration::from_secs(5),
        move || {
            let mut src = src;
            read_frames_inner(&mut src, want, budget);
            src
        },
    )
}

fn read_frames_inner(src: &mut VideoSource, want: u64, budget: Duration) {
    let started = Instant::now();
    let mut last_pts = f64::MIN;
    let mut n = 0;
    while n < want {
        assert!(
            started.elapsed() < budget,
            "only {n} frames within {budget:?}"
        );
        let f = src
            .read()
            .expect("read from a healthy stream")
            .expect("a healthy stream does not end");
        assert_eq!(f.index.0, n);
        assert_eq!((f.image.width(), f.image.height()), (320, 240));
        assert!(
            f.pts.0 >= last_pts,
            "pts went backwards: {last_pts} -> {}",
            f.pts.0
        );
        last_pts = f.pts.0;
        n += 1;
    }
}

/// After the server goes away, reads must stop (None or an error) within the
/// read timeout plus slack, draining at most a few buffered frames; the
/// whole wait runs under a bound, so a read that blocks forever fails too.
fn assert_stream_ends(src: VideoSource, within: Duration) -> (VideoSource, Duration) {
    bounded(
        "the stream ends",
        within + Duration::from_secs(2),
        move || {
            let mut src = src;
            let took = assert_stream_ends_inner(&mut src, within);
            (src, took)
        },
    )
}

fn assert_stream_ends_inner(src: &mut VideoSource, within: Duration) -> Duration {
    let started = Instant::now();
    let mut drained = 0;
    loop {
        assert!(
            started.elapsed() < within,
            "stream did not end within {within:?}"
        );
        match src.read() {
            Ok(Some(_)) => {
                drained += 1;
                assert!(drained < 200, "still getting frames from a dead server");
            }
            Ok(None) | Err(_) => return started.elapsed(),
        }
    }
}

#[test]
fn rtsp_stream_reads_then_ends_when_server_is_killed() {
    let mut server = RtspServer::start(&[]);
    let src = VideoSource::open(&server.url(), &opts(5000, 3000, RtspTransport::Tcp))
        .expect("open rtsp stream");
    let info = src.info().clone();
    assert!(info.live);
    assert_eq!(info.frame_count, None);
    assert_eq!((info.width, info.height), (320, 240));
    assert!(info.fps > 0.0);
    let src = read_frames(src, 10, Duration::from_secs(20));

    server.kill();
    let (mut src, took) = assert_stream_ends(src, Duration::from_secs(6));
    eprintln!("stream ended {took:?} after the server was killed");
    assert!(src.read().expect("sticky end").is_none());
}

#[test]
fn rtsp_read_times_out_when_server_freezes() {
    let server = RtspServer::start(&[]);
    let src = VideoSource::open(&server.url(), &opts(5000, 2000, RtspTransport::Tcp))
        .expect("open rtsp stream");
    let src = read_frames(src, 5, Duration::from_secs(20));
    // SIGSTOP keeps the TCP connection open but sends nothing: only the read
    // timeout can get us out (FFmpeg's default would block for 30 s).
    server.signal("STOP");
    let (_src, took) = assert_stream_ends(src, Duration::from_secs(8));
    eprintln!("frozen stream gave up after {took:?}");
    server.signal("CONT");
}

#[test]
fn rtsp_udp_transport_is_honoured() {
    let server = RtspServer::start(&["--tcp-only"]);
    let src =
        VideoSource::open(&server.url(), &opts(5000, 3000, RtspTransport::Tcp)).expect("tcp works");
    drop(read_frames(src, 5, Duration::from_secs(20)));
    // A TCP-only server refuses UDP, so a successful UDP open would mean the
    // option was ignored.
    let err = VideoSource::open(&server.url(), &opts(3000, 3000, RtspTransport::Udp))
        .expect_err("udp against a tcp-only server");
    assert!(matches!(err, VideoError::StreamOpen { .. }), "{err:?}");
    let udp_server = RtspServer::start(&[]);
    let src = VideoSource::open(&udp_server.url(), &opts(5000, 3000, RtspTransport::Udp))
        .expect("udp open against a normal server");
    drop(read_frames(src, 5, Duration::from_secs(20)));
    // FFmpeg's options live in one process-global variable: the UDP choice
    // above must not leak into the next TCP open. A fresh TCP-only server
    // (the first one may still be tearing down the refused UDP session)
    // refuses anything but TCP, so this open succeeds only if it asked for TCP.
    let tcp_again = RtspServer::start(&["--tcp-only"]);
    let src = VideoSource::open(&tcp_again.url(), &opts(5000, 3000, RtspTransport::Tcp))
        .expect("a tcp open after a udp open still asks for tcp");
    read_frames(src, 5, Duration::from_secs(20));
}

#[test]
fn rtsp_serves_a_looping_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join("loop.mp4");
    make_clip(&clip, 1, &["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    let server = RtspServer::start(&["--file", clip.to_str().expect("utf-8")]);
    let src = VideoSource::open(&server.url(), &opts(5000, 3000, RtspTransport::Tcp))
        .expect("open rtsp stream of a file");
    // 1 s clip at 25 fps: 40 frames means it looped.
    read_frames(src, 40, Duration::from_secs(20));
}

#[test]
fn rtsp_open_fails_fast_when_nothing_listens_and_masks_credentials() {
    let port = free_port(); // bound then released: nothing listens there now
    let url = format!("rtsp://admin:hunter2@127.0.0.1:{port}/test");
    let started = Instant::now();
    let u = url.clone();
    let err = bounded(
        "open against a closed port returns",
        Duration::from_secs(20),
        move || VideoSource::open(&u, &opts(2000, 2000, RtspTransport::Tcp)).err(),
    )
    .expect("nothing listens: open must fail");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "open took {took:?}");
    let msg = err.to_string();
    assert!(matches!(err, VideoError::StreamOpen { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("rtsp://***@127.0.0.1:{port}/test")),
        "error must name the masked URL: {msg}"
    );
    assert!(!msg.contains("hunter2"), "password leaked: {msg}");
}

#[test]
fn rtsp_open_gives_up_on_a_hung_server_within_the_open_timeout() {
    // Accepts TCP connections (kernel backlog) but never answers RTSP.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let url = format!("rtsp://user:pw@127.0.0.1:{port}/test");
    let started = Instant::now();
    let u = url.clone();
    let err = bounded(
        "open against a hung server returns",
        Duration::from_secs(20),
        move || VideoSource::open(&u, &opts(2000, 2000, RtspTransport::Tcp)).err(),
    )
    .expect("hung server: open must fail");
    let took = started.elapsed();
    eprintln!("hung-server open failed after {took:?}: {err}");
    assert!(
        took < Duration::from_secs(7),
        "open took {took:?} (default would be 30 s)"
    );
    assert!(
        err.to_string()
            .contains(&format!("rtsp://***@127.0.0.1:{port}/test")),
        "{err}"
    );
    drop(listener);
}
