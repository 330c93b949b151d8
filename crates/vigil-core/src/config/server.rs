use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[server]`: the HTTP API of `vigil serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind. Loopback by default so a fresh install is not exposed
    /// to the network before a token is set.
    pub listen: String,
    /// When set, every `/v1/*` route needs `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Largest upload (`POST /v1/jobs`, `POST /v1/detect`) in MiB; larger → 413.
    pub max_upload_mb: u64,
    /// Longest any request except a job upload may take (→ 408), so a stuck
    /// client or handler cannot pin a connection forever.
    pub request_timeout_s: u64,
    /// Longest a job upload (`POST /v1/jobs`) may take; uploads are bounded
    /// by size already, this bounds a client that trickles bytes.
    pub upload_timeout_s: u64,
    /// How long a console login (the session cookie `POST /v1/session`
    /// sets) stays valid; the console asks for the token again after it.
    pub session_hours: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            token: None,
            max_upload_mb: 512,
            request_timeout_s: 60,
            upload_timeout_s: 600,
            session_hours: 12.0,
        }
    }
}

impl ServerConfig {
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
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            e.push(InvalidValue::new(
                "server.token",
                "must not be empty (remove the key to disable authentication)",
            ));
        }
        if self.max_upload_mb == 0 || self.max_upload_mb > 1024 * 1024 {
            e.push(InvalidValue::new(
                "server.max_upload_mb",
                format!("must be between 1 and 1048576, got {}", self.max_upload_mb),
            ));
        }
        for (key, v) in [
            ("server.request_timeout_s", self.request_timeout_s),
            ("server.upload_timeout_s", self.upload_timeout_s),
        ] {
            if v == 0 || v > 86_400 {
                e.push(InvalidValue::new(
                    key,
                    format!("must be between 1 and 86400 seconds, got {v}"),
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
}
