//! A real HTTP webhook receiver on 127.0.0.1: every request to it is
//! recorded (headers, body, arrival time) and answered as a reply policy
//! says, on a thread of its own, so sync and async tests both use it.
//! Stopped and joined when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the receiver answers request number `n` (0-based): a status code
/// and extra response headers (`Retry-After`).
pub type Reply = Arc<dyn Fn(usize) -> (u16, Vec<(String, String)>) + Send + Sync>;

/// Answers every request with `status` and no extra headers.
pub fn reply_status(status: u16) -> Reply {
    Arc::new(move |_| (status, Vec::new()))
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hook {
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Hook {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Answered with a 2xx.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The receiver; its URL is `http://<addr>/hook` (any path is accepted).
pub struct WebhookReceiver {
    pub addr: SocketAddr,
    hooks: Arc<Mutex<Vec<Hook>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Listens on `addr` (`127.0.0.1:0` for a free port; a fixed port to
    /// bring a receiver up where a daemon already sends) and answers as
    /// `reply` says.
    pub fn start(addr: SocketAddr, reply: Reply) -> WebhookReceiver {
        let listener = TcpListener::bind(addr).expect("bind the webhook receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hooks.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Accept until dropped; the short sleep is this server's idle
            // poll (it must notice `stop`), not a synchronisation.
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => serve(conn, &h, &reply),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        WebhookReceiver {
            addr,
            hooks,
            stop,
            thread: Some(thread),
        }
    }

    /// On a free port, answering 200 to everything.
    pub fn ok() -> WebhookReceiver {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0)), reply_status(200))
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().expect("the receiver's log").clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request from `conn`, records it and answers it.
fn serve(conn: TcpStream, hooks: &Mutex<Vec<Hook>>, reply: &Reply) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut r = BufReader::new(conn);
    let mut headers = HashMap::new();
    let mut line = String::new();
    // The request line, then headers up to the blank line.
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) <= 2 {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let at = Instant::now();
    let (status, extra) = {
        let mut hooks = hooks.lock().expect("the receiver's log");
        let (status, extra) = reply(hooks.len());
        hooks.push(Hook {
            headers,
            body,
            at,
            status,
        });
        (status, extra)
    };
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut conn = r.into_inner();
    let _ = conn.write_all(head.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::http;

    #[test]
    fn records_requests_and_answers_by_policy() {
        let rx = WebhookReceiver::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Arc::new(|n| {
                if n == 0 {
                    (429, vec![("Retry-After".into(), "1".into())])
                } else {
                    (204, Vec::new())
                }
            }),
        );
        let addr = rx.addr.to_string();
        let r = http(&addr, "POST", "/hook", &[("X-Id", "a")], b"{}").unwrap();
        assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
        let r = http(&addr, "POST", "/hook", &[], b"xyz").unwrap();
        assert_eq!(r.status, 204);
        let hooks = rx.hooks();
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].header("x-id"), Some("a"));
        assert!(!hooks[0].accepted() && hooks[1].accepted());
        assert_eq!(hooks[1].body, b"xyz");
    }
}
