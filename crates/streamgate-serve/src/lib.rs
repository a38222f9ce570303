//! # streamgate-serve
//!
//! `streamgate serve`: the native gate, for origins outside Cloudflare. It answers
//! forward-auth requests from a proxy in front of the origin (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `ForwardAuth`), or stands in front of the origin itself as the
//! edge worker does (credential transports, stripping, manifest rewriting with session
//! credentials, session limits). Thin by design: every decision is streamgate-core's
//! ([`streamgate_core::gateway::Gateway`]); this crate does HTTP, state and shutdown.
//!
//! Routes: `/auth` (forward-auth), `/healthz`, `/metrics` (Prometheus), `/admin/*` (the
//! edge's admin API, with `STREAMGATE_ADMIN_TOKEN`), and in proxy mode every other path
//! through the gate to the origin.
//!
//! ```no_run
//! # async fn example() -> Result<(), streamgate_serve::ServeError> {
//! use streamgate_serve::{shutdown_signal, GateSetup, ServeOptions, Server};
//! let config = std::fs::read_to_string("streamgate.json").map_err(|e| streamgate_serve::ServeError(e.to_string()))?;
//! let setup = GateSetup::new(ServeOptions { config, ..ServeOptions::default() })?;
//! let state = setup.memory_state(Some("streamgate-state.json".into()))?;
//! let server = Server::bind(setup, state, "127.0.0.1:9090".parse().map_err(|_| streamgate_serve::ServeError("address".into()))?).await?;
//! server.run(shutdown_signal()).await
//! # }
//! ```
//!
//! What it is not: a second gate. When it needs a rule the core lacks, the core grows it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod admin;
mod gate;
mod http;
mod log;
mod metrics;
mod native_io;
mod origin;
mod server;
pub mod state;

pub use http::Body;
pub use log::init_logging;
pub use server::{
    http1_builder, run, runtime, shutdown_signal, GateSetup, Limits, RunOptions, ServeError, ServeOptions, Server,
    MIN_ADMIN_TOKEN_BYTES,
};
