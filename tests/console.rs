//! The web console in a real browser: headless Chromium (Debian `chromium`
//! and `chromium-driver`, installed by `make setup`) over WebDriver against
//! the real daemon, model and sample clip. One daemon and one browser
//! session walk the whole console as an operator would, so the suite stays
//! lean; every wait is bounded.
//!
//! Screenshots land in `target/console-screenshots/`; with
//! `VIGIL_SCREENSHOTS=docs` they are also copied to `docs/` (how the README's
//! pictures are made).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::StreamExt;
use serde_json::{json, Value};
use support::{free_port, http, ChildGuard, HttpResponse, Node};

const TOKEN: &str = "console-test-token";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// chromedriver's browser log (entries since the last call).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// Browser-console entries at level SEVERE (JavaScript errors, failed loads).
async fn severe_logs(c: &Client) -> Vec<String> {
    let v = c.issue_cmd(BrowserLog).await.expect("read the browser log");
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn assert_no_console_errors(c: &Client, page: &str) {
    let errors = severe_logs(c).await;
    assert!(
        errors.is_empty(),
        "{page}: browser console errors: {errors:#?}"
    );
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let dir = support::root().join("target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(name), &png).expect("write screenshot");
    if std::env::var("VIGIL_SCREENSHOTS").as_deref() == Ok("docs") {
        std::fs::write(support::root().join("docs").join(name), &png).expect("write docs/");
    }
}

/// No horizontal scrolling: the page fits the window (390 px phones).
async fn assert_fits(c: &Client, page: &str) {
    let v = js(
        c,
        "return [document.documentElement.scrollWidth, window.innerWidth];",
    )
    .await;
    let (scroll, inner) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
    assert!(
        scroll <= inner,
        "{page}: {scroll} px wide in a {inner} px window"
    );
}

/// chromedriver and every Chromium it starts share one process group, which
/// is killed on drop: killing chromedriver alone leaves its browsers running
/// (re-parented to init) whenever a test fails before `Client::close`.
struct DriverGuard(ChildGuard);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        let pid = self.0.pid();
        if pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn chromedriver() -> (DriverGuard, String) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver (make setup installs chromium-driver)");
    let guard = DriverGuard(ChildGuard::new(child));
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    // chromedriver keeps connections open, so only wait for it to listen.
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (guard, format!("http://{addr}"))
}

async fn browser(webdriver: &str, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=1280,800",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("WebDriver session with headless Chromium")
}

/// A one-page site on another port of the same host: same *site* as the
/// daemon (so a SameSite=Strict cookie still goes along), other *origin*.
/// Its script POSTs a new stream to the daemon with the cookie.
fn hostile_site(daemon: &str) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let page = format!(
        "<!doctype html><title>elsewhere</title><script>\
         fetch('http://{daemon}/v1/streams', {{method: 'POST', mode: 'no-cors', credentials: 'include',\
           headers: {{'Content-Type': 'text/plain'}},\
           body: JSON.stringify({{id: 'evil', url: 'rtsp://127.0.0.1:9/x'}})}})\
         .then(() => document.title = 'sent', () => document.title = 'sent');\
         </script>"
    );
    let handle = std::thread::spawn(move || {
        // Serves a bounded number of requests (the page, maybe a favicon).
        listener.set_nonblocking(false).ok();
        for _ in 0..2 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    (addr, handle)
}

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

fn api(d: &Node, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    let (k, v) = bearer();
    http(&d.addr, method, path, &[(k, &v)], body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", d.log()))
}

/// The value of one metric series (`name{labels}`) in a /metrics scrape.
fn metric(d: &Node, series: &str) -> f64 {
    let text = http(&d.addr, "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn processed(d: &Node) -> u64 {
    api(d, "GET", "/v1/streams", b"")
        .json()
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "sample").cloned())
        .and_then(|s| s["frames_processed"].as_u64())
        .unwrap_or(0)
}

/// A live-view WebSocket client authorised with the bearer header.
async fn ws_viewer(
    addr: &str,
    stream: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/v1/streams/{stream}/live")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("live WebSocket")
        .0
}

/// Reads binary frames until `n` arrived; returns the decoded headers.
async fn read_frames(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    n: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("live frames within 60 s")
            .expect("socket open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Binary(b) = msg {
            let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            let header: Value = serde_json::from_slice(&b[4..4 + len]).expect("header JSON");
            assert_eq!(&b[4 + len..4 + len + 2], &[0xFF, 0xD8], "a JPEG follows");
            out.push(header);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_headless_chromium() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sample = support::data("video/vtest.avi");
    let rtsp_port = free_port();
    let _rtsp = support::rtsp_server(rtsp_port, "/cam");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut d = support::start_node(
        tmp.path(),
        "console",
        "serve",
        &addr,
        &format!(
            // The Cameras page adds the RTSP test server on 127.0.0.1, which
            // API streams may not reach by default (server.stream_deny).
            "[server]\nlisten = \"{addr}\"\ntoken = \"{TOKEN}\"\nstream_deny = []\n\n[storage]\ndir = \"{}\"\n\n\
             [model]\ndevice = \"cpu\"\nintra_threads = 1\n\n[jobs]\nretention_hours = 1\n\n\
             [[streams]]\nid = \"sample\"\nurl = \"{}\"\nloop = true\n",
            tmp.path().join("store").display(),
            sample.display()
        ),
    );
    d.wait_ready();
    let base = format!("http://{addr}");

    // --- The API side of the session: no token, no entry.
    assert_eq!(
        http(&addr, "GET", "/v1/streams", &[], b"").unwrap().status,
        401
    );
    let page = http(&addr, "GET", "/", &[], b"").unwrap();
    assert_eq!(page.status, 200, "the console is open (it holds no data)");
    assert!(page.text().contains("/console/app.js"));
    let wrong = http(&addr, "POST", "/v1/session", &[], br#"{"token":"nope"}"#).unwrap();
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(wrong.header("set-cookie").is_none());

    let (_driver_guard, webdriver) = chromedriver();
    let c = browser(&webdriver, &tmp.path().join("chromium")).await;

    // --- Sign in: a wrong token is refused, the right one opens the console.
    c.goto(&base).await.expect("open the console");
    let token = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("token"))
        .await
        .expect("sign-in form");
    token.send_keys("wrong-token").await.expect("type");
    c.find(Locator::Css("#login button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    until("wrong token refused", Duration::from_secs(10), || async {
        let t = c
            .find(Locator::Id("login-error"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.contains("Wrong token").then_some(())
    })
    .await;
    shot(&c, "console-login.png").await;
    // The refused sign-in is a 401 in the console log; nothing else may be.
    let errs = severe_logs(&c).await;
    assert!(errs.iter().all(|e| e.contains("401")), "{errs:#?}");
    let token = c.find(Locator::Id("token")).await.expect("token field");
    token.clear().await.expect("clear");
    token.send_keys(TOKEN).await.expect("type");
    c.find(Locator::Css("#login button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");

    // --- Live: the sample tile's picture changes over time and shows boxes.
    let tile = "canvas[data-stream=sample]";
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(tile))
        .await
        .expect("live tile");
    let frame_state = format!(
        "const c = document.querySelector('{tile}'); if (!c || !c.dataset.frames) return null;\
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;\
         let h = 0; for (let i = 0; i < d.length; i += 97) h = (h * 31 + d[i]) >>> 0;\
         return [Number(c.dataset.frames), Number(c.dataset.objects), h];"
    );
    let first = until(
        "the first live frames with boxes",
        Duration::from_secs(60),
        || async {
            let v = js(&c, &frame_state).await;
            (v[0].as_u64()? >= 2 && v[1].as_u64()? > 0).then_some(v)
        },
    )
    .await;
    let later = until(
        "the live picture to change",
        Duration::from_secs(30),
        || async {
            let v = js(&c, &frame_state).await;
            (v[0].as_u64()? >= first[0].as_u64()? + 3 && v[2] != first[2]).then_some(v)
        },
    )
    .await;
    assert!(
        later[1].as_u64().unwrap_or(0) > 0,
        "boxes on the later frame too: {later}"
    );
    // The session cookie is HttpOnly and SameSite=Strict.
    let cookies = c.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|k| k.name() == "vigil_session")
        .expect("session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    let cookie_header = format!("vigil_session={}", session.value());
    // Let the tile's status line and events fill in, then keep a picture.
    until("tile status", Duration::from_secs(10), || async {
        let t = js(
            &c,
            "return document.querySelector('article.tile .meta')?.textContent ?? ''",
        )
        .await;
        t.as_str()?.contains("fps").then_some(())
    })
    .await;
    shot(&c, "console-live.png").await;
    assert_no_console_errors(&c, "live").await;

    // --- A tile opens the large view, whose overlays toggle.
    c.find(Locator::Css("article.tile[data-stream=sample] a.picture"))
        .await
        .expect("tile link")
        .click()
        .await
        .expect("open the large view");
    until("the large view's frames", Duration::from_secs(30), || async {
        let v = js(&c, "const c = document.querySelector('canvas.large'); return c ? Number(c.dataset.frames ?? 0) : 0").await;
        (v.as_u64()? >= 2).then_some(())
    })
    .await;
    c.find(Locator::Css("input[data-overlay=boxes]"))
        .await
        .expect("toggle")
        .click()
        .await
        .expect("boxes off");
    let stat = c
        .find(Locator::Id("live-stat"))
        .await
        .expect("stat")
        .text()
        .await
        .expect("text");
    assert!(stat.contains("ms behind"), "{stat}");
    assert_no_console_errors(&c, "large view").await;

    // --- Encoded once for every viewer, and not at all without one.
    let mut v1 = ws_viewer(&addr, "sample").await;
    let mut v2 = ws_viewer(&addr, "sample").await;
    read_frames(&mut v1, 1).await;
    read_frames(&mut v2, 1).await;
    let series = "vigil_live_frames_encoded_total{stream=\"sample\"}";
    let (enc0, proc0) = (metric(&d, series), processed(&d));
    let (a, b) = tokio::join!(read_frames(&mut v1, 12), read_frames(&mut v2, 12));
    let (enc1, proc1) = (metric(&d, series), processed(&d));
    // Every viewer gets the same encoded frames (same sequence numbers)...
    let seqs = |f: &[Value]| -> std::collections::BTreeSet<u64> {
        f.iter().filter_map(|h| h["seq"].as_u64()).collect()
    };
    let common = seqs(&a).intersection(&seqs(&b)).count();
    assert!(
        common >= 8,
        "viewers share frames: {:?} vs {:?}",
        seqs(&a),
        seqs(&b)
    );
    // ...and the encoder keeps pace with the detector, not with the viewer
    // count (three viewers encoding each would be ~3x). The two counters
    // are read a moment apart, hence the slack.
    let (enc, proc) = (enc1 - enc0, (proc1 - proc0) as f64);
    assert!(
        enc <= proc * 1.5 + 3.0,
        "three viewers: {enc} encodes for {proc} processed frames"
    );
    assert!(a
        .iter()
        .any(|h| h["objects"].as_array().is_some_and(|o| !o.is_empty())));
    drop((v1, v2));
    c.goto(&format!("{base}/#/system"))
        .await
        .expect("system page");
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("sys-device"))
        .await
        .expect("system page");
    until("no live viewers", Duration::from_secs(20), || async {
        (metric(&d, "vigil_live_viewers{stream=\"sample\"}") == 0.0).then_some(())
    })
    .await;
    let (enc2, proc2) = (metric(&d, series), processed(&d));
    until(
        "frames processed while unwatched",
        Duration::from_secs(30),
        || async { (processed(&d) >= proc2 + 5).then_some(()) },
    )
    .await;
    assert_eq!(
        metric(&d, series),
        enc2,
        "nothing is encoded while nobody watches"
    );
    shot(&c, "console-system.png").await;
    assert_no_console_errors(&c, "system").await;

    // --- Cross-origin requests with the cookie are refused.
    for (origin, what) in [
        (Some("http://evil.example"), "foreign origin"),
        (None, "no origin"),
    ] {
        let mut h = vec![
            ("Cookie", cookie_header.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(o) = origin {
            h.push(("Origin", o));
        }
        let r = http(
            &addr,
            "POST",
            "/v1/streams",
            &h,
            br#"{"id":"evil","url":"rtsp://127.0.0.1:9/x"}"#,
        )
        .unwrap();
        assert_eq!(r.status, 403, "{what}: {}", r.text());
    }
    let ok = http(
        &addr,
        "GET",
        "/v1/streams",
        &[("Cookie", &cookie_header)],
        b"",
    )
    .unwrap();
    assert_eq!(ok.status, 200, "reads with the cookie work");
    let (site, server) = hostile_site(&addr);
    let forbidden = "vigil_http_request_seconds_count{route=\"/v1/streams\",status=\"403\"}";
    let before = metric(&d, forbidden);
    c.goto(&format!("http://{site}/"))
        .await
        .expect("open the other site");
    until("the other site's POST", Duration::from_secs(20), || async {
        (metric(&d, forbidden) > before).then_some(())
    })
    .await;
    let _ = server.join();
    let streams = api(&d, "GET", "/v1/streams", b"").json();
    assert!(
        !streams
            .as_array()
            .expect("array")
            .iter()
            .any(|s| s["id"] == "evil"),
        "a cross-origin POST added a stream: {streams}"
    );
    let _ = severe_logs(&c).await; // that page's failed fetch is expected

    // --- Cameras: add one from the form and see it run.
    c.goto(&format!("{base}/#/cameras")).await.expect("cameras");
    let form = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("add-camera"))
        .await
        .expect("form");
    form.find(Locator::Css("input[name=id]"))
        .await
        .unwrap()
        .send_keys("door")
        .await
        .unwrap();
    form.find(Locator::Css("input[name=url]"))
        .await
        .unwrap()
        .send_keys(&format!("rtsp://127.0.0.1:{rtsp_port}/cam"))
        .await
        .unwrap();
    c.find(Locator::Id("test-url"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the URL test", Duration::from_secs(30), || async {
        let t = c
            .find(Locator::Id("add-msg"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.starts_with("OK:").then_some(())
    })
    .await;
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the new camera running", Duration::from_secs(60), || async {
        let v = js(&c, "return document.querySelector('tr[data-stream=door] [data-state]')?.dataset.state ?? null").await;
        (v == "running").then_some(())
    })
    .await;
    let row = js(
        &c,
        "return document.querySelector('tr[data-stream=door]').textContent",
    )
    .await;
    assert!(
        row.as_str().is_some_and(|t| t.contains("rtsp://127.0.0.1")),
        "{row}"
    );
    shot(&c, "console-cameras.png").await;
    assert_no_console_errors(&c, "cameras").await;

    // --- Rules editor: draw a line with the mouse on the picture, save it.
    // It edits through GET/PATCH /v1/streams/{id} (the durable-streams
    // work); until those routes exist the editor says so and is not tested.
    if api(&d, "GET", "/v1/streams/sample", b"").status == 200 {
        rules_editor(&c, &d, &base).await;
    } else {
        eprintln!("note: GET /v1/streams/{{id}} is missing; rules editor not tested");
    }

    // --- Events: a timeline with snapshot thumbnails that load.
    c.goto(&format!("{base}/#/events")).await.expect("events");
    until(
        "events with loaded thumbnails",
        Duration::from_secs(60),
        || async {
            let v = js(
                &c,
                "const i = [...document.querySelectorAll('#events img.thumb')];\
                        return i.filter((x) => x.complete && x.naturalWidth > 0).length;",
            )
            .await;
            (v.as_u64()? >= 1).then_some(())
        },
    )
    .await;
    let sel = c.find(Locator::Id("f-type")).await.unwrap();
    sel.select_by_value("track.started")
        .await
        .expect("filter by type");
    until("only track.started listed", Duration::from_secs(10), || async {
        let types = js(&c, "return [...document.querySelectorAll('#events li.event .etype')].map((e) => e.textContent)").await;
        types.as_array().is_some_and(|t| !t.is_empty() && t.iter().all(|x| x == "track.started")).then_some(())
    })
    .await;
    shot(&c, "console-events.png").await;
    assert_no_console_errors(&c, "events").await;

    // --- Jobs: upload, progress to 100 %, the video plays and seeks.
    let clip = support::sample_h264(tmp.path(), 50, None);
    c.goto(&format!("{base}/#/jobs")).await.expect("jobs");
    let input = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("job-file"))
        .await
        .expect("file input");
    input
        .send_keys(&clip.display().to_string())
        .await
        .expect("choose the clip");
    until("the job to succeed", Duration::from_secs(180), || async {
        let v = js(&c, "const j = document.querySelector('.job'); return j ? [j.dataset.status ?? '', j.querySelector('progress.upload').value, j.querySelector('progress.processing').value] : null").await;
        if v[0] == "failed" {
            panic!("job failed: {}", d.log());
        }
        (v[0] == "succeeded" && v[1] == 1.0 && v[2] == 1.0).then_some(())
    })
    .await;
    let played: Value = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             const v = document.querySelector('.job video');\
             const t0 = v.currentTime;\
             v.play().then(() => {\
               const start = Date.now();\
               const check = () => {\
                 if (v.currentTime > t0 + 0.2) {\
                   const target = Math.min(1.5, v.duration / 2);\
                   v.addEventListener('seeked', () => done({ok: true, t: v.currentTime, target, d: v.duration}), {once: true});\
                   v.currentTime = target;\
                 } else if (Date.now() - start > 15000) done({ok: false, why: 'currentTime did not advance', t: v.currentTime, err: v.error && v.error.message});\
                 else setTimeout(check, 100);\
               };\
               check();\
             }, (e) => done({ok: false, why: String(e), err: v.error && v.error.message}));",
            vec![],
        )
        .await
        .expect("play the video");
    assert_eq!(played["ok"], true, "{played}");
    let (t, target) = (
        played["t"].as_f64().unwrap(),
        played["target"].as_f64().unwrap(),
    );
    assert!(
        (t - target).abs() < 0.5,
        "seeked to {t}, asked {target}: {played}"
    );
    shot(&c, "console-job.png").await;
    assert_no_console_errors(&c, "jobs").await;

    // The video is served with Range and moov first.
    let id = js(&c, "return document.querySelector('.job').dataset.job").await;
    let id = id.as_str().expect("job id");
    let (k, v) = bearer();
    let part = http(
        &addr,
        "GET",
        &format!("/v1/jobs/{id}/video"),
        &[(k, &v), ("Range", "bytes=0-4095")],
        b"",
    )
    .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 4096);
    assert!(part
        .header("content-range")
        .is_some_and(|r| r.starts_with("bytes 0-4095/")));
    let whole = api(&d, "GET", &format!("/v1/jobs/{id}/video"), b"");
    let pos = |tag: &[u8]| whole.body.windows(4).position(|w| w == tag);
    assert!(pos(b"moov") < pos(b"mdat"), "moov before mdat");
    let past = format!("bytes={}-", whole.body.len());
    let r = http(
        &addr,
        "GET",
        &format!("/v1/jobs/{id}/video"),
        &[(k, &v), ("Range", &past)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 416);

    // --- A 390 px phone: every page fits without sideways scrolling.
    c.set_window_size(390, 844).await.expect("resize");
    for page in ["live", "cameras", "events", "jobs", "system"] {
        c.goto(&format!("{base}/#/{page}")).await.expect("page");
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("nav a.active"))
            .await
            .expect("rendered");
        // Content arrives asynchronously; give each page its first refresh.
        until("page content", Duration::from_secs(20), || async {
            let n = js(&c, "return document.getElementById('view').children.length").await;
            (n.as_u64()? >= 2).then_some(())
        })
        .await;
        assert_fits(&c, page).await;
        if page == "live" {
            shot(&c, "console-phone.png").await;
        }
    }
    assert_no_console_errors(&c, "phone").await;

    // --- Signing out ends the console's access.
    c.set_window_size(1280, 800).await.expect("resize");
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("token"))
        .await
        .expect("sign-in form again");
    c.close().await.expect("close the browser");
}

/// Draws a counting line with real mouse events on the live picture of
/// `sample`, saves it, and finds it in `GET /v1/streams/sample`.
async fn rules_editor(c: &Client, d: &Node, base: &str) {
    c.goto(&format!("{base}/#/cameras/sample"))
        .await
        .expect("editor");
    let canvas = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("rules-canvas"))
        .await
        .expect("editor canvas");
    until("the editor's picture", Duration::from_secs(30), || async {
        let v = js(
            c,
            "return Number(document.getElementById('rules-canvas').dataset.frames ?? 0)",
        )
        .await;
        (v.as_u64()? >= 1).then_some(())
    })
    .await;
    c.find(Locator::Css("input[data-tool=line]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: canvas.clone(),
            duration: None,
            x: -120.0,
            y: 40.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveToElement {
            element: canvas.clone(),
            duration: Some(Duration::from_millis(300)),
            x: 0.0,
            y: 40.0,
        })
        .then(PointerAction::MoveToElement {
            element: canvas.clone(),
            duration: Some(Duration::from_millis(300)),
            x: 120.0,
            y: 40.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(mouse).await.expect("draw a line");
    c.find(Locator::Id("save-rules"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("saved", Duration::from_secs(20), || async {
        let t = c
            .find(Locator::Id("rules-msg"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        assert!(!t.contains("rror"), "save failed: {t}");
        t.starts_with("Saved").then_some(())
    })
    .await;
    let stream = api(d, "GET", "/v1/streams/sample", b"").json();
    let lines = stream["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines: {stream}"));
    assert_eq!(lines.len(), 1, "{stream}");
    let (a, b) = (&lines[0]["a"], &lines[0]["b"]);
    let (ax, bx) = (a[0].as_f64().unwrap(), b[0].as_f64().unwrap());
    assert!(
        bx - ax > 100.0,
        "drawn left to right across the picture: {a} -> {b}"
    );
    assert!(
        (a[1].as_f64().unwrap() - b[1].as_f64().unwrap()).abs() < 10.0,
        "horizontal: {a} -> {b}"
    );
    shot(c, "console-rules.png").await;
    assert_no_console_errors(c, "rules editor").await;

    // Pause and resume the camera added earlier.
    c.goto(&format!("{base}/#/cameras")).await.expect("cameras");
    for (action, shown) in [("pause", "paused"), ("resume", "running")] {
        let button = format!("tr[data-stream=door] button[data-action={action}]");
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(&button))
            .await
            .unwrap_or_else(|e| panic!("{action} button: {e}"))
            .click()
            .await
            .expect("click");
        until(shown, Duration::from_secs(40), || async {
            let t = js(
                c,
                "return document.querySelector('tr[data-stream=door] .badge')?.textContent ?? ''",
            )
            .await;
            (t == shown).then_some(())
        })
        .await;
    }
    assert_no_console_errors(c, "pause and resume").await;
}
