//! `streamgate`: sign, verify and inspect stream tokens offline, find misuse in logs, and
//! serve the gate (`streamgate serve`).
//!
//! Exit codes: 0 allowed (or success, or no finding), 1 denied (or findings), 2 usage or
//! configuration error (clap's own usage errors exit 2 as well).

mod cli;
mod commands;
mod keysource;
mod scan;
mod serve;

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
