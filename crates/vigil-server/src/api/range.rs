//! One HTTP byte range (`Range: bytes=…`, RFC 9110 §14), for seeking in a
//! job's video. Several ranges in one request (multipart/byteranges) are
//! not served: browsers never ask for them, and answering with the whole
//! file is allowed.

use axum::http::HeaderValue;

use crate::api::error::ApiError;

/// The inclusive byte range to send of a `len`-byte file, or `None` for the
/// whole file (no header, several ranges, or a unit other than bytes).
/// A syntactically valid range that starts past the end is 416.
pub fn parse(header: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(spec) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // The last N bytes.
        let Ok(n) = last.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || len == 0 {
            return Err(ApiError::RangeNotSatisfiable(len));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Ok(None);
        };
        let end = if last.is_empty() {
            len.saturating_sub(1)
        } else {
            match last.parse::<u64>() {
                Ok(e) if e >= start => e.min(len.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if start >= len {
            return Err(ApiError::RangeNotSatisfiable(len));
        }
        (start, end)
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(h: &'static str, len: u64) -> Result<Option<(u64, u64)>, ApiError> {
        parse(Some(&HeaderValue::from_static(h)), len)
    }

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 100).unwrap(), None);
        assert_eq!(p("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(p("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(p("bytes=90-500", 100).unwrap(), Some((90, 99)));
        assert_eq!(p("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(p("bytes=-500", 100).unwrap(), Some((0, 99)));
        // Ignored (whole file): other units, several ranges, nonsense.
        for h in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=abc",
            "bytes=9-3",
            "bytes=x-",
        ] {
            assert_eq!(p(h, 100).unwrap(), None, "{h}");
        }
        for h in ["bytes=100-", "bytes=200-300", "bytes=-0"] {
            assert!(
                matches!(p(h, 100), Err(ApiError::RangeNotSatisfiable(100))),
                "{h}"
            );
        }
    }
}
