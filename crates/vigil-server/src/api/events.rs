//! `/v1/events`: the durable event outbox and event snapshots.

use super::prelude::*;

/// Recent events, newest first, each with its delivery status
/// (`pending` until every matching webhook has it, `dead` after
/// `max_attempts`) and per-webhook attempts.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, description = "events with their delivery status, newest first", body = Vec<EventRecordDoc>),
        (status = 400, description = "a bad query parameter (named)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn events(
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
pub(crate) async fn event_snapshot(
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
