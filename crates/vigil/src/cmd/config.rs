use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use vigil_core::config::Config;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file; exit 0 or print each bad field.
    Check {
        /// The TOML file to check.
        file: PathBuf,
    },
}

pub fn run(cmd: &ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Check { file } => {
            let cfg = Config::load(file)?;
            vigil_server::check_config(&cfg)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            eprintln!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
