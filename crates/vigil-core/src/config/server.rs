use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Destinations an API client may never point a stream at unless the
/// operator lists them again: the host itself (loopback), link-local (incl.
/// the cloud metadata address 169.254.169.254), multicast, broadcast and the
/// unspecified address. Private ranges (RFC 1918, ULA) are where cameras live,
/// so they stay allowed unless `stream_allow` narrows them.
pub const DEFAULT_STREAM_DENY: &[&str] = &[
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "224.0.0.0/4",
    "ff00::/8",
    "255.255.255.255/32",
    "0.0.0.0/8",
    "::/128",
];

/// Schemes an API client may use for a stream by default (cameras speak RTSP).
pub const DEFAULT_STREAM_SCHEMES: &[&str] = &["rtsp", "rtsps"];

/// Schemes that can be allowed in `stream_schemes`: each has a protocol
/// whitelist for FFmpeg that fits it (see `vigil-video`).
pub const KNOWN_STREAM_SCHEMES: &[&str] = &["rtsp", "rtsps", "http", "https"];

/// `[server]`: the HTTP API of `vigil serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind. Loopback by default so a fresh install is not exposed
    /// to the network before a token is set.
    pub listen: String,
    /// When set, every `/v1/*` route needs `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Listening beyond loopback without a token is refused at start unless
    /// this is true (an explicit, logged choice for a trusted network).
    pub allow_unauthenticated: bool,
    /// Host names (besides the listen address, `localhost` and loopback
    /// addresses) accepted in the `Host` header; anything else gets 421, so
    /// a DNS-rebinding page cannot reach the API through a name it controls.
    pub hostnames: Vec<String>,
    /// Largest job upload (`POST /v1/jobs`) in MiB; larger → 413.
    pub max_upload_mb: u64,
    /// Largest `POST /v1/detect` image in MiB; larger → 413. Small, because
    /// the image is held in memory while it is decoded.
    pub detect_max_mb: u64,
    /// `POST /v1/detect` requests decoded and detected at once; more → 429.
    pub detect_concurrency: usize,
    /// Images (`/v1/detect`) and video frames (streams, jobs) with more pixels
    /// than this are refused before they are decoded in full (8K UHD = 33.2 M).
    pub max_pixels: u64,
    /// Bytes of decoded frames (MiB) one stream's ring may hold: its
    /// `ring_capacity` is shortened to fit (frames of a camera not yet heard
    /// from count as `max_pixels`), so rings stay bounded in bytes.
    pub ring_budget_mb: u64,
    /// Longest any request except a job upload may take (→ 408), so a stuck
    /// client or handler cannot pin a connection forever.
    pub request_timeout_s: u64,
    /// Longest a job upload (`POST /v1/jobs`) may take; uploads are bounded
    /// by size already, this bounds a client that trickles bytes.
    pub upload_timeout_s: u64,
    /// How long a console login (the session cookie `POST /v1/session`
    /// sets) stays valid; the console asks for the token again after it.
    pub session_hours: f64,
    /// A client has this long to send a request's headers, and an idle
    /// keep-alive connection is closed after it (slowloris defence).
    pub header_timeout_s: u64,
    /// An upload that sends no byte for this long is cut off with 408; after
    /// this long it must also keep up `min_upload_kib_s` on average.
    pub body_idle_timeout_s: u64,
    /// Slowest average upload rate accepted once `body_idle_timeout_s` has
    /// passed, in KiB/s; 0 = no minimum.
    pub min_upload_kib_s: u64,
    /// Open connections at most; further ones wait in the kernel's backlog
    /// until one closes, so file descriptors are never exhausted.
    pub max_connections: usize,
    /// Job uploads one client address may have in flight at once; more → 429.
    pub max_uploads_per_client: usize,
    /// Streams at most (config and API together); more → 409 from the API.
    pub max_streams: usize,
    /// Schemes an API client may use in `POST /v1/streams`: `rtsp`, `rtsps`,
    /// and by opt-in `http`/`https` (MJPEG cameras). Config-file streams are
    /// the operator's own and are not restricted.
    pub stream_schemes: Vec<String>,
    /// CIDRs (or single addresses) a stream from the API may never connect
    /// to, checked after DNS resolution. Default: [`DEFAULT_STREAM_DENY`].
    pub stream_deny: Vec<String>,
    /// When not empty, API streams may connect only to these CIDRs.
    pub stream_allow: Vec<String>,
    /// Directory under which API clients may name local video files as
    /// stream URLs (canonicalised, no escaping by `..` or symlinks); unset =
    /// no local paths from the API at all.
    pub media_root: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            token: None,
            allow_unauthenticated: false,
            hostnames: Vec::new(),
            max_upload_mb: 512,
            detect_max_mb: 20,
            detect_concurrency: 8,
            max_pixels: 7680 * 4320,
            ring_budget_mb: 1024,
            request_timeout_s: 60,
            upload_timeout_s: 600,
            session_hours: 12.0,
            header_timeout_s: 10,
            body_idle_timeout_s: 30,
            min_upload_kib_s: 4,
            max_connections: 512,
            max_uploads_per_client: 4,
            max_streams: 64,
            stream_schemes: DEFAULT_STREAM_SCHEMES
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            stream_deny: DEFAULT_STREAM_DENY
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            stream_allow: Vec::new(),
            media_root: None,
        }
    }
}

/// Why a `server.stream_deny` / `server.stream_allow` entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IP address or CIDR")]
    NotAnAddress(String),
    #[error("{text:?}: prefix length must be 0-{max}")]
    PrefixLength { text: String, max: u8 },
}

/// Parses `a.b.c.d/n`, `x::y/n` or a bare address (a single-host network).
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), CidrError> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| CidrError::NotAnAddress(s.to_string()))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len =
        match len {
            Some(l) => l.parse::<u8>().ok().filter(|n| *n <= max).ok_or_else(|| {
                CidrError::PrefixLength {
                    text: s.to_string(),
                    max,
                }
            })?,
            None => max,
        };
    Ok((ip, len))
}

impl ServerConfig {
    /// True when `listen` is a loopback address (only this machine can
    /// connect), the one case where running without a token is the default.
    pub fn listens_on_loopback(&self) -> bool {
        self.listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback())
    }

    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            e.push(InvalidValue::new(
                "server.listen",
                format!(
                    "must be IP:PORT (e.g. 127.0.0.1:8080), got {:?}",
                    self.listen
                ),
            ));
        } else if self.token.is_none() && !self.listens_on_loopback() && !self.allow_unauthenticated
        {
            e.push(InvalidValue::new(
                "server.listen",
                format!(
                    "{} is reachable from other machines but server.token is not set; set a \
                     token, or server.allow_unauthenticated = true to run open on purpose",
                    self.listen
                ),
            ));
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            e.push(InvalidValue::new(
                "server.token",
                "must not be empty (remove the key to disable authentication)",
            ));
        }
        for (key, v, lo, hi) in [
            ("server.max_upload_mb", self.max_upload_mb, 1, 1024 * 1024),
            ("server.detect_max_mb", self.detect_max_mb, 1, 1024),
            (
                "server.request_timeout_s",
                self.request_timeout_s,
                1,
                86_400,
            ),
            ("server.upload_timeout_s", self.upload_timeout_s, 1, 86_400),
            ("server.header_timeout_s", self.header_timeout_s, 1, 3_600),
            (
                "server.body_idle_timeout_s",
                self.body_idle_timeout_s,
                1,
                3_600,
            ),
            ("server.min_upload_kib_s", self.min_upload_kib_s, 0, 1 << 20),
            ("server.max_pixels", self.max_pixels, 1, 1 << 30),
            ("server.ring_budget_mb", self.ring_budget_mb, 1, 1 << 20),
            (
                "server.detect_concurrency",
                self.detect_concurrency as u64,
                1,
                1024,
            ),
            (
                "server.max_connections",
                self.max_connections as u64,
                1,
                1 << 20,
            ),
            (
                "server.max_uploads_per_client",
                self.max_uploads_per_client as u64,
                1,
                4096,
            ),
            ("server.max_streams", self.max_streams as u64, 1, 4096),
        ] {
            if v < lo || v > hi {
                e.push(InvalidValue::new(
                    key,
                    format!("must be between {lo} and {hi}, got {v}"),
                ));
            }
        }
        for h in &self.hostnames {
            if h.is_empty()
                || h.len() > 253
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
            {
                e.push(InvalidValue::new(
                    "server.hostnames",
                    format!("{h:?} is not a host name (no scheme, port or path)"),
                ));
            }
        }
        for s in &self.stream_schemes {
            if !KNOWN_STREAM_SCHEMES.contains(&s.as_str()) {
                e.push(InvalidValue::new(
                    "server.stream_schemes",
                    format!(
                        "{s:?} is not one of {} (lower case)",
                        KNOWN_STREAM_SCHEMES.join(", ")
                    ),
                ));
            }
        }
        for (key, list) in [
            ("server.stream_deny", &self.stream_deny),
            ("server.stream_allow", &self.stream_allow),
        ] {
            for c in list {
                if let Err(reason) = parse_cidr(c) {
                    e.push(InvalidValue::new(key, reason.to_string()));
                }
            }
        }
        if let Some(root) = &self.media_root {
            if !root.is_absolute() {
                e.push(InvalidValue::new(
                    "server.media_root",
                    format!("must be an absolute path, got {}", root.display()),
                ));
            }
        }
        if !(self.session_hours > 0.0 && self.session_hours <= 24.0 * 366.0) {
            e.push(InvalidValue::new(
                "server.session_hours",
                format!(
                    "must be above 0 and at most 8784 (a year), got {}",
                    self.session_hours
                ),
            ));
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hours_must_be_positive_and_bounded() {
        assert!(ServerConfig::default().validate().is_empty());
        for bad in [0.0, -1.0, f64::NAN, 1e9] {
            let cfg = ServerConfig {
                session_hours: bad,
                ..ServerConfig::default()
            };
            let e = cfg.validate();
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            assert!(
                e[0].to_string().contains("server.session_hours"),
                "{}",
                e[0]
            );
        }
    }

    #[test]
    fn cidrs_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_cidr("10.0.0.0/8"),
            Ok(("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(parse_cidr("::1"), Ok(("::1".parse().unwrap(), 128)));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("camera.lan").is_err());
        for c in DEFAULT_STREAM_DENY {
            assert!(parse_cidr(c).is_ok(), "{c}");
        }
    }

    /// The typed errors of the config checks other crates call read as the
    /// plain messages they replaced, word for word.
    #[test]
    fn typed_check_errors_keep_their_messages() {
        let text = |e: &dyn std::error::Error| e.to_string();
        assert_eq!(
            text(&parse_cidr("camera.lan").unwrap_err()),
            "\"camera.lan\" is not an IP address or CIDR"
        );
        assert_eq!(
            text(&parse_cidr("10.0.0.0/33").unwrap_err()),
            "\"10.0.0.0/33\": prefix length must be 0-32"
        );
        assert_eq!(
            text(&crate::config::check_stream_id("").unwrap_err()),
            "must not be empty"
        );
        assert_eq!(
            text(&crate::config::check_stream_id("a b").unwrap_err()),
            "must be 1-64 characters of A-Z a-z 0-9 _ . - (it appears in URLs and metric labels), got \"a b\""
        );
        let shard = crate::config::ShardConfig {
            count: 3,
            index: None,
        };
        assert_eq!(
            text(&shard.resolve_index(None).unwrap_err()),
            "shard.count = 3 but shard.index is unset and HOSTNAME is not set; \
             set shard.index (VIGIL_SHARD_INDEX) or run as a StatefulSet pod"
        );
        assert_eq!(
            text(&shard.resolve_index(Some("vigil-streams")).unwrap_err()),
            "shard.index is unset and HOSTNAME \"vigil-streams\" does not end in -<ordinal>; \
             set shard.index (VIGIL_SHARD_INDEX)"
        );
        assert_eq!(
            text(&shard.resolve_index(Some("vigil-5")).unwrap_err()),
            "HOSTNAME \"vigil-5\" is replica 5 but shard.count is 3"
        );
    }

    #[test]
    fn open_listen_needs_a_token_or_an_explicit_opt_out() {
        let mut c = ServerConfig {
            listen: "0.0.0.0:8080".into(),
            ..ServerConfig::default()
        };
        let e = c.validate();
        assert!(
            e.iter()
                .any(|e| e.key == "server.listen" && e.reason.contains("token")),
            "{e:?}"
        );
        c.allow_unauthenticated = true;
        assert!(c.validate().is_empty());
        c.allow_unauthenticated = false;
        c.token = Some("t".into());
        assert!(c.validate().is_empty());
        assert!(ServerConfig::default().validate().is_empty());
        let c = ServerConfig {
            listen: "[::1]:8080".into(),
            ..ServerConfig::default()
        };
        assert!(c.validate().is_empty());
    }

    #[test]
    fn numbers_and_lists_are_bounded() {
        let c = ServerConfig {
            max_connections: 0,
            detect_max_mb: 5000,
            stream_schemes: vec!["tcp".into()],
            stream_deny: vec!["nope".into()],
            media_root: Some("relative".into()),
            hostnames: vec!["http://x/".into()],
            ..ServerConfig::default()
        };
        let keys: Vec<String> = c.validate().into_iter().map(|e| e.key).collect();
        for k in [
            "server.max_connections",
            "server.detect_max_mb",
            "server.stream_schemes",
            "server.stream_deny",
            "server.media_root",
            "server.hostnames",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
        }
    }
}
