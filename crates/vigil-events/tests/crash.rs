//! At-least-once across a crash: a delivery process is killed with SIGKILL
//! while the receiver is down; after a restart with the receiver up, every
//! event committed before the crash arrives, correctly signed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{free_addr, ok, wait_until, Receiver};
use vigil_events::{Outbox, OutboxConfig, Status, WebhookTarget};

const SECRET: &str = "crash-secret";

fn worker_exe() -> PathBuf {
    // tests run from target/<profile>/deps; examples sit next to it.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("examples").join("outbox_worker")
}

/// Starts the worker with its log (RUST_LOG=info) in `log`.
fn spawn(db: &std::path::Path, url: &str, append: u64, log: &std::path::Path) -> Child {
    let exe = worker_exe();
    if !exe.exists() {
        // `cargo test --test crash` alone does not build examples.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "vigil-events", "--example", "outbox_worker"])
            .status()
            .expect("cargo build --example");
        assert!(st.success() && exe.exists(), "{} missing", exe.display());
    }
    Command::new(exe)
        .arg(db)
        .arg(url)
        .arg(SECRET)
        .arg(append.to_string())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("worker log"))
        .spawn()
        .expect("spawn outbox_worker")
}

/// Waits (bounded) for the worker's `appended N` line on stdout.
fn wait_appended(child: &mut Child) {
    let out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        line
    });
    let line = vigil_testkit::join_bounded(
        reader,
        Duration::from_secs(60),
        "the worker's `appended` line",
    );
    assert!(line.starts_with("appended"), "worker said {line:?}");
}

/// How many failed delivery attempts the worker has logged.
fn failed_attempts(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("delivery failed; will retry")
        .count()
}

fn kill9(mut child: Child) {
    // Child::kill is SIGKILL on Unix: no destructors, no clean shutdown.
    child.kill().expect("kill -9");
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_retry_then_restart_delivers_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("events.sqlite3");
    let addr = free_addr();
    let url = format!("http://{addr}/hook");

    let log1 = dir.path().join("first.log");
    let mut first = spawn(&db, &url, 40, &log1);
    wait_appended(&mut first);
    // Crash it once it has failed a few attempts against the closed port.
    vigil_testkit::wait_until_async(
        "the first worker has failed 3 delivery attempts",
        Duration::from_secs(60),
        || {
            let n = failed_attempts(&log1);
            async move { (n >= 3).then_some(()) }
        },
    )
    .await;
    kill9(first);

    let committed: Vec<String> = {
        let check = Outbox::open(
            &db,
            vec![WebhookTarget::new(url.clone())],
            OutboxConfig::default(),
        )
        .expect("open after crash");
        let pending = check.recent(1000, Some(Status::Pending)).expect("recent");
        assert_eq!(
            pending.len(),
            40,
            "everything committed before the crash is pending"
        );
        let mut ids: Vec<String> = pending.iter().map(|r| r.event.id.clone()).collect();
        ids.sort();
        // The outage pauses the whole target, so the oldest event carries the attempts.
        assert!(
            pending.iter().any(|r| r.deliveries[0].attempts >= 2),
            "it was mid-retry"
        );
        ids
    };

    let rx = Receiver::start(addr, Some(SECRET), ok()).await;
    let mut second = spawn(&db, &url, 0, &dir.path().join("second.log"));
    wait_appended(&mut second);
    let all = wait_until(Duration::from_secs(60), || rx.accepted_ids() == 40).await;
    kill9(second);
    assert!(all, "delivered {} of 40", rx.accepted_ids());
    let log = rx.log();
    assert_eq!(log.bad_signatures, 0);
    assert_eq!(log.missing_headers, 0);
    // Exactly the 40 events committed before the crash, and each once: the
    // receiver was down during the first run (nothing could be accepted
    // then), and the second run stopped only after the 40th.
    let mut accepted: Vec<&String> = log.accepted.keys().collect();
    accepted.sort();
    assert_eq!(accepted, committed.iter().collect::<Vec<_>>());
    let dups: Vec<_> = log.accepted.iter().filter(|(_, &n)| n != 1).collect();
    assert!(dups.is_empty(), "delivered more than once: {dups:?}");
}
