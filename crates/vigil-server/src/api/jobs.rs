//! `/v1/jobs`: uploads queued as jobs, their status and result files, over whichever [`vigil_jobs::JobQueue`] the daemon runs.

use super::prelude::*;

use super::uploads::{check_container, receive_upload};
use crate::jobs::{DETECTIONS_FILE, RETRY_AFTER_S, VIDEO_FILE};
use vigil_jobs::{JobParams, JobStatus, ResultBody, SubmitError};

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
pub(crate) async fn create_job(
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
pub(crate) async fn spool_and_submit(
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

pub(crate) fn submit_err(e: SubmitError) -> ApiError {
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
pub(crate) fn job_params(
    pairs: Vec<(String, String)>,
    model_conf: f32,
) -> Result<JobParams, ApiError> {
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

/// A job's status and progress.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, description = "no such job", body = ErrorBody),
              (status = 503, description = "the job queue (NATS) is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_job(
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

pub(crate) fn file_response(content_type: &'static str, len: u64, body: Body) -> Response {
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

pub(crate) async fn job_file(
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
    // Browsers seek in a <video> with Range requests. A local file seeks; an
    // object store (the NATS backend) reads front to back, so the bytes
    // before the range are read and dropped: slower for a late seek, but a
    // player behaves the same whichever backend holds the video.
    let range = crate::api::range::parse(range, len)?;
    let reader: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>> = match (result.body, range) {
        (ResultBody::File(mut file), Some((start, _))) => {
            use tokio::io::AsyncSeekExt;
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(ApiError::internal)?;
            Box::pin(file)
        }
        (ResultBody::File(file), None) => Box::pin(file),
        (ResultBody::Stream(mut object), Some((start, _))) => {
            use tokio::io::AsyncReadExt;
            let skipped = tokio::io::copy(&mut (&mut object).take(start), &mut tokio::io::sink())
                .await
                .map_err(ApiError::internal)?;
            if skipped != start {
                return Err(ApiError::internal(format!(
                    "job {id}'s {name} ended after {skipped} of {len} bytes"
                )));
            }
            object
        }
        (ResultBody::Stream(object), None) => object,
    };
    let Some((start, end)) = range else {
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
        return Ok(file_response(content_type, len, body));
    };
    use tokio::io::AsyncReadExt;
    let part = end - start + 1;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader.take(part)));
    let mut resp = file_response(content_type, part, body);
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

/// The annotated MP4 of a succeeded job.
#[utoipa::path(get, path = "/v1/jobs/{id}/video", tag = "jobs",
    params(("id" = String, Path, description = "job id"),
           ("Range" = Option<String>, Header, description = "one byte range, e.g. `bytes=0-1023`")),
    responses((status = 200, description = "annotated MP4, `moov` first (plays while downloading)", content_type = "video/mp4"),
              (status = 206, description = "the requested byte range", content_type = "video/mp4"),
              (status = 404, description = "no such job, or its results expired", body = ErrorBody),
              (status = 409, description = "the job has not succeeded", body = ErrorBody),
              (status = 416, description = "range outside the file", body = ErrorBody),
              (status = 503, description = "the job queue (NATS) is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_video(
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
pub(crate) async fn job_detections(
    State(st): State<SharedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    job_file(&st, &id, DETECTIONS_FILE, "application/x-ndjson", None).await
}
