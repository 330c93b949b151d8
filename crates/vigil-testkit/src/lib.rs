//! One test kit for every vigil test target (the workspace's `tests/` and each
//! crate's `tests/`): waits that fail with a message at a deadline instead of
//! hanging, child processes that are killed when they overrun or when the test
//! fails, and thread joins with a limit; on top of those the daemon handle
//! ([`Daemon`], with its HTTP client [`http`]), the clip makers ([`ffmpeg`],
//! [`sample_clip`], [`sample_h264`], [`lavfi_clip`], [`probe_video`]) and the real servers
//! tests talk to ([`Mosquitto`], [`NatsServer`], [`WebhookReceiver`]).
//!
//! Why a crate: the same helpers were copied into five test folders, and the
//! copies drifted (three ran `ffmpeg` without a time limit). A dev-dependency
//! is the one place every test target can share.
//!
//! The rules these helpers enforce:
//! - every wait has a deadline and names what it waited for when it fails;
//! - a sleep is only ever a poll interval inside [`wait_until`], never the
//!   synchronisation itself;
//! - every child process runs under a wall-clock limit and is killed (and
//!   reaped) on overrun or when its guard is dropped.
//!
//! The per-test bound for the whole suite is nextest's `slow-timeout`
//! (`.config/nextest.toml`); these helpers make the failure say *what* hung.
//!
//! Test-only code: a setup that cannot be done (no temp dir, no port) is a
//! test failure, so `expect` is the right answer here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon;
mod http;
mod media;
mod services;
mod webhook;

pub use daemon::{Daemon, READY_LIMIT};
pub use http::{http, record_request_heads, HttpResponse};
pub use media::{
    data, ffmpeg, ffmpeg_bounded, lavfi_clip, probe_video, repo_root, sample_clip, sample_h264,
    vtest, VideoProbe, FFMPEG_LIMIT,
};
pub use services::{Mosquitto, NatsServer, RtspServer};
pub use webhook::{reply_status, Hook, Reply, WebhookReceiver};

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often [`wait_until`] re-checks its condition at first; the interval
/// doubles up to [`MAX_POLL`] so a long wait does not spin.
const FIRST_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_millis(200);

/// Polls `cond` until it returns `Some`, and returns that value; panics with
/// `what` (and how long it waited) once `limit` has passed.
///
/// `what` should read as the condition: "the job reaches done".
pub fn wait_until<T>(what: &str, limit: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    match try_wait_until(limit, &mut cond) {
        Some(v) => v,
        None => panic!("timed out after {limit:?} waiting until {what}"),
    }
}

/// [`wait_until`] for a condition that is a plain `bool`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    wait_until(what, limit, || cond().then_some(()));
}

/// Like [`wait_until`] but returns `None` at the deadline, for callers that
/// want to add context (a log file) to the failure.
pub fn try_wait_until<T>(limit: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    let mut poll = FIRST_POLL;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(poll.min(deadline - now));
        poll = (poll * 2).min(MAX_POLL);
    }
}

/// Async twin of [`wait_until`] for tokio tests (feature `tokio`): polls
/// the future `cond()` makes until it yields `Some`, sleeping with tokio's
/// timer between polls so the runtime keeps running the code under test.
#[cfg(feature = "tokio")]
pub async fn wait_until_async<T, F, Fut>(what: &str, limit: Duration, cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match try_wait_until_async(limit, cond).await {
        Some(v) => v,
        None => panic!("timed out after {limit:?} waiting until {what}"),
    }
}

/// Async twin of [`try_wait_until`] (feature `tokio`): `None` at the
/// deadline.
#[cfg(feature = "tokio")]
pub async fn try_wait_until_async<T, F, Fut>(limit: Duration, mut cond: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    let mut poll = FIRST_POLL;
    loop {
        if let Some(v) = cond().await {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(poll.min(deadline - now)).await;
        poll = (poll * 2).min(MAX_POLL);
    }
}

/// Whether the plain condition `cond` held before `limit` passed (feature
/// `tokio`), for callers that assert with their own message.
#[cfg(feature = "tokio")]
pub async fn try_wait_for_async(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    try_wait_until_async(limit, || std::future::ready(cond().then_some(())))
        .await
        .is_some()
}

/// Joins `handle`, panicking if the thread has not finished within `limit`
/// (the thread is then left behind; the test process ends with the failure)
/// or if it panicked.
pub fn join_bounded<T>(handle: JoinHandle<T>, limit: Duration, what: &str) -> T {
    wait_for(&format!("{what} finishes"), limit, || handle.is_finished());
    match handle.join() {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// The outcome of a process run to completion by [`run_bounded`].
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Panics with the command's stderr unless it exited 0.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n{}",
            self.status,
            self.stderr
        );
        self
    }
}

/// `program arg arg ...`, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with no stdin and its output captured in files
/// (so no pipe can fill up and block it); kills it and panics with its
/// stderr if it runs past `limit`. A process that cannot be spawned (a
/// missing tool) fails the test naming the command.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Finished {
    let logs = tempfile::tempdir().expect("a temporary directory for the logs");
    let what = describe(&cmd);
    let out_path = logs.path().join("stdout");
    let err_path = logs.path().join("stderr");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout log"))
        .stderr(File::create(&err_path).expect("stderr log"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (is it installed? `make setup`)"));
    let mut guard = ChildGuard::new(child);
    let status = guard.wait_exit(limit).unwrap_or_else(|| {
        guard.kill();
        panic!(
            "{what} did not finish within {limit:?}; stderr:\n{}",
            fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    Finished {
        status,
        stdout: String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned(),
    }
}

/// Kills (SIGKILL) and reaps a child process when dropped, so a failing test
/// never leaves a daemon or server behind.
#[derive(Debug)]
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// The process id, 0 once reaped.
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Whether the process has exited (it is reaped then).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.0.as_mut()?.try_wait().ok()??;
        self.0 = None;
        Some(status)
    }

    /// Waits at most `limit` for the process to exit on its own; `None` if
    /// it is still running (it is left running: kill it or drop the guard).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.0.as_ref()?;
        try_wait_until(limit, || {
            let c = self.0.as_mut()?;
            match c.try_wait() {
                Ok(Some(s)) => Some(s),
                Ok(None) => None,
                // Not our child any more: nothing left to wait for.
                Err(e) => panic!("waiting for pid {}: {e}", c.id()),
            }
        })
        .inspect(|_| self.0 = None)
    }

    /// Sends `signal` (a `kill -s` name: TERM, INT, HUP) to the process.
    pub fn signal(&self, signal: &str) {
        if let Some(c) = &self.0 {
            let pid = c.id().to_string();
            let _ = Command::new("kill")
                .args(["-s", signal, &pid])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Sends SIGTERM and waits up to `limit`; returns the exit status and how
    /// long the exit took, or `None` if it was still running (it is then
    /// killed).
    pub fn terminate(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        self.0.as_ref()?;
        let start = Instant::now();
        self.signal("TERM");
        match self.wait_exit(limit) {
            Some(s) => Some((s, start.elapsed())),
            None => {
                self.kill();
                None
            }
        }
    }

    /// SIGKILL and reap; nothing if already reaped.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (bound and
/// released; a test binds it again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// Whether a file exists and is not empty, for waits on output files.
pub fn non_empty(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_the_value_once_the_condition_holds() {
        let mut n = 0;
        let v = wait_until("the counter reaches 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(v, 3);
    }

    #[test]
    #[should_panic(expected = "timed out after 50ms waiting until never")]
    fn wait_until_fails_at_the_deadline_naming_the_condition() {
        wait_for("never", Duration::from_millis(50), || false);
    }

    #[test]
    fn run_bounded_kills_an_overrunning_process() {
        let started = Instant::now();
        let r = std::panic::catch_unwind(|| {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            run_bounded(cmd, Duration::from_millis(300))
        });
        let msg = r.expect_err("must fail");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("did not finish within 300ms"), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(20), "not killed");
    }

    #[test]
    fn run_bounded_captures_output_and_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let r = run_bounded(cmd, Duration::from_secs(30));
        assert_eq!(r.status.code(), Some(3));
        assert_eq!(r.stdout, "out\n");
        assert_eq!(r.stderr, "err\n");
    }

    #[test]
    fn join_bounded_returns_the_threads_value() {
        let h = std::thread::spawn(|| 7);
        assert_eq!(join_bounded(h, Duration::from_secs(10), "the thread"), 7);
    }

    #[test]
    #[should_panic(expected = "waiting until a stuck thread finishes")]
    fn join_bounded_fails_on_a_stuck_thread() {
        let (_tx, rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        join_bounded(h, Duration::from_millis(100), "a stuck thread");
    }
}
