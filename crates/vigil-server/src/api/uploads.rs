//! Request bodies read at a minimum pace within a size limit: whole (small) bodies in memory, uploads streamed to disk.

use super::prelude::*;

use axum::extract::{FromRequest, Multipart};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

/// Refuses an upload that is not one of the plain video containers (an HLS
/// playlist naming local files "succeeded" and returned that file's video).
pub(crate) async fn check_container(path: &Path) -> Result<(), ApiError> {
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
pub(crate) async fn read_body(
    body: Body,
    limit: u64,
    pace: BodyPace,
    too_large: fn(u64) -> ApiError,
) -> Result<Bytes, ApiError> {
    let mut body = body;
    let mut watch = pace.start();
    let mut buf = Vec::new();
    while let Some(frame) = watch.next(body.frame()).await? {
        let frame = frame.map_err(|e| body_err(&e, limit, too_large))?;
        if let Ok(chunk) = frame.into_data() {
            watch.add(chunk.len())?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&chunk);
        }
    }
    Ok(Bytes::from(buf))
}

/// Writes the upload to `path` chunk by chunk, enforcing `limit` bytes and
/// the minimum pace.
pub(crate) async fn receive_upload(
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
                    return Err(upload_too_large(limit));
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
            let frame = frame.map_err(|e| body_err(&e, limit, upload_too_large))?;
            if let Ok(chunk) = frame.into_data() {
                watch.add(chunk.len())?;
                let (chunk, too_big) = write(chunk);
                if too_big {
                    return Err(upload_too_large(limit));
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

pub(crate) fn multipart_err(e: axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        upload_too_large(limit)
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// A body error is 413 when the limit layer cut it off, else a broken upload.
pub(crate) fn body_err(e: &axum::Error, limit: u64, too_large: fn(u64) -> ApiError) -> ApiError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<http_body_util::LengthLimitError>() {
            return too_large(limit);
        }
        src = s.source();
    }
    ApiError::BadRequest(format!("upload interrupted: {e}"))
}

/// 413 for an upload over `server.max_upload_mb` (`limit` in bytes).
pub(crate) fn upload_too_large(limit: u64) -> ApiError {
    ApiError::TooLarge {
        what: "upload",
        setting: "max_upload_mb",
        mib: limit / MIB,
    }
}
