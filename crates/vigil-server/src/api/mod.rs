//! The HTTP edge: the router, its middlewares and the OpenAPI document,
//! with one module per resource. Handlers call typed domain services
//! (the job queue, the streams, the outbox, the detector) and only this
//! module tree turns their errors into status codes ([`error::ApiError`]).

pub(crate) mod detect;
pub(crate) mod dto;
pub(crate) mod edge;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod jobs;
pub(crate) mod limits;
pub(crate) mod openapi;
pub(crate) mod ops;
pub(crate) mod params;
mod prelude;
pub(crate) mod range;
pub(crate) mod streams;
pub(crate) mod uploads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;

use self::detect::*;
use self::dto::*;
use self::error::{ApiError, ErrorBody};
use self::events::*;
use self::jobs::*;
use self::ops::*;
use self::streams::*;
use crate::state::SharedState;
use crate::streams::{Origin, StreamDetail, StreamState, StreamView};
use vigil_jobs::JobStatus;

pub(crate) const MIB: u64 = 1024 * 1024;

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
        StreamEventsDoc, StreamPatchDoc, MotionDoc, MotionPatchDoc, crate::streams::BaselineSaved, crate::console::Login, crate::console::SessionView,
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

/// The ready daemon's parts, or 503 while the model loads.
pub(crate) fn ready(st: &crate::state::AppState) -> Result<&crate::state::Ready, ApiError> {
    st.ready
        .get()
        .ok_or_else(|| ApiError::Unavailable("the model is still loading; retry shortly".into()))
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
    let ops = ops::Ops {
        metrics: Arc::clone(&state.metrics),
        probe: Arc::clone(&state) as Arc<dyn crate::state::Probe>,
    };
    let open = Router::new()
        .merge(ops::router(ops))
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
            crate::api::edge::same_origin,
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

#[cfg(test)]
mod tests;
