//! Why the daemon or a worker could not start or stopped with an error:
//! what `vigil serve`, `vigil worker` and `vigil config check` report. The
//! HTTP edge has its own error type (`api::error::ApiError`); this one
//! never becomes a status code.

use std::path::PathBuf;

/// A start-up or run failure of `vigil serve` / `vigil worker`, with the
/// setting or path it concerns; the cause is the error's source.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid (the message names the setting).
    #[error("{0}")]
    Config(String),
    /// A stream's zones, lines or tracker overrides are invalid (each
    /// problem names its `streams[<id>]` key).
    #[error(transparent)]
    StreamConfig(#[from] vigil_core::config::InvalidValues),
    /// `[shard]` does not say which replica this is.
    #[error(transparent)]
    Shard(#[from] vigil_core::config::ShardIndexError),
    /// A directory under `storage.dir` cannot be created.
    #[error("{what} {}", path.display())]
    Dir {
        /// The setting or use (`storage.dir`, `event snapshots`).
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `server.listen` cannot be bound.
    #[error("server.listen {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics")]
    Metrics(#[from] prometheus::Error),
    /// The event outbox database cannot be opened.
    #[error("event outbox {}", path.display())]
    Outbox {
        path: PathBuf,
        #[source]
        source: vigil_events::OutboxError,
    },
    /// The local job database or directory cannot be used.
    #[error(transparent)]
    Jobs(#[from] vigil_jobs::JobError),
    /// The stream registry cannot be opened or restored.
    #[error("{}", path.display())]
    Registry {
        path: PathBuf,
        #[source]
        source: crate::streams::RegistryError,
    },
    #[error(transparent)]
    Streams(#[from] crate::streams::StreamError),
    /// The model cannot be loaded or warmed up.
    #[error("{0}")]
    Model(String),
    /// The NATS event stream cannot be set up.
    #[error(transparent)]
    Queue(#[from] vigil_queue::QueueError),
    /// A background task panicked.
    #[error("{what} crashed: {reason}")]
    Crashed { what: &'static str, reason: String },
}

impl ServeError {
    /// The message with every cause, `a: b: c` (as the binary prints it),
    /// for callers that report it as text.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }

    /// A `spawn_blocking`/`spawn` join failure (the task panicked).
    pub(crate) fn crashed(what: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Self {
        move |e| ServeError::Crashed {
            what,
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary prints the chain (`{:#}`): the setting, then the cause.
    #[tokio::test]
    async fn a_busy_listen_address_is_named_with_its_cause() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = vigil_core::config::Config::default();
        cfg.storage.dir = dir.path().join("store");
        cfg.server.listen.clone_from(&addr);
        let err = crate::run(cfg, std::future::pending()).await.unwrap_err();
        assert!(matches!(&err, ServeError::Listen { .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("server.listen {addr}"));
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        let cause = cause.unwrap_or_default();
        assert!(!cause.is_empty());
        assert_eq!(err.chain(), format!("server.listen {addr}: {cause}"));
    }

    #[test]
    fn a_stream_rule_error_is_a_config_error() {
        let mut cfg = vigil_core::config::Config::default();
        let mut s: vigil_core::config::StreamConfig =
            toml::from_str("id = \"cam\"\nurl = \"rtsp://127.0.0.1/x\"\n[[zones]]\nname = \"z\"\npolygon = [[0.0, 0.0], [1.0, 0.0]]\n")
                .unwrap();
        s.id = "cam".into();
        cfg.streams.push(s);
        let err = crate::check_config(&cfg).unwrap_err();
        assert!(
            matches!(&err, ServeError::StreamConfig(_)) && err.to_string().contains("streams[cam]"),
            "{err}"
        );
    }
}
