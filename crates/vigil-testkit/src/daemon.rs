//! A running daemon (`vigil serve` or `vigil worker`) under test: its
//! process (killed when dropped), HTTP address and log file, and bounded
//! waits on its HTTP API.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::http::{http, HttpResponse};
use crate::{try_wait_until, ChildGuard};

/// How long [`Daemon::wait_ready`] waits for `/readyz` to turn 200: the
/// model loads and warms up in seconds; minutes mean it hangs.
pub const READY_LIMIT: Duration = Duration::from_secs(90);

/// One running daemon with its HTTP address and log file; killed when
/// dropped.
#[derive(Debug)]
pub struct Daemon {
    pub guard: ChildGuard,
    pub addr: String,
    pub log: PathBuf,
}

impl Daemon {
    /// Writes `config` (which must set `server.listen` to `addr`) to
    /// `dir/<name>.toml` and runs `cmd --config dir/<name>.toml` (`cmd` is
    /// the program with its subcommand: `vigil serve`), its stderr going to
    /// `dir/<name>.log`.
    pub fn start(mut cmd: Command, dir: &Path, name: &str, addr: &str, config: &str) -> Daemon {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write the daemon's config");
        let log = dir.join(format!("{name}.log"));
        let child = cmd
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the daemon's log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", crate::describe(&cmd)));
        Daemon {
            guard: ChildGuard::new(child),
            addr: addr.to_string(),
            log,
        }
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request with `headers`; a connection failure fails the test with
    /// the log.
    pub fn req_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http(&self.addr, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nlog:\n{}", self.log()))
    }

    /// One request without extra headers.
    pub fn req(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        self.req_with(method, path, &[], body)
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.req("GET", path, b"")
    }

    /// `GET path`, which must answer 200 with JSON.
    pub fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// Polls `GET path` until it answers 200 with JSON `pred` holds on, and
    /// returns that JSON; fails after `limit` with the last answer and the
    /// log.
    pub fn wait_json(&self, path: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        try_wait_until(limit, || {
            let r = self.get(path);
            if r.status != 200 {
                return None;
            }
            last = r.json();
            pred(&last).then(|| last.clone())
        })
        .unwrap_or_else(|| {
            panic!(
                "{path}: not met within {limit:?}; last: {last}\nlog:\n{}",
                self.log()
            )
        })
    }

    /// Waits (at most `limit`) for the process to exit on its own; fails
    /// with `what` and the log if it is still running.
    pub fn wait_exit(&mut self, limit: Duration, what: &str) -> ExitStatus {
        assert!(
            self.guard.pid() != 0,
            "{what}: the process was already reaped"
        );
        self.guard
            .wait_exit(limit)
            .unwrap_or_else(|| panic!("{what} within {limit:?}:\n{}", self.log()))
    }

    /// Polls `/readyz` until it answers 200 (at most [`READY_LIMIT`]) and
    /// returns its JSON; fails with the log if the process exits first or
    /// the limit passes.
    pub fn wait_ready(&mut self) -> Value {
        let addr = self.addr.clone();
        let guard = &mut self.guard;
        let ready = try_wait_until(READY_LIMIT, || {
            if let Some(status) = guard.exited() {
                return Some(Err(status));
            }
            match http(&addr, "GET", "/readyz", &[], b"") {
                Ok(r) if r.status == 200 => Some(Ok(r.json())),
                _ => None,
            }
        });
        match ready {
            Some(Ok(v)) => v,
            Some(Err(status)) => panic!("the daemon exited early ({status}):\n{}", self.log()),
            None => panic!("not ready within {READY_LIMIT:?}:\n{}", self.log()),
        }
    }
}
