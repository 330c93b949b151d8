//! `POST /v1/detect`: one image through the shared engine.

use super::prelude::*;

use super::uploads::read_body;

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
pub(crate) async fn detect(
    State(st): State<SharedState>,
    req: Request,
) -> Result<Json<DetectResponse>, ApiError> {
    let detector = Arc::clone(&super::ready(&st)?.detector);
    // The slot is taken before the body is read, so memory held by
    // /v1/detect bodies is bounded by detect_concurrency × detect_max_mb.
    let _slot = st.limits.detect_slot()?;
    let limit = st.cfg.server.detect_max_mb.saturating_mul(MIB);
    let too_large = |limit| ApiError::TooLarge {
        what: "image",
        setting: "detect_max_mb",
        mib: limit / MIB,
    };
    let body = read_body(req.into_body(), limit, st.limits.body, too_large).await?;
    let max_pixels = st.cfg.server.max_pixels;
    let (width, height, detections) = tokio::task::spawn_blocking(move || {
        let input = Some(detector.input_size());
        let upload =
            vigil_detect::image_io::decode_upload(&body, "request body", max_pixels, input)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let (w, h, to_client) = (upload.width, upload.height, upload.to_client());
        let mut dets = detector
            .detect_image(upload.image)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        to_client.apply(&mut dets);
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
