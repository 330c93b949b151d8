//! Operations routes: liveness, readiness, metrics and the OpenAPI document.

use super::prelude::*;
use crate::state::ReadyState;

/// What the ops routes need; `vigil serve` and `vigil worker` each give
/// their own, so both are probed and scraped the same way.
#[derive(Clone)]
pub struct Ops {
    pub metrics: Arc<crate::metrics::Metrics>,
    pub probe: Arc<dyn crate::state::Probe>,
}

/// `/healthz`, `/readyz` and `/metrics`, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>(ops: Ops) -> axum::Router<S> {
    use axum::routing::get;
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ops)
}

/// Liveness: 200 while the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 once the model is loaded and warm, else 503.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub(crate) async fn readyz(State(ops): State<Ops>) -> Response {
    match ops.probe.readiness() {
        ReadyState::Ready {
            device,
            precision,
            backend,
            model,
        } => Json(Readiness {
            ready: true,
            device: Some(device),
            precision: Some(precision),
            backend: Some(backend),
            model,
            reason: None,
        })
        .into_response(),
        ReadyState::Waiting(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                ready: false,
                device: None,
                precision: None,
                backend: None,
                model: None,
                reason: Some(reason),
            }),
        )
            .into_response(),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(State(ops): State<Ops>) -> Result<Response, ApiError> {
    let text = ops.metrics.render().map_err(ApiError::internal)?;
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
pub(crate) async fn openapi(State(st): State<SharedState>) -> Json<serde_json::Value> {
    Json(crate::api::openapi::document(&st.cfg))
}
