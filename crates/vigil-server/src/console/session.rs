//! The console's session cookie and the same-origin rule for requests that
//! carry it.
//!
//! A browser cannot put a bearer header on `<img>`, `<video>` or a
//! WebSocket, so the console trades the token once (`POST /v1/session`) for
//! a cookie: `vigil_session=<expiry>.<HMAC-SHA256>`, HttpOnly (scripts never
//! see it) and `SameSite=Strict`. The HMAC key is derived from
//! `server.token`, so sessions survive a restart and changing the token
//! ends them all. Because `SameSite` treats every port of a host as the same
//! site, state changes (and live views) made with the cookie must also come
//! from this very origin (`Origin` checked against `Host`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderValue, Method};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "vigil_session";

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks session cookies for one token.
pub struct Sessions {
    key: [u8; 32],
    ttl: Duration,
}

impl Sessions {
    pub fn new(token: &str, ttl: Duration) -> Self {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(token.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"vigil console session key v1");
        Self {
            key: mac.finalize().into_bytes().into(),
            ttl,
        }
    }

    fn sign(&self, expires: u64) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(format!("v1.{expires}").as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// A fresh cookie value and when it expires (Unix seconds).
    pub fn issue(&self, now: SystemTime) -> (String, u64) {
        let expires = unix(now) + self.ttl.as_secs().max(1);
        (format!("{expires}.{}", self.sign(expires)), expires)
    }

    /// True for a value this token signed that has not expired.
    pub fn verify(&self, value: &str, now: SystemTime) -> bool {
        let Some((expires, sig)) = value.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<u64>() else {
            return false;
        };
        if expires <= unix(now) {
            return false;
        }
        bool::from(self.sign(expires).as_bytes().ct_eq(sig.as_bytes()))
    }

    /// `Set-Cookie` for a new session.
    pub fn set_cookie(&self, value: &str) -> HeaderValue {
        let v = format!(
            "{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict",
            self.ttl.as_secs().max(1)
        );
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// `Set-Cookie` that ends the session in the browser.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("vigil_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// The session cookie's value, if the request has one.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Methods that change state, plus WebSocket handshakes (a GET, but a page
/// on another origin could otherwise watch the cameras with the cookie).
pub fn needs_same_origin(method: &Method, headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    upgrade || !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// True when the request demonstrably comes from a page of this origin:
/// `Origin`'s host and port equal `Host`; without `Origin`, only a
/// `Sec-Fetch-Site: same-origin` from the browser counts.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin"),
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookies_verify_until_they_expire_and_only_for_their_token() {
        let s = Sessions::new("secret", Duration::from_secs(3600));
        let now = SystemTime::now();
        let (value, expires) = s.issue(now);
        assert!(s.verify(&value, now));
        assert!(!s.verify(&value, UNIX_EPOCH + Duration::from_secs(expires)));
        assert!(!Sessions::new("other", Duration::from_secs(3600)).verify(&value, now));
        // A forged expiry breaks the signature.
        let (_, sig) = value.split_once('.').unwrap();
        assert!(!s.verify(&format!("{}.{sig}", expires + 1000), now));
        for bad in ["", ".", "x.y", "123", "99999999999.abc"] {
            assert!(!s.verify(bad, now), "{bad:?}");
        }
    }

    #[test]
    fn cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; vigil_session=42.ab; b=2")]);
        assert_eq!(cookie(&h), Some("42.ab"));
        assert_eq!(cookie(&headers(&[("cookie", "a=1")])), None);
    }

    #[test]
    fn origin_must_match_host() {
        let ok = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(same_origin(&ok));
        for bad in [
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9999"),
            ]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
            headers(&[("host", "127.0.0.1:8080")]),
            headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")]),
        ] {
            assert!(!same_origin(&bad), "{bad:?}");
        }
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(needs_same_origin(&Method::POST, &HeaderMap::new()));
        assert!(!needs_same_origin(&Method::GET, &HeaderMap::new()));
        assert!(needs_same_origin(
            &Method::GET,
            &headers(&[("upgrade", "websocket")])
        ));
    }
}
