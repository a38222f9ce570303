//! `streamgate`: sign, verify and inspect stream tokens offline.
//!
//! Exit codes: 0 allowed (or success), 1 denied, 2 usage or configuration error.

mod cli;
mod commands;
mod keysource;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(commands::Outcome::Success) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Denied) => ExitCode::from(1),
        Err(message) => {
            eprintln!("streamgate: error: {message}");
            ExitCode::from(2)
        }
    }
}
