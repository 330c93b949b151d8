//! Routes, handlers and the OpenAPI document generated from them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::{IntoParams, OpenApi, ToSchema};
use vigil_core::config::StreamConfig;
use vigil_core::Detection;

use crate::error::{ApiError, ErrorBody};
use crate::jobs::{DETECTIONS_FILE, RETRY_AFTER_S, VIDEO_FILE};
use crate::limits::BodyPace;
use crate::params::{IntRange, NumRange, QueryParams};
use crate::state::SharedState;
use crate::streams::{Origin, StreamDetail, StreamState, StreamView};
use vigil_jobs::{JobParams, JobStatus, ResultBody, SubmitError};

const MIB: u64 = 1024 * 1024;

/// An opaque upload (`format: binary`).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// `POST /v1/jobs` as `multipart/form-data`: the `video` part is read,
/// any other part is skipped (so a plain HTML form works).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JobUpload {
    #[schema(value_type = String, format = Binary)]
    video: Vec<u8>,
}

/// A detection as the API returns it (mirrors `vigil_core::Detection`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DetectionDoc {
    class_id: u32,
    label: String,
    score: f32,
    /// `[x1, y1, x2, y2]` in source-frame pixels.
    bbox: [f32; 4],
    /// Present when tracking is on.
    track_id: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    ready: bool,
    /// `cpu`, `cuda` or `openvino` (what `auto` resolved to); absent until loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    /// `fp32`, `bf16`, `fp16` or `int8` (what `auto` resolved to).
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<String>,
    /// The ONNX Runtime in use, `onnxruntime-<version>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<String>,
    /// The model's file name (never its path on the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    /// Why not ready yet: the model loading, or the job queue (NATS) not
    /// reachable yet, with the last error. Absent once ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DetectResponse {
    width: u32,
    height: u32,
    #[schema(value_type = Vec<DetectionDoc>)]
    detections: Vec<Detection>,
}

/// The query of `POST /v1/jobs` (documentation; [`job_params`] parses it
/// with the limits below).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct JobQuery {
    /// Run the detector on every Nth frame. With `fps` too, both apply:
    /// every Nth frame, and of those at most `fps` a second.
    #[param(minimum = 1, maximum = 1000000)]
    every: Option<u64>,
    /// Run the detector at most this many frames per second of video time.
    #[param(exclusive_minimum = 0, maximum = 1000)]
    fps: Option<f64>,
    /// Minimum score reported. At least this daemon's `model.conf` (the
    /// document's `minimum`): the detector has already dropped lower boxes.
    #[param(minimum = 0, maximum = 1)]
    conf: Option<f64>,
    /// Report ByteTrack tracks (with `track_id`) rather than raw
    /// detections. Default true.
    track: Option<bool>,
}

/// `every` of a job: 1 = every frame; a million frames is hours of video.
pub const JOB_EVERY: IntRange = IntRange {
    min: 1,
    max: 1_000_000,
};
/// `fps` of a job, as a stream's `fps` in the config.
pub const JOB_FPS: NumRange = NumRange {
    min: 0.0,
    min_exclusive: true,
    max: 1000.0,
};
/// `limit` of `GET /v1/events`: a page, not the whole outbox.
pub const EVENTS_LIMIT: IntRange = IntRange { min: 1, max: 1000 };

#[derive(Serialize, ToSchema)]
pub struct JobCreated {
    id: String,
    /// Always `queued`.
    status: JobStatus,
}

#[derive(Serialize, ToSchema)]
pub struct JobView {
    id: String,
    status: JobStatus,
    /// 0.0–1.0: frames done / frames total.
    #[schema(minimum = 0, maximum = 1)]
    progress: f64,
    frames_done: u64,
    frames_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// With `queue.backend = "nats"`: the worker (`host/pid`) running or
    /// that ran the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<String>,
}

/// The body of `POST /v1/streams`: the fields of a `[[streams]]` entry
/// (`every` and `fps` exclusive). Unknown fields are refused.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StreamConfigDoc {
    /// Unique; appears in URLs and metric labels.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    id: String,
    /// A camera URL (`rtsp://user:pass@host/path`; credentials are masked
    /// wherever the URL is shown).
    #[schema(pattern = r"^(rtsp|rtsps|http|https)://\S+$")]
    url: String,
    /// Run the detector on every Nth frame.
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    every: Option<u64>,
    /// Run the detector at most this many frames per second.
    #[schema(exclusive_minimum = 0, maximum = 1000)]
    fps: Option<f64>,
    /// Files only (config streams): network streams reconnect instead.
    #[schema(nullable = false)]
    r#loop: Option<bool>,
    /// Decoded frames buffered before the oldest is dropped (default 8).
    #[schema(nullable = false, minimum = 1, maximum = 1024)]
    ring_capacity: Option<u64>,
    /// No frame for this long → reconnect (default 10).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 3600)]
    stall_timeout_s: Option<f64>,
    /// First reconnect delay, doubling up to `reconnect_max_s` (default 1).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 3600)]
    reconnect_initial_s: Option<f64>,
    /// Longest reconnect delay (default 30); at least `reconnect_initial_s`.
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 3600)]
    reconnect_max_s: Option<f64>,
    #[schema(nullable = false)]
    transport: Option<TransportDoc>,
    /// Zones for `zone.entered` / `zone.left` events.
    #[schema(nullable = false)]
    zones: Option<Vec<ZoneDoc>>,
    /// Counting lines for `line.crossed` events.
    #[schema(nullable = false)]
    lines: Option<Vec<LineDoc>>,
    /// `false` pauses the stream without forgetting it (default `true`).
    #[schema(nullable = false)]
    enabled: Option<bool>,
    /// Object filters by class label, or `"*"` for every class.
    #[schema(nullable = false)]
    filters: Option<std::collections::BTreeMap<String, ObjectFilterDoc>>,
    /// Polygons where detections are ignored.
    #[schema(nullable = false, max_items = 64)]
    masks: Option<Vec<MaskDoc>>,
    /// Which events the stream raises.
    #[schema(nullable = false)]
    events: Option<StreamEventsDoc>,
    /// Overrides of `[tracker]` keys for this stream, e.g. `{"track_buffer": 60}`.
    #[schema(value_type = Option<Object>)]
    tracker: Option<serde_json::Value>,
}

/// The body of `PATCH /v1/streams/{id}`: a JSON merge patch (RFC 7396) of
/// the stream's settings. Every key is optional; `null` resets a key to its
/// default; arrays are replaced whole, objects (`filters`, `events`,
/// `tracker`) merged key by key. `id` may only repeat the current id; a
/// `url` sent back masked keeps the stored one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StreamPatchDoc {
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    id: Option<String>,
    #[schema(pattern = r"^(rtsp|rtsps|http|https)://\S+$")]
    url: Option<String>,
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    every: Option<u64>,
    #[schema(exclusive_minimum = 0, maximum = 1000)]
    fps: Option<f64>,
    r#loop: Option<bool>,
    #[schema(minimum = 1, maximum = 1024)]
    ring_capacity: Option<u64>,
    #[schema(exclusive_minimum = 0, maximum = 3600)]
    stall_timeout_s: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 3600)]
    reconnect_initial_s: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 3600)]
    reconnect_max_s: Option<f64>,
    transport: Option<TransportDoc>,
    zones: Option<Vec<ZoneDoc>>,
    lines: Option<Vec<LineDoc>>,
    enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    filters: Option<serde_json::Value>,
    #[schema(max_items = 64)]
    masks: Option<Vec<MaskDoc>>,
    #[schema(value_type = Option<Object>)]
    events: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    tracker: Option<serde_json::Value>,
}

/// One entry of a stream's `filters`; a class entry overrides `"*"` key
/// by key. Detections failing a filter start no track and raise no event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ObjectFilterDoc {
    #[schema(nullable = false, minimum = 0, maximum = 1)]
    min_score: Option<f64>,
    /// Box area: pixels when above 1, else a fraction of the frame.
    #[schema(nullable = false, minimum = 0, maximum = 1000000000)]
    min_area: Option<f64>,
    #[schema(nullable = false, minimum = 0, maximum = 1000000000)]
    max_area: Option<f64>,
    /// Box width / height.
    #[schema(nullable = false, minimum = 0, maximum = 1000000000)]
    min_ratio: Option<f64>,
    #[schema(nullable = false, minimum = 0, maximum = 1000000000)]
    max_ratio: Option<f64>,
    /// Processed frames a track must be seen in before it raises events.
    #[schema(nullable = false, minimum = 0, maximum = 10000)]
    min_frames: Option<u64>,
}

/// How a mask decides that a detection lies in it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum MaskTestDoc {
    /// The box's bottom-centre is inside (the default).
    BottomCenter,
    /// At least `min_overlap` of the box's area is inside.
    Overlap,
}

/// A polygon where detections are ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MaskDoc {
    #[schema(nullable = false)]
    name: Option<String>,
    #[schema(min_items = 3, max_items = 1000, value_type = Vec<[f64; 2]>)]
    points: Vec<[f64; 2]>,
    #[schema(nullable = false)]
    units: Option<UnitsDoc>,
    #[schema(nullable = false)]
    test: Option<MaskTestDoc>,
    /// With `test = "overlap"` (default 0.5).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 1)]
    min_overlap: Option<f64>,
    /// Labels the mask applies to; empty = every label.
    #[schema(nullable = false)]
    classes: Option<Vec<String>>,
}

/// A stream's `events` settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StreamEventsDoc {
    /// Event types raised; empty = all.
    #[schema(nullable = false, value_type = Option<Vec<EventTypeDoc>>)]
    types: Option<Vec<vigil_core::EventType>>,
}

/// RTSP transport.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TransportDoc {
    Tcp,
    Udp,
}

/// Coordinates of a zone's points or a line's ends: source pixels, or
/// fractions (0–1) of the frame.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum UnitsDoc {
    Px,
    Norm,
}

/// Which point of a box places an object.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AnchorDoc {
    BottomCenter,
    Center,
    TopCenter,
    BottomLeft,
    BottomRight,
    TopLeft,
    TopRight,
}

/// A polygonal zone. Names are unique per stream; the polygon must have an
/// area; with `units = "norm"` coordinates are at most 1.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ZoneDoc {
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    name: String,
    #[schema(min_items = 3, value_type = Vec<[f64; 2]>)]
    points: Vec<[f64; 2]>,
    #[schema(nullable = false)]
    units: Option<UnitsDoc>,
    /// Labels that count; empty = every label.
    #[schema(nullable = false)]
    classes: Option<Vec<String>>,
    #[schema(nullable = false, minimum = 0, maximum = 1)]
    min_score: Option<f64>,
    #[schema(nullable = false, minimum = 1, maximum = 10000)]
    min_frames: Option<u64>,
    #[schema(nullable = false)]
    anchor: Option<AnchorDoc>,
}

/// A counting line from `a` to `b` (which must differ). Names are unique
/// per stream.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct LineDoc {
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    name: String,
    a: [f64; 2],
    b: [f64; 2],
    #[schema(nullable = false)]
    units: Option<UnitsDoc>,
    #[schema(nullable = false)]
    classes: Option<Vec<String>>,
    #[schema(nullable = false, minimum = 0, maximum = 1)]
    min_score: Option<f64>,
    /// Hysteresis band in pixels (default 2 % of the frame diagonal).
    #[schema(nullable = false, minimum = 0, maximum = 10000)]
    min_distance: Option<f64>,
    #[schema(nullable = false, minimum = 0, maximum = 100000)]
    cooldown_frames: Option<u64>,
}

/// The query of `GET /v1/events` (documentation; [`events`] parses it).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsQuery {
    /// Most events returned (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Only events with this delivery status.
    status: Option<EventStatusDoc>,
}

/// Delivery status of an event: `pending` until every matching webhook has
/// it, `dead` after `max_attempts`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum EventStatusDoc {
    Pending,
    Delivered,
    Dead,
}

/// An event type: the schema lists [`vigil_core::EventType::ALL`], so
/// the document cannot drift from the enum the daemon raises.
pub struct EventTypeDoc;

impl utoipa::PartialSchema for EventTypeDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("An event type (the contract's names)."))
            .enum_values(Some(
                vigil_core::EventType::ALL.map(vigil_core::EventType::as_str),
            ))
            .into()
    }
}

impl ToSchema for EventTypeDoc {}

/// One webhook's delivery of an event.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeliveryDoc {
    /// The webhook URL without credentials or query.
    webhook: String,
    status: EventStatusDoc,
    attempts: u64,
    last_error: Option<String>,
}

/// An event as stored, with its delivery status. Stream-level events
/// (`drift.detected`, `camera.anomaly`) have no track fields and carry
/// their own fields at the top level.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventRecordDoc {
    /// UUID; receivers deduplicate on it.
    id: String,
    r#type: EventTypeDoc,
    stream: String,
    /// Wall-clock capture time, RFC 3339 UTC.
    at: String,
    pts_ms: f64,
    track_id: Option<u64>,
    label: Option<String>,
    score: Option<f64>,
    /// `[x1, y1, x2, y2]` in source pixels.
    bbox: Option<[f64; 4]>,
    zone: Option<String>,
    line: Option<String>,
    /// `in` or `out`.
    direction: Option<String>,
    snapshot_url: Option<String>,
    status: EventStatusDoc,
    deliveries: Vec<DeliveryDoc>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "vigil", description = "Real-time video object detection daemon (`vigil serve`)."),
    paths(
        healthz, readyz, metrics, openapi, detect, create_job, get_job, job_video, job_detections,
        list_streams, create_stream, get_stream, patch_stream, delete_stream, snapshot, events, event_snapshot,
        save_baseline, crate::console::login, crate::console::session_state,
        crate::console::logout, crate::console::live, crate::console::system_view,
        crate::console::probe
    ),
    components(schemas(
        ErrorBody, Health, Readiness, DetectResponse, DetectionDoc, JobCreated, JobView,
        JobStatus, JobUpload, StreamView, StreamState, StreamConfigDoc, TransportDoc, UnitsDoc,
        AnchorDoc, ZoneDoc, LineDoc, EventRecordDoc, EventTypeDoc, EventStatusDoc,
        DeliveryDoc, StreamDetail, Origin, ObjectFilterDoc, MaskDoc, MaskTestDoc,
        StreamEventsDoc, StreamPatchDoc, crate::streams::BaselineSaved, crate::console::Login, crate::console::SessionView,
        crate::console::SystemView, crate::console::ProbeRequest, crate::console::ProbeResult,
        crate::console::ProbeTransport
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The whole HTTP surface.
pub fn router(state: SharedState) -> Router {
    let cfg = &state.cfg.server;
    let limit = usize::try_from(cfg.max_upload_mb.saturating_mul(MIB)).unwrap_or(usize::MAX);
    let timeout = TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(cfg.request_timeout_s),
    );
    let upload_timeout = TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(cfg.upload_timeout_s),
    );

    // Uploads stream to disk, so axum's in-memory default limit is replaced
    // by a streaming limit on the body itself.
    let uploads = Router::new()
        .route("/v1/jobs", post(create_job))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(upload_timeout);
    // /v1/detect holds its image in memory: a small limit of its own.
    let detect_limit = usize::try_from(cfg.detect_max_mb.saturating_mul(MIB)).unwrap_or(usize::MAX);
    let detect = Router::new()
        .route("/v1/detect", post(detect))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(detect_limit));
    let v1 = Router::new()
        .merge(detect)
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/video", get(job_video))
        .route("/v1/jobs/{id}/detections", get(job_detections))
        .route("/v1/streams", get(list_streams).post(create_stream))
        .route(
            "/v1/streams/{id}",
            get(get_stream).patch(patch_stream).delete(delete_stream),
        )
        .route("/v1/streams/{id}/snapshot.jpg", get(snapshot))
        // Drift monitoring: the current window becomes the stream's baseline.
        .route("/v1/streams/{id}/baseline", post(save_baseline))
        .route("/v1/events", get(events))
        .route("/v1/events/{id}/snapshot.jpg", get(event_snapshot))
        .route("/v1/system", get(crate::console::system_view))
        .route("/v1/probe", post(crate::console::probe))
        .layer(timeout)
        // Long-lived: outside the request timeout.
        .route("/v1/streams/{id}/live", get(crate::console::live))
        .merge(uploads)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        // Open: the console asks whether it must show its sign-in form.
        .route(
            "/v1/session",
            get(crate::console::session_state)
                .post(crate::console::login)
                .delete(crate::console::logout),
        )
        .merge(crate::console::pages())
        .layer(timeout);
    Router::new()
        .merge(open)
        .merge(v1)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::edge::same_origin,
        ))
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), track_http))
        .with_state(state)
}

/// Bearer-token check for `/v1/*`, in constant time so the token cannot be
/// recovered byte by byte from response timings.
///
/// The console's session cookie is accepted too (browsers cannot put a
/// header on `<img>`, `<video>` or a WebSocket); a request it authorises
/// that changes state, or opens a live view, must come from this origin.
async fn require_token(
    State(st): State<SharedState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if st.cfg.server.token.is_some() {
        match crate::console::authorised(&st, req.headers()) {
            Some(crate::console::Auth::Bearer) => {}
            Some(crate::console::Auth::Cookie) => {
                if crate::console::session::needs_same_origin(req.method(), req.headers())
                    && !crate::console::session::same_origin(req.headers())
                {
                    tracing::warn!(method = %req.method(), path = %req.uri().path(), "cross-origin request with the console cookie refused");
                    return Err(ApiError::Forbidden(
                        "cross-origin request refused: the session cookie only works from the console's own origin".into(),
                    ));
                }
            }
            None => return Err(ApiError::Unauthorized),
        }
    }
    Ok(next.run(req).await)
}

/// `vigil_http_request_seconds{route, status}`, labelled with the matched
/// route template (never the raw path: ids would explode cardinality).
async fn track_http(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    st.metrics
        .http_request_seconds
        .with_label_values(&[route.as_str(), resp.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// tower-http's limit and timeout layers answer 413/408 with a plain body;
/// rewrite those into the API's `{"error": ...}` shape.
async fn json_errors(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return resp;
    }
    let message = match resp.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "request body too large (server.max_upload_mb for /v1/jobs, server.detect_max_mb for /v1/detect)"
                .to_string()
        }
        StatusCode::REQUEST_TIMEOUT => "request timed out".to_string(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    (resp.status(), Json(ErrorBody { error: message })).into_response()
}

/// Liveness: 200 while the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 once the model is loaded and warm, else 503.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(st): State<SharedState>) -> Response {
    match st.ready.get() {
        Some(r) => Json(Readiness {
            ready: true,
            device: Some(r.device.clone()),
            precision: Some(r.precision.clone()),
            backend: Some(r.backend.clone()),
            // The file name only: an open route must not reveal server paths.
            model: Some(
                Path::new(&r.model)
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            ),
            reason: None,
        })
        .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                ready: false,
                device: None,
                precision: None,
                backend: None,
                model: None,
                reason: Some(
                    st.jobs
                        .not_ready()
                        .unwrap_or_else(|| "loading the model".to_string()),
                ),
            }),
        )
            .into_response(),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(st): State<SharedState>) -> Result<Response, ApiError> {
    let text = st.metrics.render().map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The OpenAPI 3 document of this API, generated from the handlers and
/// completed with this daemon's own limits (e.g. `conf`'s minimum is its
/// `model.conf`).
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses(
    (status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
async fn openapi(State(st): State<SharedState>) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&st.cfg))
}

/// Detects objects in one image (JPEG/PNG/BMP/WebP), batched with the streams.
#[utoipa::path(post, path = "/v1/detect", tag = "detect",
    request_body(description = "one encoded image (the type is sniffed from its bytes; `Content-Type` is not needed)",
        content((inline(Binary) = "application/octet-stream"), (inline(Binary) = "image/jpeg"),
                (inline(Binary) = "image/png"), (inline(Binary) = "image/bmp"),
                (inline(Binary) = "image/webp"))),
    responses((status = 200, body = DetectResponse),
              (status = 400, description = "not a readable JPEG/PNG/BMP/WebP image, or more than `server.max_pixels`", body = ErrorBody),
              (status = 403, description = "a cross-origin request (foreign `Origin`)", body = ErrorBody),
              (status = 408, description = "the body stalled for `server.body_idle_timeout_s` or arrived too slowly", body = ErrorBody),
              (status = 413, description = "larger than `server.detect_max_mb`", body = ErrorBody),
              (status = 421, description = "no token is set and `Host` is not an IP address, localhost or one of `server.hostnames`", body = ErrorBody),
              (status = 429, description = "`server.detect_concurrency` requests are in progress", body = ErrorBody,
               headers(("Retry-After" = u64, description = "seconds"))),
              (status = 503, description = "the model is still loading", body = ErrorBody)),
    security(("bearer" = [])))]
async fn detect(
    State(st): State<SharedState>,
    req: Request,
) -> Result<Json<DetectResponse>, ApiError> {
    let engine = Arc::clone(&st.ready()?.engine);
    // The slot is taken before the body is read, so memory held by
    // /v1/detect bodies is bounded by detect_concurrency × detect_max_mb.
    let _slot = st.limits.detect_slot()?;
    let limit = st.cfg.server.detect_max_mb.saturating_mul(MIB);
    let body = read_body(req.into_body(), limit, st.limits.body).await?;
    let max_pixels = st.cfg.server.max_pixels;
    let (width, height, detections) = tokio::task::spawn_blocking(move || {
        let img = vigil_detect::image_io::decode_untrusted_image(&body, "request body", max_pixels)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let (w, h) = (img.width(), img.height());
        let dets = engine.detect_image(img).map_err(ApiError::Internal)?;
        Ok::<_, ApiError>((w, h, dets))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(DetectResponse {
        width,
        height,
        detections,
    }))
}

/// Queues a video for annotation. Body: the raw video, or multipart with a
/// `video` field. Streamed to disk, never held in memory.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", params(JobQuery),
    request_body(description = "the video, any container and codec FFmpeg reads: raw bytes, or multipart with a `video` field",
        content((inline(Binary) = "application/octet-stream"), (inline(Binary) = "video/mp4"),
                (JobUpload = "multipart/form-data"))),
    responses(
        (status = 202, body = JobCreated, headers(("Location" = String, description = "/v1/jobs/{id}")),
            links(
                ("status" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))),
                ("video" = (operation_id = "job_video", parameters(("id" = "$response.body#/id")))),
                ("detections" = (operation_id = "job_detections", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "a bad query parameter (named), an empty upload, a multipart body without `video`, or not a video container vigil accepts (MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS; playlists are refused)", body = ErrorBody),
        (status = 403, description = "a cross-origin request (foreign `Origin`)", body = ErrorBody),
        (status = 408, description = "the upload stalled for `server.body_idle_timeout_s` or arrived slower than `server.min_upload_kib_s`", body = ErrorBody),
        (status = 413, description = "larger than `server.max_upload_mb`", body = ErrorBody),
        (status = 421, description = "no token is set and `Host` is not an IP address, localhost or one of `server.hostnames`", body = ErrorBody),
        (status = 429, description = "the job queue is full, or this client address has `server.max_uploads_per_client` uploads in flight", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "the job queue (NATS) is unavailable", body = ErrorBody),
        (status = 507, description = "less than `storage.min_free_mb` free under `storage.dir`", body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_job(
    State(st): State<SharedState>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> Result<Response, ApiError> {
    let params = job_params(q, st.cfg.model.conf)?;
    let limit = st.cfg.server.max_upload_mb.saturating_mul(MIB);
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    // Held until the upload is stored (or refused): bounds what one client
    // address can have in flight.
    let _slot = st.limits.upload_slot(client)?;
    st.limits.check_free_space(&st.cfg.storage.dir)?;
    let pace = st.limits.body;
    let id = spool_and_submit(&st, req, params, limit, pace).await?;
    tracing::info!(job = %id, "job queued");
    let location = format!("/v1/jobs/{id}");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    Ok((
        StatusCode::ACCEPTED,
        headers,
        Json(JobCreated {
            id,
            status: JobStatus::Queued,
        }),
    )
        .into_response())
}

/// The upload is spooled to `storage.dir/uploads/<id>.part` (bounded by
/// `max_upload_mb`, checked to be a video container), then handed to the
/// queue, which moves or copies it; what is left is removed either way.
async fn spool_and_submit(
    st: &SharedState,
    req: Request,
    params: JobParams,
    limit: u64,
    pace: BodyPace,
) -> Result<String, ApiError> {
    // Refuse early when the queue is already full (no point receiving the
    // video); the queue takes its place only once the upload has arrived
    // whole, so clients that trickle bytes cannot hold the queue.
    st.jobs.check_room().await.map_err(submit_err)?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = st.cfg.storage.dir.join("uploads");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    let part = dir.join(format!("{id}.part"));
    let received = match receive_upload(req, &part, limit, pace).await {
        Ok(()) => check_container(&part).await,
        Err(e) => Err(e),
    };
    let submitted = match received {
        Ok(()) => st.jobs.submit(&id, params, &part).await.map_err(|e| {
            if let SubmitError::Queue(q) = &e {
                tracing::error!(job = %id, error = %q, "cannot queue job");
            }
            submit_err(e)
        }),
        Err(e) => Err(e),
    };
    if let Err(e) = tokio::fs::remove_file(&part).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %part.display(), error = %e, "cannot remove a spooled upload");
        }
    }
    submitted.map(|_| id)
}

fn submit_err(e: SubmitError) -> ApiError {
    match e {
        SubmitError::Full(n) => ApiError::QueueFull {
            queued: usize::try_from(n).unwrap_or(usize::MAX),
            retry_after_s: RETRY_AFTER_S,
        },
        SubmitError::Queue(e) => e.into(),
    }
}

/// The job's options from its query string, refused with 400 naming the
/// parameter exactly where the document's limits refuse them.
fn job_params(pairs: Vec<(String, String)>, model_conf: f32) -> Result<JobParams, ApiError> {
    let q = QueryParams::parse(pairs, &["every", "fps", "conf", "track"])?;
    let every = q
        .int("every", JOB_EVERY)?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let fps = q.number("fps", JOB_FPS)?;
    // Compared as f64 against the very value the document shows as the
    // minimum, so a client at the documented bound is never refused.
    let conf_min = f64::from(model_conf);
    let conf = q.number(
        "conf",
        NumRange {
            min: conf_min,
            min_exclusive: false,
            max: 1.0,
        },
    );
    let conf = conf.map_err(|e| match e {
        ApiError::BadRequest(m) => ApiError::BadRequest(format!(
            "{m} (the minimum is model.conf: the detector has already dropped lower boxes)"
        )),
        other => other,
    })?;
    Ok(JobParams {
        every,
        fps,
        #[allow(clippy::cast_possible_truncation)]
        conf: conf.map(|c| c as f32),
        track: q.boolean("track")?.unwrap_or(true),
    })
}

/// Refuses an upload that is not one of the plain video containers (an HLS
/// playlist naming local files "succeeded" and returned that file's video).
async fn check_container(path: &Path) -> Result<(), ApiError> {
    let p = path.to_path_buf();
    let sniffed = tokio::task::spawn_blocking(move || vigil_video::Container::sniff_file(&p))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    match sniffed {
        Some(_) => Ok(()),
        None => Err(ApiError::BadRequest(format!(
            "the upload is not a video container vigil accepts ({}); playlists and other formats are refused",
            vigil_video::Container::ACCEPTED
        ))),
    }
}

/// Reads a whole (small) body into memory at the required pace, enforcing
/// `limit` bytes.
async fn read_body(body: Body, limit: u64, pace: BodyPace) -> Result<Bytes, ApiError> {
    let mut body = body;
    let mut watch = pace.start();
    let mut buf = Vec::new();
    while let Some(frame) = watch.next(body.frame()).await? {
        let frame = frame.map_err(|e| body_err(&e, limit))?;
        if let Ok(chunk) = frame.into_data() {
            watch.add(chunk.len())?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(ApiError::TooLarge(limit / MIB));
            }
            buf.extend_from_slice(&chunk);
        }
    }
    Ok(Bytes::from(buf))
}

/// Writes the upload to `path` chunk by chunk, enforcing `limit` bytes and
/// the minimum pace.
async fn receive_upload(
    req: Request,
    path: &Path,
    limit: u64,
    pace: BodyPace,
) -> Result<(), ApiError> {
    let mut watch = pace.start();
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(ApiError::internal)?;
    let mut written = 0u64;
    let mut write = |chunk: Bytes| {
        written += chunk.len() as u64;
        let too_big = written > limit;
        (chunk, too_big)
    };
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let mut found = false;
        while let Some(mut field) = watch
            .next(mp.next_field())
            .await?
            .map_err(|e| multipart_err(e, limit))?
        {
            if field.name() != Some("video") {
                continue;
            }
            found = true;
            while let Some(chunk) = watch
                .next(field.chunk())
                .await?
                .map_err(|e| multipart_err(e, limit))?
            {
                watch.add(chunk.len())?;
                let (chunk, too_big) = write(chunk);
                if too_big {
                    return Err(ApiError::TooLarge(limit / MIB));
                }
                file.write_all(&chunk).await.map_err(ApiError::internal)?;
            }
            break;
        }
        if !found {
            return Err(ApiError::BadRequest(
                "multipart body has no field named \"video\"".into(),
            ));
        }
    } else {
        let mut body = req.into_body();
        while let Some(frame) = watch.next(body.frame()).await? {
            let frame = frame.map_err(|e| body_err(&e, limit))?;
            if let Ok(chunk) = frame.into_data() {
                watch.add(chunk.len())?;
                let (chunk, too_big) = write(chunk);
                if too_big {
                    return Err(ApiError::TooLarge(limit / MIB));
                }
                file.write_all(&chunk).await.map_err(ApiError::internal)?;
            }
        }
    }
    if written == 0 {
        return Err(ApiError::BadRequest("the upload is empty".into()));
    }
    file.flush().await.map_err(ApiError::internal)?;
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok(())
}

fn multipart_err(e: axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(limit / MIB)
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// A body error is 413 when the limit layer cut it off, else a broken upload.
fn body_err(e: &axum::Error, limit: u64) -> ApiError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<http_body_util::LengthLimitError>() {
            return ApiError::TooLarge(limit / MIB);
        }
        src = s.source();
    }
    ApiError::BadRequest(format!("upload interrupted: {e}"))
}

/// A job's status and progress.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, description = "no such job", body = ErrorBody),
              (status = 503, description = "the job queue (NATS) is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_job(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let rec = st
        .jobs
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id:?}")))?;
    Ok(Json(JobView {
        progress: rec.progress(),
        id: rec.id,
        status: rec.status,
        frames_done: rec.frames_done,
        frames_total: rec.frames_total,
        error: rec.error,
        worker: rec.worker,
    }))
}

fn file_response(content_type: &'static str, len: u64, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        ],
        body,
    )
        .into_response()
}

async fn job_file(
    st: &SharedState,
    id: &str,
    name: &str,
    content_type: &'static str,
    range: Option<&HeaderValue>,
) -> Result<Response, ApiError> {
    let gone = || ApiError::NotFound(format!("job {id} has no {name} (expired?)"));
    let missing = || ApiError::NotFound(format!("no job {id:?}"));
    let rec = st.jobs.get(id).await?.ok_or_else(missing)?;
    if rec.status != JobStatus::Succeeded {
        return Err(ApiError::Conflict(format!(
            "job {id} is {}; results exist only once it has succeeded",
            rec.status
        )));
    }
    let result = st.jobs.open_result(&rec, name).await?.ok_or_else(gone)?;
    let len = result.len;
    match result.body {
        ResultBody::File(mut file) => {
            // Browsers seek in a <video> with Range requests.
            if let Some((start, end)) = crate::range::parse(range, len)? {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                file.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(ApiError::internal)?;
                let part = end - start + 1;
                let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(part)));
                let mut resp = file_response(content_type, part, body);
                *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(resp);
            }
            let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
            Ok(file_response(content_type, len, body))
        }
        ResultBody::Stream(object) => {
            // An object store reads front to back: no ranges here.
            let body = Body::from_stream(tokio_util::io::ReaderStream::new(object));
            let mut resp = file_response(content_type, len, body);
            resp.headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
            Ok(resp)
        }
    }
}

/// The annotated MP4 of a succeeded job.
#[utoipa::path(get, path = "/v1/jobs/{id}/video", tag = "jobs",
    params(("id" = String, Path, description = "job id"),
           ("Range" = Option<String>, Header, description = "one byte range, e.g. `bytes=0-1023` (local backend)")),
    responses((status = 200, description = "annotated MP4, `moov` first (plays while downloading)", content_type = "video/mp4"),
              (status = 206, description = "the requested byte range", content_type = "video/mp4"),
              (status = 404, description = "no such job, or its results expired", body = ErrorBody),
              (status = 409, description = "the job has not succeeded", body = ErrorBody),
              (status = 416, description = "range outside the file", body = ErrorBody),
              (status = 503, description = "the job queue (NATS) is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
async fn job_video(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    job_file(
        &st,
        &id,
        VIDEO_FILE,
        "video/mp4",
        headers.get(header::RANGE),
    )
    .await
}

/// JSON Lines, one per processed frame, as `vigil annotate --jsonl`.
#[utoipa::path(get, path = "/v1/jobs/{id}/detections", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "JSON Lines: {\"frame\", \"pts_ms\", \"detections\"}", content_type = "application/x-ndjson"),
              (status = 404, description = "no such job, or its results expired", body = ErrorBody),
              (status = 409, description = "the job has not succeeded", body = ErrorBody),
              (status = 503, description = "the job queue (NATS) is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
async fn job_detections(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    job_file(&st, &id, DETECTIONS_FILE, "application/x-ndjson", None).await
}

/// Every stream with its state and rates.
#[utoipa::path(get, path = "/v1/streams", tag = "streams",
    responses((status = 200, body = Vec<StreamView>)), security(("bearer" = [])))]
async fn list_streams(State(st): State<SharedState>) -> Json<Vec<StreamView>> {
    Json(st.ready.get().map(|r| r.streams.list()).unwrap_or_default())
}

/// Adds a stream at run time (same fields as a `[[streams]]` entry); it is
/// stored before the answer, so it survives restarts.
#[utoipa::path(post, path = "/v1/streams", tag = "streams",
    request_body = StreamConfigDoc,
    responses((status = 201, body = StreamDetail,
            headers(("Location" = String, description = "/v1/streams/{id}"),
                    ("ETag" = String, description = "the stream's revision, for If-Match")),
            links(
                ("baseline" = (operation_id = "save_baseline", parameters(("id" = "$response.body#/id")))),
                ("get" = (operation_id = "get_stream", parameters(("id" = "$response.body#/id")))),
                ("patch" = (operation_id = "patch_stream", parameters(("id" = "$response.body#/id")))),
                ("delete" = (operation_id = "delete_stream", parameters(("id" = "$response.body#/id")))))),
              (status = 400, description = "an invalid field (named), an unreadable body, or a source `server.stream_schemes`/`stream_deny`/`stream_allow`/`media_root` does not allow (\"cannot open the source\" where the reason would leak)", body = ErrorBody),
              (status = 403, description = "a cross-origin request (foreign `Origin`)", body = ErrorBody),
              (status = 409, description = "a stream with this id exists, or `server.max_streams` are running", body = ErrorBody),
              (status = 413, description = "body over 2 MiB", body = ErrorBody),
              (status = 415, description = "the body is not `application/json`", body = ErrorBody),
              (status = 421, description = "no token is set and `Host` is not an IP address, localhost or one of `server.hostnames`", body = ErrorBody),
              (status = 503, description = "the model is still loading", body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_stream(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    crate::edge::require_content_type(&headers, &["application/json"])?;
    let cfg: StreamConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid stream: {e}")))?;
    let streams = Arc::clone(&st.ready()?.streams);
    let detail = tokio::task::spawn_blocking(move || streams.add(cfg))
        .await
        .map_err(ApiError::internal)??;
    let location = format!("/v1/streams/{}", detail.status.id);
    let mut resp = stream_response(StatusCode::CREATED, detail);
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// A stream in full with its `ETag`.
fn stream_response(status: StatusCode, detail: StreamDetail) -> Response {
    let etag = detail.etag();
    let mut resp = (status, Json(detail)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// One stream: its status, where it came from (`config` or `api`), its
/// revision and every setting (credentials masked), in one flat object.
#[utoipa::path(get, path = "/v1/streams/{id}", tag = "streams",
    params(("id" = String, Path, description = "stream id")),
    responses((status = 200, body = StreamDetail,
               headers(("ETag" = String, description = "the stream's revision, for If-Match"))),
              (status = 404, description = "no such stream", body = ErrorBody),
              (status = 503, description = "the model is still loading", body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_stream(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let detail = st.ready()?.streams.detail(&id)?;
    Ok(stream_response(StatusCode::OK, detail))
}

/// Changes a stream with a JSON merge patch (RFC 7396) over its settings:
/// `null` resets a key to its default, arrays (zones, lines, masks) are
/// replaced whole. Zones, lines, filters, masks and event settings apply
/// from the next frame, with the decoder and the tracks untouched; other
/// changes (url, every/fps, enabled, tracker, …) restart just this stream.
/// An invalid patch changes nothing. With `If-Match`, a stale `ETag` is 412.
#[utoipa::path(patch, path = "/v1/streams/{id}", tag = "streams",
    params(("id" = String, Path, description = "stream id"),
           ("If-Match" = Option<String>, Header, description = "the ETag the change is based on")),
    request_body(content = StreamPatchDoc, content_type = "application/merge-patch+json",
                 description = "any subset of the stream's configuration; `application/json` is accepted too"),
    responses((status = 200, body = StreamDetail,
               headers(("ETag" = String, description = "the new revision"))),
              (status = 400, description = "the patch or the result is invalid; the message names the field", body = ErrorBody),
              (status = 404, description = "no such stream", body = ErrorBody),
              (status = 412, description = "If-Match does not match the current ETag", body = ErrorBody),
              (status = 413, description = "body over 2 MiB", body = ErrorBody),
              (status = 415, description = "not a JSON body", body = ErrorBody),
              (status = 503, description = "the model is still loading", body = ErrorBody)),
    security(("bearer" = [])))]
async fn patch_stream(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/merge-patch+json")
                || mime.eq_ignore_ascii_case("application/json")
        });
    if !json_body {
        return Err(ApiError::UnsupportedMediaType(
            "send the patch as application/merge-patch+json".into(),
        ));
    }
    let patch: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the patch is not JSON: {e}")))?;
    let if_match = headers
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::BadRequest("If-Match is not valid text".into()))
        })
        .transpose()?;
    let streams = Arc::clone(&st.ready()?.streams);
    let detail =
        tokio::task::spawn_blocking(move || streams.patch(&id, &patch, if_match.as_deref()))
            .await
            .map_err(ApiError::internal)??;
    Ok(stream_response(StatusCode::OK, detail))
}

/// Stops and removes a stream for good (a config-file stream stays deleted
/// across restarts until its entry in the file changes).
#[utoipa::path(delete, path = "/v1/streams/{id}", tag = "streams",
    params(("id" = String, Path, description = "stream id")),
    responses((status = 204, description = "removed"), (status = 404, description = "no such stream", body = ErrorBody),
              (status = 503, description = "the model is still loading", body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_stream(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    let streams = Arc::clone(&st.ready()?.streams);
    tokio::task::spawn_blocking(move || streams.remove(&id))
        .await
        .map_err(ApiError::internal)??;
    Ok(StatusCode::NO_CONTENT)
}

/// Saves the stream's current drift window (the last `drift.window_minutes`
/// of detections) as its baseline: written to `<baseline_dir>/<id>.json`,
/// used at once and again after a restart. For "this is normal now" after a
/// camera was moved or the model replaced.
#[utoipa::path(post, path = "/v1/streams/{id}/baseline", tag = "streams",
    params(("id" = String, Path, description = "stream id")),
    responses((status = 200, body = crate::streams::BaselineSaved),
              (status = 404, description = "no such stream", body = ErrorBody),
              (status = 409, description = "drift monitoring disabled, or no detections yet", body = ErrorBody),
              (status = 503, description = "the model is still loading", body = ErrorBody)),
    security(("bearer" = [])))]
async fn save_baseline(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<crate::streams::BaselineSaved>, ApiError> {
    let streams = Arc::clone(&st.ready()?.streams);
    let saved = tokio::task::spawn_blocking(move || streams.save_baseline(&id))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(saved))
}

/// The latest processed frame of a stream, annotated, as JPEG.
#[utoipa::path(get, path = "/v1/streams/{id}/snapshot.jpg", tag = "streams",
    params(("id" = String, Path, description = "stream id")),
    responses((status = 200, description = "JPEG", content_type = "image/jpeg"),
              (status = 404, description = "no such stream", body = ErrorBody),
              (status = 409, description = "the stream has no processed frame yet (connecting or reconnecting)", body = ErrorBody),
              (status = 503, description = "the model is still loading", body = ErrorBody)),
    security(("bearer" = [])))]
async fn snapshot(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let Some((image, objects)) = st.ready()?.streams.latest(&id)? else {
        // The stream exists, so not 404: a client polling a camera that is
        // still connecting can tell "wait" from "wrong id".
        return Err(ApiError::Conflict(format!(
            "stream {id:?} has no processed frame yet"
        )));
    };
    let jpeg = tokio::task::spawn_blocking(move || {
        let mut img = (*image).clone();
        vigil_video::draw_detections(&mut img, &objects);
        vigil_video::encode_jpeg(&img, 85)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    )
        .into_response())
}

/// Recent events, newest first, each with its delivery status
/// (`pending` until every matching webhook has it, `dead` after
/// `max_attempts`) and per-webhook attempts.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, description = "events with their delivery status, newest first", body = Vec<EventRecordDoc>),
        (status = 400, description = "a bad query parameter (named)", body = ErrorBody)),
    security(("bearer" = [])))]
async fn events(
    State(st): State<SharedState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<vigil_events::EventRecord>>, ApiError> {
    let q = QueryParams::parse(q, &["limit", "status"])?;
    let status = q
        .choice("status", &["pending", "delivered", "dead"])?
        .map(str::parse::<vigil_events::Status>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let limit = usize::try_from(q.int("limit", EVENTS_LIMIT)?.unwrap_or(100)).unwrap_or(1000);
    let outbox = st.outbox.clone();
    let records = tokio::task::spawn_blocking(move || outbox.recent(limit, status))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(records))
}

/// The annotated frame an event was generated on, as JPEG; kept for
/// `events.snapshot_retention_hours` (the event's `snapshot_url`).
#[utoipa::path(get, path = "/v1/events/{id}/snapshot.jpg", tag = "events",
    params(("id" = String, Path, description = "event id")),
    responses((status = 200, description = "JPEG", content_type = "image/jpeg"),
              (status = 404, description = "no snapshot for this event (unknown, expired, or snapshots off)", body = ErrorBody)),
    security(("bearer" = [])))]
async fn event_snapshot(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let store = crate::snapshot_store(&st.cfg);
    let key = id.clone();
    let jpeg = tokio::task::spawn_blocking(move || store.load(&key, std::time::SystemTime::now()))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no snapshot for event {id:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        jpeg,
    )
        .into_response())
}
