//! The accept loop: HTTP/1.1 with the timeouts and the connection cap that
//! `axum::serve` does not offer.
//!
//! Without them a client that sends half a request line holds its socket
//! for ever (slowloris); enough of them exhaust the open-file limit, the
//! accept loop fails with "Too many open files" and `/healthz` stops
//! answering, which gets the pod restarted. Here every connection must send
//! its request headers within `server.header_timeout_s` (the same bound
//! closes idle keep-alive connections), and at most `server.max_connections`
//! are open: further clients wait in the kernel's listen backlog, and the
//! daemon's own file descriptors are never exhausted by clients.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// `[server]` settings of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// How long after an `accept` error (out of file descriptors, usually) the
/// loop waits before trying again, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves; then stops
/// accepting, asks open connections to finish their current request, and
/// returns once they have (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    let mut warned_full = false;
    loop {
        // A slot first: at the cap, new connections stay in the backlog.
        let permit = if let Ok(p) = Arc::clone(&slots).try_acquire_owned() {
            p
        } else {
            if !warned_full {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached; new connections wait (server.max_connections)"
                );
                warned_full = true;
            }
            tokio::select! {
                p = Arc::clone(&slots).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            }
        };
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if slots.available_permits() > 0 {
            warned_full = false;
        }
        let _ = stream.set_nodelay(true);
        let svc = app.clone().map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                req
            },
        );
        let conn = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
            .with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => log_conn_end(remote, r),
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    log_conn_end(remote, conn.await);
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task holds a slot; all slots back = all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

fn log_conn_end(remote: SocketAddr, r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        // Timeouts and resets by clients are routine; not worth a warning.
        tracing::debug!(client = %remote, error = %e, "connection closed with an error");
    }
}
