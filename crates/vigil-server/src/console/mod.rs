//! The web console: static pages embedded in the binary (served at `/`),
//! the session cookie that lets a browser use `/v1/*`, the live view over a
//! WebSocket, and the system summary behind the System page.
//!
//! The pages are plain HTML, CSS and ES modules under `console/` in this
//! crate, compiled in with `include_bytes!`: nothing is fetched at run time
//! and there is no build step.

pub mod session;
mod system;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::metrics::Metrics;
use crate::state::SharedState;
use crate::streams::{LiveFrame, LiveRules};
pub use system::SystemView;

/// Longest one live frame may take to reach a viewer's socket before the
/// viewer is considered gone (a stalled client must not hold a task).
const LIVE_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A file of the console: its path under `/console/`, type, and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ty:expr) => {
        Asset {
            name: $name,
            content_type: $ty,
            body: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("live.js", JS),
    asset!("events.js", JS),
    asset!("jobs.js", JS),
    asset!("system.js", JS),
    asset!("cameras.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

/// Everything the console's own pages may load: this origin only.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
                   connect-src 'self'; style-src 'self'; script-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The static routes outside `/v1` (open: they hold no data).
pub fn pages() -> Router<SharedState> {
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route("/console/{file}", get(console_file))
}

async fn console_file(Path(file): Path<String>) -> Response {
    asset(&file)
}

fn asset(name: &str) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::NotFound(format!("no console file {name:?}")).into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            ),
            // The files change only with the binary; revalidating each load
            // is cheap on a LAN and never serves a stale page after upgrade.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ],
        a.body,
    )
        .into_response()
}

/// Body of `POST /v1/session`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    token: String,
}

/// Whether this browser is signed in (`GET /v1/session`).
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// False when `server.token` is unset: everything is open.
    auth_required: bool,
    /// True with a valid session cookie or bearer token (or no token set).
    authenticated: bool,
    /// Unix seconds at which a session issued now expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

/// Signs the console in: with the right token, sets the session cookie.
#[utoipa::path(post, path = "/v1/session", tag = "console",
    request_body = Login,
    responses((status = 200, description = "signed in (or no token is configured: no cookie then)", body = SessionView,
               headers(("Set-Cookie" = String, description = "vigil_session=…; HttpOnly; SameSite=Strict"))),
              (status = 400, description = "the body is not `{\"token\": \"…\"}`", body = crate::api::error::ErrorBody),
              (status = 401, description = "wrong token", body = crate::api::error::ErrorBody),
              (status = 403, description = "posted from another origin", body = crate::api::error::ErrorBody),
              (status = 413, description = "body over 2 MiB", body = crate::api::error::ErrorBody)))]
pub async fn login(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // A page elsewhere must not sign this browser in either (login CSRF).
    if headers.contains_key(header::ORIGIN) && !session::same_origin(&headers) {
        return Err(ApiError::Forbidden(
            "sign-in from another origin refused".into(),
        ));
    }
    let login: Login = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"token\": \"...\"}}: {e}")))?;
    let Some(token) = st.cfg.server.token.as_deref() else {
        return Ok(Json(SessionView {
            auth_required: false,
            authenticated: true,
            expires_at: None,
        })
        .into_response());
    };
    if !bool::from(login.token.as_bytes().ct_eq(token.as_bytes())) {
        tracing::warn!("console sign-in with a wrong token");
        return Err(ApiError::Unauthorized);
    }
    let sessions = sessions(&st).ok_or(ApiError::Unauthorized)?;
    let (value, expires) = sessions.issue(SystemTime::now());
    let mut resp = Json(SessionView {
        auth_required: true,
        authenticated: true,
        expires_at: Some(expires),
    })
    .into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, sessions.set_cookie(&value));
    Ok(resp)
}

/// Whether the caller is signed in; open, so the console knows whether to
/// show its sign-in form.
#[utoipa::path(get, path = "/v1/session", tag = "console",
    responses((status = 200, body = SessionView)))]
pub async fn session_state(State(st): State<SharedState>, headers: HeaderMap) -> Json<SessionView> {
    let authenticated = match st.cfg.server.token.as_deref() {
        None => true,
        Some(_) => authorised(&st, &headers).is_some(),
    };
    Json(SessionView {
        auth_required: st.cfg.server.token.is_some(),
        authenticated,
        expires_at: None,
    })
}

/// Signs the console out (clears the cookie).
#[utoipa::path(delete, path = "/v1/session", tag = "console",
    responses((status = 204, description = "cookie cleared")))]
pub async fn logout() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::clear_cookie())],
    )
        .into_response()
}

/// How a request proved it may use `/v1/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Bearer,
    Cookie,
}

/// The request's credentials, if valid (only meaningful with a token set).
pub fn authorised(st: &SharedState, headers: &HeaderMap) -> Option<Auth> {
    let token = st.cfg.server.token.as_deref()?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = bearer {
        return bool::from(given.as_bytes().ct_eq(token.as_bytes())).then_some(Auth::Bearer);
    }
    let value = session::cookie(headers)?;
    sessions(st)?
        .verify(value, SystemTime::now())
        .then_some(Auth::Cookie)
}

fn sessions(st: &SharedState) -> Option<session::Sessions> {
    let token = st.cfg.server.token.as_deref()?;
    Some(session::Sessions::new(
        token,
        Duration::from_secs_f64(st.cfg.server.session_hours * 3600.0),
    ))
}

/// The live view of a stream over a WebSocket: first a text message with
/// the zones and lines (`{"type": "rules", ...}`), then one binary message
/// per processed frame: a 4-byte big-endian length, a JSON header (`seq`,
/// `width`, `height`, `pts_ms`, `processed_unix_ms`, `objects`), the JPEG.
#[utoipa::path(get, path = "/v1/streams/{id}/live", tag = "streams",
    params(("id" = String, Path, description = "stream id")),
    responses((status = 101, description = "WebSocket: live frames (JPEG + detections)"),
              (status = 404, description = "no such stream", body = crate::api::error::ErrorBody),
              (status = 409, description = "the stream is not running (failed to start)", body = crate::api::error::ErrorBody),
              (status = 426, description = "a plain GET: this route only speaks WebSocket", body = crate::api::error::ErrorBody,
               headers(("Upgrade" = String, description = "`websocket`"))),
              (status = 503, description = "the model is still loading", body = crate::api::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn live(
    State(st): State<SharedState>,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let (feed, rules) = crate::api::ready(&st)?.streams.live(&id)?;
    let ws = ws.map_err(|e| {
        ApiError::UpgradeRequired(format!(
            "/v1/streams/{id}/live is a WebSocket; open it with a WebSocket handshake ({})",
            e.body_text()
        ))
    })?;
    // Only the receiver goes to the task: when the stream is removed its
    // sender is dropped and the viewer's socket closes.
    let rx = feed.subscribe();
    drop(feed);
    let metrics = Arc::clone(&st.metrics);
    Ok(ws.on_upgrade(move |socket| serve_viewer(socket, rx, rules, metrics, id)))
}

async fn serve_viewer(
    socket: WebSocket,
    mut rx: watch::Receiver<Option<Arc<LiveFrame>>>,
    rules: LiveRules,
    metrics: Arc<Metrics>,
    stream: String,
) {
    let viewers = metrics.live_viewers.with_label_values(&[stream.as_str()]);
    let skipped = metrics
        .live_frames_skipped
        .with_label_values(&[stream.as_str()]);
    viewers.inc();
    let (mut tx, mut incoming) = socket.split();
    let hello = serde_json::json!({"type": "rules", "stream": stream, "zones": rules.zones, "lines": rules.lines});
    let mut last_seq: Option<u64> = None;
    if tx
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        break; // the stream was removed or stopped
                    }
                    let frame = rx.borrow_and_update().clone();
                    let Some(f) = frame else { continue };
                    if let Some(prev) = last_seq {
                        skipped.inc_by(f.seq.saturating_sub(prev + 1));
                    }
                    last_seq = Some(f.seq);
                    let send = tx.send(Message::Binary(f.message.clone()));
                    match tokio::time::timeout(LIVE_SEND_TIMEOUT, send).await {
                        Ok(Ok(())) => metrics
                            .live_latency_seconds
                            .observe(f.processed.elapsed().as_secs_f64()),
                        _ => break,
                    }
                }
                msg = incoming.next() => match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    viewers.dec();
}

/// Device, model, batching, per-stage latency and per-stream health.
#[utoipa::path(get, path = "/v1/system", tag = "console",
    responses((status = 200, body = SystemView),
              (status = 503, description = "the model is still loading", body = crate::api::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn system_view(State(st): State<SharedState>) -> Result<Json<SystemView>, ApiError> {
    let ready = crate::api::ready(&st)?;
    Ok(Json(system::build(&st, ready)))
}

/// Body of `POST /v1/probe`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    /// A camera URL (`rtsp://…`, `rtsps://…`, `http(s)://…`).
    #[schema(pattern = r"^(rtsp|rtsps|http|https)://\S+$")]
    url: String,
    /// RTSP transport (default `tcp`).
    #[serde(default)]
    transport: Option<ProbeTransport>,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum ProbeTransport {
    Tcp,
    Udp,
}

/// Schemes a camera test may open: cameras, never local files or other
/// FFmpeg protocols.
const PROBE_SCHEMES: [&str; 4] = ["rtsp", "rtsps", "http", "https"];

/// What opening a URL found.
#[derive(Serialize, ToSchema)]
pub struct ProbeResult {
    /// The URL with credentials masked.
    url: String,
    width: u32,
    height: u32,
    fps: f64,
}

/// How long the Cameras page's test button waits for a first frame.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// Tries to open a camera URL and decode one frame (the Cameras page's
/// "Test" button), without adding a stream. Only network URLs: this must
/// not become a way to read the daemon's files.
#[utoipa::path(post, path = "/v1/probe", tag = "streams",
    request_body = ProbeRequest,
    responses((status = 200, description = "the URL opened and a frame was decoded", body = ProbeResult),
              (status = 400, description = "not a network URL, a bad body, a source `server.stream_*` does not allow, or the URL could not be opened (\"cannot open the source\"; the reason is in the log)", body = crate::api::error::ErrorBody),
              (status = 413, description = "body over 2 MiB", body = crate::api::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn probe(
    State(st): State<SharedState>,
    body: axum::body::Bytes,
) -> Result<Json<ProbeResult>, ApiError> {
    let req: ProbeRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"url\": \"rtsp://…\"}}: {e}")))?;
    let scheme_ok = req.url.split_once("://").is_some_and(|(scheme, rest)| {
        PROBE_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
            && !rest.is_empty()
            && !rest.chars().any(char::is_whitespace)
    });
    if !scheme_ok {
        return Err(ApiError::BadRequest(format!(
            "url: only camera URLs ({}://…) can be tested, got {:?}",
            PROBE_SCHEMES.join("://, "),
            vigil_video::mask_url(&req.url)
        )));
    }
    let transport = match req.transport {
        None | Some(ProbeTransport::Tcp) => vigil_video::RtspTransport::Tcp,
        Some(ProbeTransport::Udp) => vigil_video::RtspTransport::Udp,
    };
    let opts = vigil_video::SourceOptions {
        transport,
        open_timeout: PROBE_TIMEOUT,
        read_timeout: PROBE_TIMEOUT,
        untrusted: true,
        max_pixels: Some(st.cfg.server.max_pixels),
    };
    let url = req.url;
    // The same source policy as POST /v1/streams (issue #15): a probe must
    // not reach the daemon's own host or other denied addresses, and its
    // failure must not tell refused from timed-out ports (detail logged).
    let policy = crate::source_policy::SourcePolicy::from_config(&st.cfg.server);
    let info = tokio::task::spawn_blocking(move || {
        let checked = match crate::source_policy::check_stream_source(&url, &policy) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(url = %vigil_video::mask_url(&url), reason = %e, "camera probe refused");
                return Err(ApiError::BadRequest(e.client_message()));
            }
        };
        // The checked address, never the name (DNS rebinding).
        for (addr, pinned) in checked.targets(&url) {
            tracing::info!(url = %vigil_video::mask_url(&pinned), addr = %addr, "camera probe pinned to the checked address");
            match vigil_video::VideoSource::open(&pinned, &opts) {
                Ok(s) => return Ok((s.info().clone(), url.clone())),
                Err(e) => tracing::warn!(reason = %e, "camera probe failed"),
            }
        }
        Err(ApiError::BadRequest(format!(
            "url: {}",
            crate::source_policy::GENERIC_REFUSAL
        )))
    })
    .await
    .map_err(ApiError::internal)??;
    let (info, url) = info;
    Ok(Json(ProbeResult {
        url: vigil_video::mask_url(&url),
        width: info.width,
        height: info.height,
        fps: info.fps,
    }))
}
