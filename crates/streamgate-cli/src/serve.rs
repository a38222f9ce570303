//! `streamgate serve`: reads the configuration file and the admin token, then hands over to
//! streamgate-serve.

use std::time::Duration;

use streamgate_serve::{Limits, RunOptions, ServeOptions};

use crate::cli::ServeArgs;
use crate::commands::{Outcome, Result};

/// The environment variable holding the admin API's token.
const ADMIN_TOKEN_VARIABLE: &str = "STREAMGATE_ADMIN_TOKEN";

/// The environment variable holding the token that reads `/metrics` only.
const METRICS_TOKEN_VARIABLE: &str = "STREAMGATE_METRICS_TOKEN";

pub fn serve(args: ServeArgs) -> Result<Outcome> {
    let config = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read the configuration {}: {e}", args.config.display()))?;
    let admin_token = std::env::var(ADMIN_TOKEN_VARIABLE).ok();
    let options = RunOptions {
        serve: ServeOptions {
            config,
            origin: args.origin,
            admin_token,
            metrics_token: std::env::var(METRICS_TOKEN_VARIABLE).ok(),
            limits: Limits {
                origin_timeout: Duration::from_secs(args.origin_timeout),
                max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
                ..Limits::default()
            },
        },
        listen: args.listen,
        admin_listen: args.admin_listen,
        state_file: args.state,
        redis: args.redis,
    };
    streamgate_serve::run(options).map_err(|e| e.to_string())?;
    Ok(Outcome::Success)
}
