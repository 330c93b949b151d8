//! Hostile clients against the real daemon (issue #15): each test first
//! makes the attack that used to work, then checks that it no longer does
//! and that normal clients are still served. Real binary, model, FFmpeg and
//! sockets on 127.0.0.1; every wait has a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{free_port, http, HttpResponse, Node};

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn start(dir: &Path, server: &str, rest: &str) -> Node {
    let addr = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n{server}\n\n[storage]\ndir = \"{}\"\n\n\
         [model]\ndevice = \"cpu\"\nintra_threads = 1\n\n{rest}\n",
        dir.join("store").display()
    );
    let mut n = support::start_node(dir, "vigil", "serve", &addr, &config);
    n.wait_ready();
    n
}

fn req(n: &Node, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    http(&n.addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\nlog:\n{}", n.log()))
}

fn add_stream(n: &Node, body: &serde_json::Value) -> HttpResponse {
    req(
        n,
        "POST",
        "/v1/streams",
        &[JSON],
        body.to_string().as_bytes(),
    )
}

fn error_of(r: &HttpResponse) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

/// Polls `/metrics` until `pred` holds (bounded).
fn wait_metrics(n: &Node, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = req(n, "GET", "/metrics", &[], b"").text();
        if pred(&text) {
            return text;
        }
        assert!(start.elapsed() < limit, "{what} within {limit:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn api_streams_cannot_reach_local_files_the_host_or_raw_sockets() {
    let tmp = tempfile::tempdir().unwrap();
    let media = tmp.path().join("media");
    std::fs::create_dir_all(media.join("sub")).unwrap();
    std::fs::copy(support::data("video/vtest.avi"), media.join("cam.avi")).unwrap();
    let outside = support::data("video/vtest.avi");
    std::fs::write(
        media.join("list.m3u8"),
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{}\n#EXT-X-ENDLIST\n",
            outside.display()
        ),
    )
    .unwrap();
    std::fs::write(media.join("noperm.avi"), b"RIFF\0\0\0\0AVI ").unwrap();
    // An internal server the attacker wants the daemon to talk to: any
    // connection attempt stays in its backlog and is seen at the end.
    let internal = TcpListener::bind("127.0.0.1:0").unwrap();
    internal.set_nonblocking(true).unwrap();
    let port = internal.local_addr().unwrap().port();
    let n = start(
        tmp.path(),
        &format!("media_root = \"{}\"", media.display()),
        "",
    );

    // Local paths outside media_root, missing, a directory, a playlist that
    // names a file outside, an escape by `..`: one indistinguishable answer.
    let generic = "url: cannot open the source";
    let mut seen = std::collections::BTreeSet::new();
    for url in [
        outside.display().to_string(),
        support::data("photos/person.jpg").display().to_string(),
        "missing.avi".into(),
        "sub".into(),
        "list.m3u8".into(),
        "../media/../../etc/passwd".into(),
        format!("file://{}", outside.display()),
        "noperm.avi".into(),
    ] {
        let r = add_stream(&n, &serde_json::json!({"id": "evil", "url": url}));
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        // The same text for every one of them (no oracle), naming no path.
        assert!(error_of(&r).ends_with(generic), "{url}: {}", r.text());
        seen.insert(error_of(&r));
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    // The host itself and other protocols.
    for (url, want) in [
        (format!("rtsp://127.0.0.1:{port}/x"), generic.to_string()),
        (
            format!("rtsp://admin:pw@localhost:{port}/x"),
            generic.to_string(),
        ),
        (
            format!("rtsp://[::ffff:127.0.0.1]:{port}/x"),
            generic.to_string(),
        ),
        (
            "rtsp://169.254.169.254/latest/meta-data".into(),
            generic.to_string(),
        ),
        (
            format!("http://127.0.0.1:{port}/snap.jpg"),
            "scheme \"http\"".into(),
        ),
        (format!("tcp://127.0.0.1:{port}"), "scheme \"tcp\"".into()),
        (
            format!("concat:{}|{}", outside.display(), outside.display()),
            "scheme \"concat\"".into(),
        ),
    ] {
        let r = add_stream(&n, &serde_json::json!({"id": "evil", "url": url}));
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        assert!(error_of(&r).contains(&want), "{url}: {}", r.text());
    }
    assert!(
        internal.accept().is_err(),
        "the daemon connected to the internal server"
    );
    // The detail is in the log for the operator.
    assert!(n.log().contains("stream source refused"), "{}", n.log());

    // Fifty refused adds leave no metric series behind.
    for i in 0..50 {
        let r = add_stream(
            &n,
            &serde_json::json!({"id": format!("rej{i}"), "url": format!("rtsp://127.0.0.1:{port}/")}),
        );
        assert_eq!(r.status, 400);
    }
    let text = req(&n, "GET", "/metrics", &[], b"").text();
    assert!(
        !text.contains("stream=\"rej"),
        "series of refused streams:\n{text}"
    );
    assert!(!text.contains("stream=\"evil\""), "{text}");

    // A file under media_root is allowed, and deleting it removes every
    // series it had, detections included.
    let r = add_stream(
        &n,
        &serde_json::json!({"id": "cam", "url": media.join("cam.avi").canonicalize().unwrap(), "loop": true}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    wait_metrics(&n, Duration::from_secs(60), "cam detections", |t| {
        t.contains("vigil_detections_total{label=\"person\",stream=\"cam\"}")
    });
    let start = Instant::now();
    let snap = loop {
        let r = req(&n, "GET", "/v1/streams/cam/snapshot.jpg", &[], b"");
        if r.status == 200 || start.elapsed() > Duration::from_secs(30) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(snap.status, 200, "{}", snap.text());
    assert_eq!(req(&n, "DELETE", "/v1/streams/cam", &[], b"").status, 204);
    let text = req(&n, "GET", "/metrics", &[], b"").text();
    assert!(
        !text.contains("stream=\"cam\""),
        "series of a deleted stream:\n{text}"
    );
}

#[test]
fn a_foreign_web_page_cannot_drive_the_default_config() {
    let tmp = tempfile::tempdir().unwrap();
    let n = start(tmp.path(), "stream_deny = []", "");
    let body = br#"{"id": "csrf", "url": "rtsp://10.255.255.1/x"}"#;
    // The no-preflight CSRF: a cross-origin text/plain POST.
    let r = req(
        &n,
        "POST",
        "/v1/streams",
        &[("Content-Type", "text/plain")],
        body,
    );
    assert_eq!(r.status, 415, "{}", r.text());
    let r = req(
        &n,
        "POST",
        "/v1/streams",
        &[
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example"),
        ],
        body,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = req(&n, "POST", "/v1/streams", &[JSON, ("Origin", "null")], body);
    assert_eq!(r.status, 403, "{}", r.text());
    // Uploads and deletes from a foreign page are refused as well.
    let r = req(
        &n,
        "POST",
        "/v1/jobs",
        &[
            ("Content-Type", "multipart/form-data; boundary=x"),
            ("Origin", "http://evil.example"),
        ],
        b"--x--\r\n",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // DNS rebinding: the page's own name pointed at 127.0.0.1.
    let addr = n.addr.clone();
    let rebound = format!(
        "GET /v1/streams HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\n\r\n",
        &addr[addr.rfind(':').unwrap() + 1..]
    );
    let raw = raw_exchange(&addr, rebound.as_bytes());
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");
    // The same-origin console and curl still work.
    let origin = format!("http://{addr}");
    let r = req(
        &n,
        "POST",
        "/v1/streams",
        &[JSON, ("Origin", origin.as_str())],
        body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(req(&n, "DELETE", "/v1/streams/csrf", &[], b"").status, 204);
    // /readyz is open: no server paths in it.
    let ready = req(&n, "GET", "/readyz", &[], b"").json();
    let model = ready["model"].as_str().unwrap_or_default();
    assert!(model.ends_with(".onnx") && !model.contains('/'), "{ready}");
}

/// Sends `bytes` on a new connection and returns everything the server
/// sends back until it closes (bounded by a 20 s read timeout).
fn raw_exchange(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection from another loopback address (Linux routes all of
/// 127.0.0.0/8 to lo), so a test can be two clients at once.
fn connect_from(source: &str, addr: &str) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{source}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    let dst: SocketAddr = addr.parse().unwrap();
    sock.connect_timeout(&dst.into(), Duration::from_secs(10))
        .unwrap();
    sock.into()
}

/// Reads until the server closes the connection; `None` if it is still
/// open after `limit`.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(String::from_utf8_lossy(&out).into_owned()),
        }
    }
    None
}

#[test]
fn slowloris_and_trickled_uploads_do_not_starve_normal_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = std::fs::read(support::sample_h264(tmp.path(), 10, Some("scale=320:-2"))).unwrap();
    let n = start(
        tmp.path(),
        "header_timeout_s = 2\nmax_connections = 32\nbody_idle_timeout_s = 4\nmax_uploads_per_client = 4",
        "[jobs]\nqueue_size = 2\n",
    );

    // 50 sockets that send half a request line and stop.
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(&n.addr).unwrap();
            s.write_all(b"GET /healthz HT").unwrap();
            s
        })
        .collect();
    // A normal client is served while they hang (at worst after the
    // header timeout frees a connection slot).
    let r = req(&n, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    // Every slow socket is closed by the server.
    for (i, s) in slow.iter_mut().enumerate() {
        assert!(
            read_until_closed(s, Duration::from_secs(30)).is_some(),
            "slow socket {i} still open"
        );
    }

    // 16 uploads from another address that declare 60 MB and send 3 bytes.
    let mut trickles: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = connect_from("127.0.0.2", &n.addr);
            let head = format!(
                "POST /v1/jobs HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 60000000\r\n\r\nabc",
                n.addr
            );
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    // While they hold their connections, a normal upload is accepted: the
    // queue slot is taken only once an upload has arrived whole.
    let r = req(
        &n,
        "POST",
        "/v1/jobs",
        &[("Content-Type", "application/octet-stream")],
        &clip,
    );
    assert_eq!(r.status, 202, "{}\n{}", r.text(), n.log());
    // Four per client are in flight until they stall out (408); the rest are
    // refused at once (429).
    let mut statuses = Vec::new();
    for (i, s) in trickles.iter_mut().enumerate() {
        let text = read_until_closed(s, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("trickled upload {i} still open"));
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status: {text:?}"));
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 408).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        12,
        "{statuses:?}"
    );
}

/// A valid 16384×16384 grayscale PNG of a few hundred KB (zlib of zeros),
/// written by Debian's python3 (the test kit has no deflate of its own).
fn png_bomb(path: &Path) {
    let script = r#"
import struct, sys, zlib
w = h = 16384
def chunk(t, d):
    c = struct.pack('>I', len(d)) + t + d
    return c + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
z = zlib.compressobj(9)
row = b'\x00' * (w + 1)
data = b''.join(z.compress(row) for _ in range(h)) + z.flush()
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) + chunk(b'IDAT', data) + chunk(b'IEND', b'')
open(sys.argv[1], 'wb').write(png)
"#;
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args(["-c", script]).arg(path);
    support::run_bounded(cmd, Duration::from_secs(60)).assert_success("writing the PNG");
}

/// The daemon's peak resident memory so far (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

#[test]
fn image_bombs_playlists_and_floods_are_refused_with_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.png");
    png_bomb(&bomb);
    let bomb = std::fs::read(&bomb).unwrap();
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    let n = start(
        tmp.path(),
        "detect_max_mb = 1\ndetect_concurrency = 1\nbody_idle_timeout_s = 3",
        "",
    );
    let person = std::fs::read(support::data("photos/person.jpg")).unwrap();
    let octet = ("Content-Type", "application/octet-stream");
    // Warm: a normal detect, then the peak memory before the bomb.
    assert_eq!(req(&n, "POST", "/v1/detect", &[octet], &person).status, 200);
    let before = peak_rss_kb(n.guard.pid());
    let r = req(&n, "POST", "/v1/detect", &[octet], &bomb);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(error_of(&r).contains("max_pixels"), "{}", r.text());
    let after = peak_rss_kb(n.guard.pid());
    assert!(
        after < before + 100 * 1024,
        "peak RSS grew from {before} kB to {after} kB"
    );
    // Over detect_max_mb → 413 (not held in memory beyond the limit).
    let big = vec![0u8; 2 * 1024 * 1024];
    assert_eq!(req(&n, "POST", "/v1/detect", &[octet], &big).status, 413);
    // Not an image format we accept (a GIF header) → 400.
    let r = req(
        &n,
        "POST",
        "/v1/detect",
        &[octet],
        b"GIF89a\x01\0\x01\0\0\0\0;",
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // The concurrency bound: three requests whose bodies stall. Whichever
    // reaches the handler first holds the only slot until its body times
    // out (408); the other two are turned away at once (429, Retry-After).
    let mut holders: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(&n.addr).unwrap();
            let head = format!(
                "POST /v1/detect HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nxx",
                n.addr
            );
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    let mut answers: Vec<String> = holders
        .iter_mut()
        .map(|s| read_until_closed(s, Duration::from_secs(30)).expect("detect answered"))
        .collect();
    answers.sort();
    assert!(answers[0].starts_with("HTTP/1.1 408"), "{answers:?}");
    for busy in &answers[1..] {
        assert!(busy.starts_with("HTTP/1.1 429"), "{answers:?}");
        assert!(busy.to_ascii_lowercase().contains("retry-after:"), "{busy}");
    }
    assert_eq!(req(&n, "POST", "/v1/detect", &[octet], &person).status, 200);

    // An HLS playlist naming a local video, uploaded as a job.
    let playlist = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{}\n#EXT-X-ENDLIST\n",
        support::data("video/vtest.avi").display()
    );
    let r = req(&n, "POST", "/v1/jobs", &[octet], playlist.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(error_of(&r).contains("playlists"), "{}", r.text());
}

#[test]
fn config_numbers_are_bounded_and_open_listens_need_a_token() {
    let out = support::vigil()
        .env("VIGIL_EVENTS_SNAPSHOT_RETENTION_HOURS", "1e300")
        .args(["config", "check", "configs/vigil.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    support::assert_clean_error(&out, &stderr, "events.snapshot_retention_hours");

    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("open.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"0.0.0.0:{}\"\n[storage]\ndir = \"{}\"\n",
            free_port(),
            tmp.path().join("s").display()
        ),
    )
    .unwrap();
    let (out, _, stderr) = support::run(&["config", "check", cfg.to_str().unwrap()]);
    support::assert_clean_error(&out, &stderr, "server.listen");
    assert!(stderr.contains("allow_unauthenticated"), "{stderr}");
    let out = support::vigil()
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("server.token"),
        "{stderr}"
    );
    let out = support::vigil()
        .env("VIGIL_SERVER_ALLOW_UNAUTHENTICATED", "true")
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Below the free-space floor: uploads get 507, a `storage.low` event is
/// recorded in the outbox and the gauge is raised, and the stream's events
/// keep being recorded, without snapshots (nothing written to disk for them).
#[test]
fn below_the_free_space_floor_uploads_get_507_snapshots_pause_and_storage_low_is_raised() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n[storage]\ndir = \"{}\"\n[model]\ndevice = \"cpu\"\nintra_threads = 1\n\
         [events]\nsnapshots = true\n\n[[streams]]\nid = \"lobby\"\nurl = \"{}\"\nloop = true\n",
        tmp.path().join("store").display(),
        support::data("video/vtest.avi").display()
    );
    // A floor no disk meets: every upload is turned away before it is read.
    let mut n = support::start_node_env(
        tmp.path(),
        "vigil",
        "serve",
        &addr,
        &config,
        &[("VIGIL_STORAGE_MIN_FREE_MB", "1073741824")],
    );
    n.wait_ready();
    let r = req(
        &n,
        "POST",
        "/v1/jobs",
        &[("Content-Type", "application/octet-stream")],
        b"RIFF",
    );
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(error_of(&r).contains("storage.min_free_mb"), "{}", r.text());
    assert_eq!(req(&n, "GET", "/healthz", &[], b"").status, 200);

    wait_metrics(&n, Duration::from_secs(30), "vigil_storage_low 1", |m| {
        m.lines().any(|l| l == "vigil_storage_low 1")
    });
    // The stream's events go on (recorded, no snapshot), after storage.low.
    let deadline = Instant::now() + Duration::from_secs(120);
    let events = loop {
        let r = req(&n, "GET", "/v1/events?limit=1000", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let list = r.json().as_array().cloned().unwrap_or_default();
        if list.iter().any(|e| e["type"] == "track.started") {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "no track events within 120 s: {list:?}\nlog:\n{}",
            n.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let low: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "storage.low")
        .collect();
    assert_eq!(low.len(), 1, "one storage.low per crossing: {events:?}");
    assert_eq!(low[0]["stream"], "_system");
    assert_eq!(low[0]["min_free_mb"], 1073741824u64);
    assert!(low[0]["free_mb"].as_u64().is_some(), "{:?}", low[0]);
    for e in events.iter().filter(|e| e["stream"] == "lobby") {
        assert!(e.get("snapshot_url").is_none(), "snapshot while low: {e}");
    }
    let snaps = tmp.path().join("store").join("snapshots");
    let written = std::fs::read_dir(&snaps).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "snapshot files written below the floor");
}

/// A stream whose frames exceed `server.max_pixels` fails with the size in
/// its error (it used to be decoded and queued at any size), a stream within
/// it runs, and its ring is shortened to `server.ring_budget_mb`.
#[test]
fn frames_above_max_pixels_fail_the_stream_and_rings_fit_the_byte_budget() {
    let tmp = tempfile::tempdir().unwrap();
    // 1280x720 (921,600 pixels) against a cap of the sample's 768x576.
    let big = support::sample_h264(tmp.path(), 10, Some("scale=1280:720"));
    let n = start(
        tmp.path(),
        "max_pixels = 442368\nring_budget_mb = 2",
        &format!(
            "[[streams]]\nid = \"big\"\nurl = \"{}\"\nloop = true\n\n\
             [[streams]]\nid = \"small\"\nurl = \"{}\"\nloop = true\nring_capacity = 64\n",
            big.display(),
            support::data("video/vtest.avi").display()
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (big, small) = loop {
        let r = req(&n, "GET", "/v1/streams", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let list = r.json();
        let list = list.as_array().cloned().unwrap_or_default();
        let find = |id: &str| list.iter().find(|s| s["id"] == id).cloned();
        if let (Some(b), Some(s)) = (find("big"), find("small")) {
            if b["state"] == "failed" && s["state"] == "running" {
                break (b, s);
            }
        }
        assert!(
            Instant::now() < deadline,
            "streams not failed/running within 60 s: {list:?}\nlog:\n{}",
            n.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let err = big["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("1280x720") && err.contains("server.max_pixels (442368)"),
        "{big}"
    );
    assert!(
        !err.contains(tmp.path().to_str().unwrap()),
        "no path in the error: {err}"
    );
    assert_eq!(small["state"], "running", "{small}");
    // 2 MiB holds one 768x576 BGR frame (1.3 MB), whatever ring_capacity says.
    let log = n.log();
    assert!(
        log.lines().any(|l| l.contains("ring shortened")
            && l.contains("stream=small")
            && l.contains("frames=1")),
        "{log}"
    );
}

/// DNS rebinding and redirects: an API stream named by host is opened at
/// the address the policy checked, never by name (FFmpeg used to resolve
/// the name again, so a hostile DNS server could answer an internal address
/// the second time), and an HTTP camera cannot redirect FFmpeg past the
/// policy (FFmpeg used to follow up to 8 redirects anywhere).
#[test]
fn api_streams_open_the_checked_address_never_the_name_and_follow_no_redirect() {
    const QUERY: &str = "auth_token=t0k&client_secret=c5ec&api-key=k3yy&access_key=a55k";
    const SECRETS: [&str; 5] = ["s3cret", "t0k", "c5ec", "k3yy", "a55k"];
    let tmp = tempfile::tempdir().unwrap();
    // Cameras on this host are allowed here; 127.0.0.2 plays the internal
    // service the policy denies.
    let n = start(
        tmp.path(),
        "stream_schemes = [\"rtsp\", \"http\"]\nstream_deny = [\"127.0.0.2/32\"]",
        "",
    );
    let internal = TcpListener::bind("127.0.0.2:0").unwrap();
    internal.set_nonblocking(true).unwrap();
    let iport = internal.local_addr().unwrap().port();
    let rtsp = TcpListener::bind("127.0.0.1:0").unwrap();
    let rport = rtsp.local_addr().unwrap().port();
    let rtsp_heads = support::record_request_heads(rtsp, String::new());
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let hport = http.local_addr().unwrap().port();
    let http_heads = support::record_request_heads(
        http,
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{iport}/latest/meta-data\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );

    let r = add_stream(
        &n,
        &serde_json::json!({"id": "cam", "url": format!("rtsp://admin:s3cret@localhost:{rport}/live?{QUERY}")}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let head = rtsp_heads
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("FFmpeg never connected\nlog:\n{}", n.log()));
    let line = head.lines().next().unwrap_or_default().to_string();
    assert!(
        line.contains(&format!(" rtsp://127.0.0.1:{rport}/live")) && !head.contains("localhost"),
        "FFmpeg was given the name, not the checked address: {head}"
    );
    // The fake camera hangs up: the reason shown is the generic one.
    let cam = n.wait_json("/v1/streams/cam", Duration::from_secs(60), |s| {
        !s["error"].is_null()
    });
    assert_eq!(cam["error"], "cannot open the source", "{cam}");
    // Item 10: every query value is masked, whatever its key.
    let masked = "auth_token=***&client_secret=***&api-key=***&access_key=***";
    assert_eq!(
        cam["url"],
        format!("rtsp://***@localhost:{rport}/live?{masked}"),
        "{cam}"
    );
    let listed = req(&n, "GET", "/v1/streams", &[], b"").text();
    for secret in SECRETS {
        assert!(!listed.contains(secret), "{listed}");
    }
    // The mapping is logged, masked.
    let log = n.log();
    assert!(
        log.lines().any(|l| l.contains("pinned")
            && l.contains("host=localhost")
            && l.contains("addr=127.0.0.1")
            && l.contains(&format!("***@127.0.0.1:{rport}/live?{masked}"))),
        "{log}"
    );
    for secret in SECRETS {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }

    // The console's camera test (POST /v1/probe) opens the checked address too.
    assert_eq!(req(&n, "DELETE", "/v1/streams/cam", &[], b"").status, 204);
    let r = req(
        &n,
        "POST",
        "/v1/probe",
        &[JSON],
        serde_json::json!({"url": format!("rtsp://localhost:{rport}/probe")})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_of(&r), "url: cannot open the source", "{}", r.text());
    let probed = std::iter::from_fn(|| rtsp_heads.recv_timeout(Duration::from_secs(30)).ok())
        .find(|h| h.contains("/probe"))
        .expect("the probe connected");
    assert!(
        probed.contains(&format!("rtsp://127.0.0.1:{rport}/probe"))
            && !probed.contains("localhost"),
        "{probed}"
    );

    // An MJPEG camera that redirects to the internal service.
    let r = add_stream(
        &n,
        &serde_json::json!({"id": "mjpeg", "url": format!("http://localhost:{hport}/video.mjpg")}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    for attempt in 0..2 {
        let head = http_heads
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("attempt {attempt}: no request\nlog:\n{}", n.log()));
        assert!(
            head.contains(&format!("Host: 127.0.0.1:{hport}")),
            "attempt {attempt}: {head}"
        );
    }
    assert!(
        matches!(internal.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "FFmpeg followed the redirect to the denied address"
    );
    assert_eq!(req(&n, "DELETE", "/v1/streams/mjpeg", &[], b"").status, 204);
}

/// Item 11: a NATS URL with credentials shows nowhere: not on the worker's
/// open `/readyz` while NATS is down (it used to show the URL verbatim),
/// not in its log, not in a config error.
#[test]
fn nats_credentials_show_neither_in_readyz_nor_logs_nor_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let nats = format!("nats://vigil:s3cret@127.0.0.1:{}", free_port());
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n[storage]\ndir = \"{}\"\n[model]\ndevice = \"cpu\"\n\
         intra_threads = 1\n[queue]\nbackend = \"nats\"\nurl = \"{nats}\"\n",
        tmp.path().join("store").display()
    );
    let n = support::start_node(tmp.path(), "worker", "worker", &addr, &config);
    let body = support::try_wait_until(Duration::from_secs(60), || {
        let r = http(&n.addr, "GET", "/readyz", &[], b"").ok()?;
        let body = r.text();
        (r.status == 503 && body.contains("retrying")).then_some(body)
    })
    .unwrap_or_else(|| panic!("no 503 from the worker's /readyz\nlog:\n{}", n.log()));
    assert!(
        !body.contains("s3cret") && body.contains("nats://***@127.0.0.1"),
        "{body}"
    );
    assert!(!n.log().contains("s3cret"), "{}", n.log());

    let cfg = tmp.path().join("tls.toml");
    std::fs::write(
        &cfg,
        "[queue]\nbackend = \"nats\"\nurl = \"tls://vigil:s3cret@nats:4222\"\n",
    )
    .unwrap();
    let (out, _, stderr) = support::run(&["config", "check", cfg.to_str().unwrap()]);
    support::assert_clean_error(&out, &stderr, "queue.url");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

/// Item 9: the caps hold against the real daemon. Streams beyond
/// `server.max_streams` get 409 (they used to be unbounded), and jobs above
/// `jobs.max_frames` or `jobs.max_pixels` fail with the cap named instead of
/// being run, while the daemon keeps serving.
#[test]
fn streams_and_jobs_beyond_their_caps_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = std::fs::read(support::sample_h264(tmp.path(), 40, None)).unwrap();
    let mut n = start(
        tmp.path(),
        "max_streams = 1",
        "[jobs]\nworkers = 1\nmax_frames = 10\n",
    );
    // Unroutable private address: accepted by the policy, never connects.
    let cam = |id: &str| serde_json::json!({"id": id, "url": "rtsp://10.255.255.1/x"});
    assert_eq!(add_stream(&n, &cam("a")).status, 201);
    let r = add_stream(&n, &cam("b"));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        error_of(&r).contains("server.max_streams (1)"),
        "{}",
        r.text()
    );
    assert_eq!(req(&n, "DELETE", "/v1/streams/a", &[], b"").status, 204);
    assert_eq!(add_stream(&n, &cam("b")).status, 201);

    let job = |n: &Node| {
        let r = req(
            n,
            "POST",
            "/v1/jobs",
            &[("Content-Type", "application/octet-stream")],
            &clip,
        );
        assert_eq!(r.status, 202, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        n.wait_json(&format!("/v1/jobs/{id}"), Duration::from_secs(60), |j| {
            j["status"] == "succeeded" || j["status"] == "failed"
        })
    };
    let fails_naming = |n: &Node, cap: &str| {
        let j = job(n);
        assert_eq!(j["status"], "failed", "{j}");
        assert!(j["error"].as_str().unwrap_or_default().contains(cap), "{j}");
    };
    fails_naming(&n, "jobs.max_frames (10)");
    drop(n);
    n = start(tmp.path(), "", "[jobs]\nworkers = 1\nmax_pixels = 10000\n");
    fails_naming(&n, "jobs.max_pixels (10000)");
    assert_eq!(req(&n, "GET", "/healthz", &[], b"").status, 200);
}
