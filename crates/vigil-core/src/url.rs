//! The one URL masker: camera, webhook, MQTT and NATS URLs all go through
//! [`mask_url`] before they reach a log line, an error or an API response.

/// Hides credentials in a URL so it can be logged or put in an error message.
///
/// Camera URLs routinely embed `user:password@`; these strings end up in logs,
/// metrics labels and API responses, so every message this crate produces goes
/// through here (webhook URLs too: their query often carries the receiver's
/// token). Userinfo becomes `***` and so does every query value: a list
/// of secret-looking keys always misses one (`auth_token`, `client_secret`,
/// `X-Amz-Credential`, …), so keys stay readable and no value is shown. Plain
/// paths are returned unchanged. When in doubt (for example an unescaped `/` inside a password) it
/// masks more rather than less.
///
/// ```
/// use vigil_core::mask_url;
/// assert_eq!(mask_url("rtsp://admin:s3cret@10.0.0.5:554/live"), "rtsp://***@10.0.0.5:554/live");
/// assert_eq!(mask_url("/videos/a.mp4"), "/videos/a.mp4");
/// ```
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = (&url[..scheme_end + 3], &url[scheme_end + 3..]);

    // Split off query/fragment first so an '@' there is never taken for userinfo.
    let qpos = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(qpos);

    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let authority = &before_query[..authority_end];
    let masked_main = if let Some(at) = authority.rfind('@') {
        format!("***@{}", &before_query[at + 1..])
    } else if looks_like_broken_userinfo(authority) {
        // `user:pa/ss@host/...`: the password contains a raw '/', so the real
        // authority ends at the last '@'. Masking up to it can over-mask a path
        // that itself contains '@', which is the safe direction to err in.
        match before_query.rfind('@') {
            Some(at) => format!("***@{}", &before_query[at + 1..]),
            None => before_query.to_owned(),
        }
    } else {
        before_query.to_owned()
    };

    format!("{scheme}{masked_main}{}", mask_query(query))
}

/// True when an authority without '@' has a non-numeric "port", i.e. it is more
/// likely `user:passw` cut short by a '/' in the password than `host:554`.
fn looks_like_broken_userinfo(authority: &str) -> bool {
    if authority.starts_with('[') {
        return false; // IPv6 literal: colons are part of the address.
    }
    match authority.rsplit_once(':') {
        Some((_, port)) => !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn mask_query(query: &str) -> String {
    let Some(body) = query.strip_prefix('?') else {
        return query.to_owned();
    };
    let (params, fragment) = match body.find('#') {
        Some(i) => body.split_at(i),
        None => (body, ""),
    };
    let masked: Vec<String> = params
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) => format!("{k}=***"),
            // A bare value (`?s3cret`) may be a secret too.
            None if !kv.is_empty() => "***".to_owned(),
            None => String::new(),
        })
        .collect();
    format!("?{}{fragment}", masked.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_userinfo() {
        assert_eq!(
            mask_url("rtsp://user:pass@host/stream"),
            "rtsp://***@host/stream"
        );
        assert_eq!(
            mask_url("rtsp://admin:p@ss@192.168.1.2:554/h264"),
            "rtsp://***@192.168.1.2:554/h264"
        );
        assert_eq!(mask_url("rtsp://user@host"), "rtsp://***@host");
        assert_eq!(
            mask_url("rtsp://user:pa/ss@host:554/live"),
            "rtsp://***@host:554/live"
        );
    }

    #[test]
    fn leaves_plain_urls_and_paths_alone() {
        assert_eq!(mask_url("rtsp://host:554/a@b"), "rtsp://host:554/a@b");
        assert_eq!(mask_url("rtsp://[::1]:8554/test"), "rtsp://[::1]:8554/test");
        assert_eq!(mask_url("data/video/vtest.avi"), "data/video/vtest.avi");
        assert_eq!(mask_url(""), "");
    }

    #[test]
    fn masks_secret_query_values() {
        assert_eq!(
            mask_url("https://cam/x.m3u8?user=bob&Password=hunter2&ch=1#frag"),
            "https://cam/x.m3u8?user=***&Password=***&ch=***#frag"
        );
        for key in [
            "auth_token",
            "client_secret",
            "api-key",
            "access_key",
            "X-Amz-Signature",
        ] {
            let masked = mask_url(&format!("rtsp://cam/live?{key}=s3cret&x"));
            assert_eq!(masked, format!("rtsp://cam/live?{key}=***&***"));
        }
        assert_eq!(mask_url("rtsp://h/s?token=abc@def"), "rtsp://h/s?token=***");
    }

    #[test]
    fn masks_webhook_and_nats_urls_the_same_way() {
        assert_eq!(
            mask_url("https://u:p@hooks.example.com/x/y?token=s#f"),
            "https://***@hooks.example.com/x/y?token=***#f"
        );
        assert_eq!(mask_url("http://h:80"), "http://h:80");
        assert_eq!(mask_url("nats://tok3n@n2:4222"), "nats://***@n2:4222");
    }
}
