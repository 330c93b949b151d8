//! Routes, handlers and the OpenAPI document generated from them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::{IntoParams, OpenApi, ToSchema};
use vigil_core::config::StreamConfig;
use vigil_core::Detection;

use crate::error::{ApiError, ErrorBody};
use crate::jobs::{JobParams, Jobs, DETECTIONS_FILE, RETRY_AFTER_S, VIDEO_FILE};
use crate::state::JobBackend;
use crate::state::SharedState;
use crate::streams::{StreamState, StreamView};
use vigil_queue::{JobStatus, SubmitError};

const MIB: u64 = 1024 * 1024;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DetectResponse {
    width: u32,
    height: u32,
    #[schema(value_type = Vec<DetectionDoc>)]
    detections: Vec<Detection>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Run the detector on every Nth frame (exclusive with `fps`).
    every: Option<u32>,
    /// Run the detector at this many frames per second of video time.
    fps: Option<f64>,
    /// Minimum score reported; only raises `model.conf`, never lowers it.
    conf: Option<f32>,
    /// Report ByteTrack tracks (with `track_id`) rather than raw detections.
    track: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct JobCreated {
    id: String,
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct JobView {
    id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    status: String,
    /// 0.0–1.0: frames done / frames total.
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

/// The body of `POST /v1/streams`: the fields of a `[[streams]]` entry.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StreamConfigDoc {
    id: String,
    /// `rtsp://…` or a file path.
    url: String,
    every: Option<u32>,
    fps: Option<f64>,
    /// Files only: loop, paced at the file's frame rate.
    r#loop: Option<bool>,
    ring_capacity: Option<usize>,
    stall_timeout_s: Option<f64>,
    reconnect_initial_s: Option<f64>,
    reconnect_max_s: Option<f64>,
    /// `tcp` or `udp`.
    transport: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Most events returned (default 100).
    limit: Option<u32>,
    /// `pending`, `delivered` or `dead`.
    status: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "vigil", description = "Real-time video object detection daemon (`vigil serve`)."),
    paths(
        healthz, readyz, metrics, openapi, detect, create_job, get_job, job_video, job_detections,
        list_streams, create_stream, delete_stream, snapshot, events, event_snapshot,
        save_baseline
    ),
    components(schemas(
        ErrorBody, Health, Readiness, DetectResponse, DetectionDoc, JobCreated, JobView,
        StreamView, StreamState, StreamConfigDoc,
        crate::streams::BaselineSaved
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
    let detect = Router::new()
        .route("/v1/detect", post(detect))
        .layer(DefaultBodyLimit::max(limit));
    let v1 = Router::new()
        .merge(detect)
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/video", get(job_video))
        .route("/v1/jobs/{id}/detections", get(job_detections))
        .route("/v1/streams", get(list_streams).post(create_stream))
        .route("/v1/streams/{id}", delete(delete_stream))
        .route("/v1/streams/{id}/snapshot.jpg", get(snapshot))
        // Drift monitoring: the current window becomes the stream's baseline.
        .route("/v1/streams/{id}/baseline", post(save_baseline))
        .route("/v1/events", get(events))
        .route("/v1/events/{id}/snapshot.jpg", get(event_snapshot))
        .layer(timeout)
        .merge(uploads)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .layer(timeout);
    Router::new()
        .merge(open)
        .merge(v1)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), track_http))
        .with_state(state)
}

/// Bearer-token check for `/v1/*`, in constant time so the token cannot be
/// recovered byte by byte from response timings.
async fn require_token(
    State(st): State<SharedState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(token) = st.cfg.server.token.as_deref() {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return Err(ApiError::Unauthorized);
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
        StatusCode::PAYLOAD_TOO_LARGE => "upload exceeds server.max_upload_mb".to_string(),
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
            model: Some(r.model.clone()),
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

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses(
    (status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Detects objects in one image (JPEG/PNG/BMP/WebP), batched with the streams.
#[utoipa::path(post, path = "/v1/detect", tag = "detect",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "one encoded image"),
    responses((status = 200, body = DetectResponse), (status = 400, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn detect(
    State(st): State<SharedState>,
    body: Bytes,
) -> Result<Json<DetectResponse>, ApiError> {
    let engine = Arc::clone(&st.ready()?.engine);
    let (width, height, detections) = tokio::task::spawn_blocking(move || {
        let img = vigil_detect::image_io::decode_image(&body, "request body")
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
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
                 description = "the video (raw bytes, or multipart/form-data with a `video` field)"),
    responses(
        (status = 202, body = JobCreated, headers(("Location" = String, description = "/v1/jobs/{id}"))),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "seconds")))),
    security(("bearer" = [])))]
async fn create_job(
    State(st): State<SharedState>,
    Query(q): Query<JobQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let params = job_params(&q, st.cfg.model.conf)?;
    let limit = st.cfg.server.max_upload_mb.saturating_mul(MIB);
    let id = match &st.jobs {
        JobBackend::Local(jobs) => queue_local(jobs, req, params, limit).await?,
        JobBackend::Nats(queue) => {
            queue_nats(queue, &st.cfg.storage.dir, req, params, limit).await?
        }
    };
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
            status: "queued",
        }),
    )
        .into_response())
}

/// Local backend: the upload goes to `storage.dir/jobs/<id>/input`.
async fn queue_local(
    jobs: &Jobs,
    req: Request,
    params: JobParams,
    limit: u64,
) -> Result<String, ApiError> {
    let reservation = jobs.reserve().map_err(|queued| ApiError::QueueFull {
        queued,
        retry_after_s: RETRY_AFTER_S,
    })?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = jobs.job_dir(&id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    let part = dir.join("input.part");
    if let Err(e) = receive_upload(req, &part, limit).await {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(e);
    }
    tokio::fs::rename(&part, dir.join("input"))
        .await
        .map_err(ApiError::internal)?;
    // SQLite is blocking; keep it off the async workers.
    tokio::task::block_in_place(|| reservation.commit(&id, &params)).map_err(ApiError::Internal)?;
    Ok(id)
}

/// NATS backend: the upload is spooled to local disk (bounded by
/// `max_upload_mb`), then stored in the JetStream Object Store and queued;
/// the local copy is removed either way.
async fn queue_nats(
    queue: &vigil_queue::JobQueue,
    storage: &Path,
    req: Request,
    params: JobParams,
    limit: u64,
) -> Result<String, ApiError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = storage.join("uploads");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    let part = dir.join(format!("{id}.part"));
    let received = receive_upload(req, &part, limit).await;
    let submitted = match received {
        Ok(()) => queue.submit(&id, params, &part).await.map(|_| ()),
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
    };
    let _ = tokio::fs::remove_file(&part).await;
    match submitted {
        Ok(()) => Ok(id),
        Err(SubmitError::Full(n)) => Err(ApiError::QueueFull {
            queued: usize::try_from(n).unwrap_or(usize::MAX),
            retry_after_s: RETRY_AFTER_S,
        }),
        Err(SubmitError::Nats(e)) => {
            tracing::error!(job = %id, error = %e, "cannot queue job");
            Err(ApiError::Unavailable(format!(
                "the job queue is unavailable: {e}"
            )))
        }
    }
}

fn job_params(q: &JobQuery, model_conf: f32) -> Result<JobParams, ApiError> {
    if q.every.is_some() && q.fps.is_some() {
        return Err(ApiError::BadRequest(
            "every and fps are mutually exclusive".into(),
        ));
    }
    if q.every == Some(0) {
        return Err(ApiError::BadRequest("every must be at least 1".into()));
    }
    if let Some(f) = q.fps {
        if !(f.is_finite() && f > 0.0) {
            return Err(ApiError::BadRequest(format!(
                "fps must be positive, got {f}"
            )));
        }
    }
    if let Some(c) = q.conf {
        if !(0.0..=1.0).contains(&c) {
            return Err(ApiError::BadRequest(format!(
                "conf must be within 0..1, got {c}"
            )));
        }
        if c < model_conf {
            return Err(ApiError::BadRequest(format!(
                "conf {c} is below model.conf ({model_conf}); the detector has already dropped those boxes"
            )));
        }
    }
    Ok(JobParams {
        every: q.every,
        fps: q.fps,
        conf: q.conf,
        track: q.track.unwrap_or(true),
    })
}

/// Writes the upload to `path` chunk by chunk, enforcing `limit` bytes.
async fn receive_upload(req: Request, path: &Path, limit: u64) -> Result<(), ApiError> {
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
        while let Some(mut field) = mp.next_field().await.map_err(|e| multipart_err(e, limit))? {
            if field.name() != Some("video") {
                continue;
            }
            found = true;
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_err(e, limit))? {
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
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| body_err(&e, limit))?;
            if let Ok(chunk) = frame.into_data() {
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
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_job(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let view = match &st.jobs {
        JobBackend::Local(jobs) => tokio::task::block_in_place(|| jobs.get(&id))
            .map_err(ApiError::Internal)?
            .map(|row| JobView {
                progress: progress(&row.status, row.frames_done, row.frames_total),
                id: row.id,
                status: row.status,
                frames_done: row.frames_done,
                frames_total: row.frames_total,
                error: row.error,
                worker: None,
            }),
        JobBackend::Nats(queue) => queue.get(&id).await.map_err(nats_err)?.map(|r| {
            let status = r.status.as_str().to_string();
            JobView {
                progress: progress(&status, r.frames_done, r.frames_total),
                id: r.id,
                status,
                frames_done: r.frames_done,
                frames_total: r.frames_total,
                error: r.error,
                worker: r.worker,
            }
        }),
    };
    view.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no job {id:?}")))
}

fn progress(status: &str, done: u64, total: Option<u64>) -> f64 {
    match (status, total) {
        ("succeeded", _) => 1.0,
        (_, Some(t)) if t > 0 => (done as f64 / t as f64).min(1.0),
        _ => 0.0,
    }
}

fn nats_err(e: vigil_queue::QueueError) -> ApiError {
    tracing::error!(error = %e, "job queue error");
    ApiError::Unavailable(format!("the job queue is unavailable: {e}"))
}

fn not_succeeded(id: &str, status: &str) -> ApiError {
    ApiError::Conflict(format!(
        "job {id} is {status}; results exist only once it has succeeded"
    ))
}

fn file_response(content_type: &'static str, len: u64, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
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
) -> Result<Response, ApiError> {
    let gone = || ApiError::NotFound(format!("job {id} has no {name} (expired?)"));
    let missing = || ApiError::NotFound(format!("no job {id:?}"));
    match &st.jobs {
        JobBackend::Local(jobs) => {
            let row = tokio::task::block_in_place(|| jobs.get(id))
                .map_err(ApiError::Internal)?
                .ok_or_else(missing)?;
            if row.status != "succeeded" {
                return Err(not_succeeded(id, &row.status));
            }
            let file = tokio::fs::File::open(jobs.job_dir(id).join(name))
                .await
                .map_err(|_| gone())?;
            let len = file.metadata().await.map_err(ApiError::internal)?.len();
            let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
            Ok(file_response(content_type, len, body))
        }
        JobBackend::Nats(queue) => {
            let rec = queue.get(id).await.map_err(nats_err)?.ok_or_else(missing)?;
            if rec.status != JobStatus::Succeeded {
                return Err(not_succeeded(id, rec.status.as_str()));
            }
            let (object, len) = queue
                .open_result(&rec, name)
                .await
                .map_err(nats_err)?
                .ok_or_else(gone)?;
            let body = Body::from_stream(tokio_util::io::ReaderStream::new(object));
            Ok(file_response(content_type, len, body))
        }
    }
}

/// The annotated MP4 of a succeeded job.
#[utoipa::path(get, path = "/v1/jobs/{id}/video", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "annotated MP4", content_type = "video/mp4"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn job_video(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    job_file(&st, &id, VIDEO_FILE, "video/mp4").await
}

/// JSON Lines, one per processed frame, as `vigil annotate --jsonl`.
#[utoipa::path(get, path = "/v1/jobs/{id}/detections", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "JSON Lines: {\"frame\", \"pts_ms\", \"detections\"}", content_type = "application/x-ndjson"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn job_detections(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    job_file(&st, &id, DETECTIONS_FILE, "application/x-ndjson").await
}

/// Every stream with its state and rates.
#[utoipa::path(get, path = "/v1/streams", tag = "streams",
    responses((status = 200, body = Vec<StreamView>)), security(("bearer" = [])))]
async fn list_streams(State(st): State<SharedState>) -> Json<Vec<StreamView>> {
    Json(st.ready.get().map(|r| r.streams.list()).unwrap_or_default())
}

/// Adds a stream at run time (same fields as a `[[streams]]` entry).
#[utoipa::path(post, path = "/v1/streams", tag = "streams",
    request_body = StreamConfigDoc,
    responses((status = 201, body = StreamView), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_stream(State(st): State<SharedState>, body: Bytes) -> Result<Response, ApiError> {
    let cfg: StreamConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid stream: {e}")))?;
    let streams = Arc::clone(&st.ready()?.streams);
    let id = cfg.id.clone();
    let view = tokio::task::spawn_blocking(move || {
        streams.add(cfg, true)?;
        streams
            .get(&id)
            .ok_or_else(|| ApiError::NotFound(format!("stream {id:?} vanished")))
    })
    .await
    .map_err(ApiError::internal)??;
    let location = format!("/v1/streams/{}", view.id);
    let mut resp = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Stops and removes a stream.
#[utoipa::path(delete, path = "/v1/streams/{id}", tag = "streams",
    params(("id" = String, Path, description = "stream id")),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_stream(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    st.ready()?.streams.remove(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Saves the stream's current drift window (the last `drift.window_minutes`
/// of detections) as its baseline: written to `<baseline_dir>/<id>.json`,
/// used at once and again after a restart. For "this is normal now" after a
/// camera was moved or the model replaced.
#[utoipa::path(post, path = "/v1/streams/{id}/baseline", tag = "streams",
    params(("id" = String, Path, description = "stream id")),
    responses((status = 200, body = crate::streams::BaselineSaved),
              (status = 404, body = ErrorBody),
              (status = 409, description = "drift monitoring disabled, or no detections yet", body = ErrorBody)),
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
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn snapshot(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let Some((image, objects)) = st.ready()?.streams.latest(&id)? else {
        return Err(ApiError::NotFound(format!(
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
    responses((status = 200, description = "array of events with delivery status"),
        (status = 400, description = "bad status filter", body = ErrorBody)),
    security(("bearer" = [])))]
async fn events(
    State(st): State<SharedState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<vigil_events::EventRecord>>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<vigil_events::Status>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let limit = q.limit.unwrap_or(100) as usize;
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
