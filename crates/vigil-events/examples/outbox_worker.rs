//! A minimal delivery process over an outbox: what the daemon does, without
//! the video. Used by `tests/crash.rs`, which kills it with SIGKILL.
//!
//! ```sh
//! cargo run -p vigil-events --example outbox_worker -- DB URL SECRET [APPEND_N]
//! ```
//!
//! Appends `APPEND_N` synthetic events (default 0), prints `appended N` once
//! they are committed, then delivers until killed or Ctrl-C.

use std::time::{Duration, SystemTime};

use vigil_core::{BBox, StreamId};
use vigil_events::{Event, EventType, Outbox, OutboxConfig, WebhookTarget};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, url, secret, rest @ ..] = args.as_slice() else {
        return Err("usage: outbox_worker DB URL SECRET [APPEND_N]".into());
    };
    let n: u64 = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let target = WebhookTarget {
        secret: Some(secret.clone()),
        timeout: Duration::from_secs(2),
        max_attempts: 1000,
        ..WebhookTarget::new(url.clone())
    };
    let config = OutboxConfig {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..OutboxConfig::default()
    };
    let outbox = Outbox::open(db, vec![target], config)?;
    let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let events: Vec<Event> = (0..n)
        .map(|i| Event {
            id: uuid::Uuid::new_v4().to_string(),
            kind: EventType::LineCrossed,
            stream: StreamId("door".into()),
            at: at.clone(),
            pts_ms: i as f64 * 40.0,
            track_id: Some(i + 1),
            label: Some("person".into()),
            score: Some(0.8),
            bbox: Some(BBox::new(10.0, 10.0, 50.0, 90.0)),
            zone: None,
            line: Some("gate".into()),
            direction: Some(vigil_events::Direction::In),
            snapshot_url: None,
            extra: Default::default(),
        })
        .collect();
    outbox.append(&events)?;
    println!("appended {n}");
    let delivery = outbox.start_delivery();
    tokio::signal::ctrl_c().await?;
    delivery.shutdown().await;
    Ok(())
}
