//! `tracing` setup: human-readable or JSON on stderr, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::settings::{GlobalArgs, LogFormat};

pub fn init(g: &GlobalArgs) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,vigil=info,ort=warn"));
    // Colour only on a terminal: logs redirected to files or collected by
    // a container runtime stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match g.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}
