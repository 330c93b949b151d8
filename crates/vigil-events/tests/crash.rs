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

fn spawn(db: &std::path::Path, url: &str, append: u64) -> Child {
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
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn outbox_worker")
}

fn wait_appended(child: &mut Child) {
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    assert!(line.starts_with("appended"), "worker said {line:?}");
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

    let mut first = spawn(&db, &url, 40);
    wait_appended(&mut first);
    // Let it fail a few attempts against the closed port, then crash it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill9(first);

    {
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
        // The outage pauses the whole target, so the oldest event carries the attempts.
        assert!(
            pending.iter().any(|r| r.deliveries[0].attempts >= 2),
            "it was mid-retry"
        );
    }

    let rx = Receiver::start(addr, Some(SECRET), ok()).await;
    let mut second = spawn(&db, &url, 0);
    wait_appended(&mut second);
    let all = wait_until(Duration::from_secs(30), || rx.accepted_ids() == 40).await;
    kill9(second);
    assert!(all, "delivered {} of 40", rx.accepted_ids());
    let log = rx.log.lock().expect("log");
    assert_eq!(log.bad_signatures, 0);
    assert_eq!(log.missing_headers, 0);
    assert!(log.accepted.values().all(|&n| n >= 1));
}
