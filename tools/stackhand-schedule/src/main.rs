//! `stackhand-schedule`: the `Schedule` tag language from a terminal or CI. Wiring only: the
//! arguments read, the command run, its exit code returned.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod commands;
mod resolve;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli, &mut std::io::stdout().lock(), &mut std::io::stdin().lock()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("stackhand-schedule: {e}");
            ExitCode::from(2)
        }
    }
}
