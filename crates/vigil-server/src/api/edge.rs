//! Same-origin rules at the HTTP edge: which `Host` names the daemon answers
//! to, which `Origin` may change state, and which bodies count as JSON.
//!
//! In the default no-token mode any web page the operator opened could
//! otherwise drive the API: a cross-origin `Content-Type: text/plain` POST
//! needs no CORS preflight (CSRF), and a page on a name the attacker
//! re-points at 127.0.0.1 is same-origin to the browser (DNS rebinding).
//! These checks are one middleware so that cookie-authenticated requests
//! (the console's session) get the same rules.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;

use crate::api::error::ApiError;
use crate::state::SharedState;

/// Checks `Host` on every request (when no token is set) and `Origin` on
/// state-changing ones.
///
/// `Host` must be an IP literal (what probes, scrapers and clients that
/// connect by address send; a rebinding page cannot make a browser send
/// one), `localhost`, or one of `server.hostnames` (421 otherwise). An
/// `Origin` on a POST/PUT/PATCH/DELETE must be the origin the request was
/// sent to, i.e. its host and port equal `Host` (403 otherwise, `null`
/// included); `Sec-Fetch-Site: cross-site` is refused the same way.
pub async fn same_origin(
    State(st): State<SharedState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // With a token, a rebinding page gains nothing (it has no token, and a
    // session cookie is bound to the real name); without one, Host is the
    // only thing that tells such a page from the operator.
    if st.cfg.server.token.is_none() {
        check_host(req.headers(), &st.cfg.server.hostnames)?;
    }
    if is_state_changing(req.method()) {
        check_origin(req.headers())?;
    }
    Ok(next.run(req).await)
}

fn is_state_changing(m: &Method) -> bool {
    !matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// `host[:port]` → lower-case host without brackets, and the port.
fn split_host_port(v: &str) -> Option<(String, Option<u16>)> {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((h.to_ascii_lowercase(), port));
    }
    match v.rsplit_once(':') {
        Some((h, p)) => Some((h.to_ascii_lowercase(), Some(p.parse().ok()?))),
        None => Some((v.to_ascii_lowercase(), None)),
    }
}

pub fn check_host(headers: &HeaderMap, hostnames: &[String]) -> Result<(), ApiError> {
    // HTTP/1.0 clients may omit it; browsers never do.
    let Some(raw) = headers.get(header::HOST) else {
        return Ok(());
    };
    let host = raw
        .to_str()
        .ok()
        .and_then(split_host_port)
        .map(|(h, _)| h)
        .ok_or_else(|| ApiError::MisdirectedHost("malformed Host header".into()))?;
    let host = host.trim_end_matches('.');
    if host.parse::<std::net::IpAddr>().is_ok()
        || host == "localhost"
        || hostnames
            .iter()
            .any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(host))
    {
        return Ok(());
    }
    Err(ApiError::MisdirectedHost(format!(
        "this server does not answer to host {host:?}; add it to server.hostnames"
    )))
}

pub fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(ApiError::Forbidden(
            "cross-site requests may not change state".into(),
        ));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser (curl, scripts), or a same-origin GET-like request.
        return Ok(());
    };
    let foreign = || ApiError::Forbidden("cross-origin requests may not change state".into());
    let origin = origin.to_str().map_err(|_| foreign())?;
    let (scheme, authority) = origin.split_once("://").ok_or_else(foreign)?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(foreign()),
    };
    let (oh, op) = split_host_port(authority).ok_or_else(foreign)?;
    let (hh, hp) = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(split_host_port)
        .ok_or_else(foreign)?;
    if oh == hh && op.unwrap_or(default_port) == hp.unwrap_or(default_port) {
        Ok(())
    } else {
        Err(foreign())
    }
}

/// A JSON route's body must say it is JSON (`application/json`, or one of
/// `accepted`): a form or `text/plain` body is what a cross-site page can
/// send without a preflight, so it is refused with 415 before it is read.
pub fn require_content_type(headers: &HeaderMap, accepted: &[&str]) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match ct {
        Some(ct) if accepted.contains(&ct.as_str()) => Ok(()),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body must be {} (got {})",
            accepted.join(" or "),
            other.map_or_else(|| "no Content-Type".to_string(), |c| format!("{c:?}"))
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hosts_are_ip_literals_localhost_or_configured() {
        let names = vec!["vigil.lan".to_string()];
        for ok in [
            "127.0.0.1:8080",
            "10.1.2.3",
            "[::1]:8080",
            "localhost:8080",
            "VIGIL.lan:80",
            "vigil.lan.",
        ] {
            assert!(
                check_host(&headers(&[("host", ok)]), &names).is_ok(),
                "{ok}"
            );
        }
        assert!(check_host(&HeaderMap::new(), &names).is_ok());
        for bad in [
            "evil.example:8080",
            "127.0.0.1.nip.io",
            "localhost.evil.com",
            "a:b:c",
        ] {
            let e = check_host(&headers(&[("host", bad)]), &names).expect_err(bad);
            assert_eq!(e.status().as_u16(), 421, "{bad}");
        }
    }

    #[test]
    fn only_the_same_origin_may_change_state() {
        let same = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(check_origin(&same).is_ok());
        let https = headers(&[("host", "vigil.lan"), ("origin", "https://vigil.lan")]);
        assert!(check_origin(&https).is_ok());
        assert!(check_origin(&headers(&[("host", "127.0.0.1:8080")])).is_ok());
        for bad in [
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9999"),
            ]),
            headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
            headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]),
            headers(&[("origin", "http://127.0.0.1:8080")]),
        ] {
            assert_eq!(
                check_origin(&bad).expect_err("foreign").status().as_u16(),
                403
            );
        }
    }

    #[test]
    fn json_routes_need_json() {
        let json = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert!(require_content_type(&json, &["application/json"]).is_ok());
        for bad in [
            headers(&[("content-type", "text/plain")]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
            HeaderMap::new(),
        ] {
            let e = require_content_type(&bad, &["application/json"]).expect_err("not json");
            assert_eq!(e.status().as_u16(), 415);
        }
    }
}
