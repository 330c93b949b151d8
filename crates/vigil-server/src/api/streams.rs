//! `/v1/streams`: camera streams added, changed and removed at run time, their snapshots and drift baselines.

use super::prelude::*;

use crate::streams::{StreamDetail, StreamView};
use vigil_core::config::StreamConfig;

/// Every stream with its state and rates.
#[utoipa::path(get, path = "/v1/streams", tag = "streams",
    responses((status = 200, body = Vec<StreamView>)), security(("bearer" = [])))]
pub(crate) async fn list_streams(State(st): State<SharedState>) -> Json<Vec<StreamView>> {
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
pub(crate) async fn create_stream(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    crate::api::edge::require_content_type(&headers, &["application/json"])?;
    let cfg: StreamConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid stream: {e}")))?;
    // Decoded twice (the typed decode keeps serde's line and column in its
    // messages): some optional fields would read `null` as "not set".
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid stream: {e}")))?;
    if let Some(path) = crate::streams::nested_null(&doc) {
        return Err(ApiError::BadRequest(format!(
            "invalid stream: {}",
            crate::streams::null_refused(&path)
        )));
    }
    let streams = Arc::clone(&crate::api::ready(&st)?.streams);
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
pub(crate) fn stream_response(status: StatusCode, detail: StreamDetail) -> Response {
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
pub(crate) async fn get_stream(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let detail = crate::api::ready(&st)?.streams.detail(&id)?;
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
pub(crate) async fn patch_stream(
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
    let streams = Arc::clone(&crate::api::ready(&st)?.streams);
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
pub(crate) async fn delete_stream(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    let streams = Arc::clone(&crate::api::ready(&st)?.streams);
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
pub(crate) async fn save_baseline(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<crate::streams::BaselineSaved>, ApiError> {
    let streams = Arc::clone(&crate::api::ready(&st)?.streams);
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
pub(crate) async fn snapshot(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let Some((image, objects)) = crate::api::ready(&st)?.streams.latest(&id)? else {
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
