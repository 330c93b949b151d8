//! Real servers the tests talk to, each on a free 127.0.0.1 port, waited for
//! (bounded) until it accepts connections and killed when dropped:
//! `mosquitto` (MQTT) and `nats-server` with JetStream. Both are Debian
//! packages `make setup` installs; a missing binary fails the test naming
//! the package, as a test that needs the server must not pass without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{free_port, try_wait_until, ChildGuard};

/// How long a server may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(10);

/// The first of `candidates` that exists, else the bare name (found on PATH).
fn which(name: &str, candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Spawns `cmd` and waits until 127.0.0.1:`port` accepts a connection;
/// fails if the process exits first or the limit passes.
fn spawn_listening(mut cmd: Command, what: &str, package: &str, port: u16) -> ChildGuard {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {what} ({e}): run `make setup` (Debian package {package})")
        });
    let mut guard = ChildGuard::new(child);
    let up = try_wait_until(START_LIMIT, || {
        if let Some(status) = guard.exited() {
            panic!("{what} exited at start ({status})");
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(
        up.is_some(),
        "{what} did not listen on port {port} within {START_LIMIT:?}"
    );
    guard
}

/// A `mosquitto` MQTT broker (anonymous, no persistence) on 127.0.0.1.
#[derive(Debug)]
pub struct Mosquitto {
    pub guard: ChildGuard,
    pub port: u16,
}

impl Mosquitto {
    /// On a free port; its config file goes to `dir`.
    pub fn start(dir: &Path) -> Mosquitto {
        Self::start_on(dir, free_port())
    }

    /// On `port` (e.g. one a daemon was already told to connect to).
    pub fn start_on(dir: &Path, port: u16) -> Mosquitto {
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("write mosquitto.conf");
        let exe = which(
            "mosquitto",
            &[
                "/usr/sbin/mosquitto",
                "/usr/bin/mosquitto",
                "/usr/local/sbin/mosquitto",
            ],
        );
        let mut cmd = Command::new(exe);
        cmd.arg("-c").arg(&conf);
        let guard = spawn_listening(cmd, "mosquitto", "mosquitto", port);
        Mosquitto { guard, port }
    }
}

/// A `nats-server` with JetStream (its store in a temporary directory).
#[derive(Debug)]
pub struct NatsServer {
    pub guard: ChildGuard,
    /// `nats://127.0.0.1:<port>`
    pub url: String,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// On a free port.
    pub fn start() -> NatsServer {
        Self::start_on(free_port())
    }

    /// On `port` (e.g. one a daemon was already told to connect to).
    pub fn start_on(port: u16) -> NatsServer {
        let dir = tempfile::tempdir().expect("a temporary directory for JetStream");
        let exe = which(
            "nats-server",
            &["/usr/sbin/nats-server", "/usr/bin/nats-server"],
        );
        let mut cmd = Command::new(exe);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path());
        let guard = spawn_listening(cmd, "nats-server", "nats-server", port);
        NatsServer {
            guard,
            url: format!("nats://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

/// How long the RTSP test server may take to print `ready`.
const RTSP_READY_LIMIT: Duration = Duration::from_secs(20);

/// The GStreamer RTSP test server (`tests/rtsp_server.py`, Debian's
/// python3 with GStreamer's RTSP server bindings), serving the sample clip
/// (or `--file`) at `rtsp://127.0.0.1:<port><mount>`.
#[derive(Debug)]
pub struct RtspServer {
    pub guard: ChildGuard,
    pub port: u16,
    pub mount: String,
}

impl RtspServer {
    /// On a free port at `/test`, with the script's extra arguments `extra`
    /// (`--tcp-only`, `--file PATH`); tries three ports in case one was
    /// taken between choosing and binding it.
    pub fn start(extra: &[&str]) -> RtspServer {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(free_port(), "/test", extra) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("the RTSP test server did not start: {last}");
    }

    /// On `port` at `mount` (e.g. a restart where a client already points).
    pub fn start_on(port: u16, mount: &str, extra: &[&str]) -> RtspServer {
        Self::try_start(port, mount, extra)
            .unwrap_or_else(|e| panic!("the RTSP test server did not start: {e}"))
    }

    fn try_start(port: u16, mount: &str, extra: &[&str]) -> Result<RtspServer, String> {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new("/usr/bin/python3")
            .arg(crate::repo_root().join("tests/rtsp_server.py"))
            .args(["--port", &port.to_string(), "--mount", mount])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/python3 tests/rtsp_server.py (make setup)");
        let stdout = child.stdout.take().expect("piped stdout");
        let server = RtspServer {
            guard: ChildGuard::new(child),
            port,
            mount: mount.to_string(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" && tx.send(()).is_err() {
                    break;
                }
            }
        });
        // Dropping `server` on failure kills the process.
        rx.recv_timeout(RTSP_READY_LIMIT)
            .map(|()| server)
            .map_err(|e| format!("no `ready` on port {port} within {RTSP_READY_LIMIT:?}: {e}"))
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}{}", self.port, self.mount)
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.guard.kill();
    }

    /// Sends a signal by `kill -s` name (STOP, CONT) to the server only.
    pub fn signal(&self, signal: &str) {
        self.guard.signal(signal);
    }
}
