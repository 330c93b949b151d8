//! `vigil worker`: a job worker for the NATS JetStream backend.

use std::process::ExitCode;

use clap::Args;

use crate::settings::GlobalArgs;

#[derive(Args, Debug)]
pub struct WorkerArgs {}

pub fn run(g: &GlobalArgs, _a: &WorkerArgs) -> anyhow::Result<ExitCode> {
    super::serve::run_until_signal(g, vigil_server::run_worker)
}
