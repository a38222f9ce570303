//! # streamgate-serve
//!
//! `streamgate serve`: the native gate, for origins outside Cloudflare. It answers
//! forward-auth requests from a proxy in front of the origin (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `ForwardAuth`), or stands in front of the origin itself as the
//! edge worker does (credential transports, stripping, manifest rewriting with session
//! credentials, session limits). Thin by design: every decision is streamgate-core's
//! ([`streamgate_core::gateway::Gateway`]); this crate does HTTP, state and shutdown.
//!
//! What it is not: a second gate. When it needs a rule the core lacks, the core grows it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod state;
