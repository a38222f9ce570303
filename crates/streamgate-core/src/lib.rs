//! # streamgate-core
//!
//! The sans-IO core of streamgate: token schemes (playback JWT, Nimble WMSAuth, Akamai
//! EdgeAuth 2.0, nginx secure_link), the policy engine (scope, IP binding, Referer,
//! User-Agent, geo rules, purpose, revocation, IP blocking, session limits) and the one
//! vocabulary of [`ReasonCode`]s.
//!
//! What it is not: it reads no clock, does no I/O and holds no global state. `now`
//! (unix seconds), request facts and stores come in as arguments or traits, so the same
//! code runs natively, in browsers and at the edge, and every decision is testable.
//!
//! ```
//! use streamgate_core::{claims::PlaybackClaims, claims::NumericDate, keys::{Algorithm, Key, KeySet}};
//! use streamgate_core::{schemes::jwt, schemes::{Credential, SchemeKind}, Gate, Policy, RequestContext};
//! use streamgate_core::{revocation::{MemoryBlocklist, MemoryRevocations}, Hooks};
//!
//! let key = Key::hmac(Algorithm::HS256, b"a long shared secret for the demo")?;
//! let claims = PlaybackClaims {
//!     exp: Some(NumericDate(1_700_000_600)),
//!     streams: Some(vec!["live/match-*".into()]),
//!     ..Default::default()
//! };
//! let token = jwt::sign(&claims, &key)?;
//!
//! let gate = Gate::new(Policy::default())
//!     .with_scheme(Box::new(jwt::JwtScheme::new(KeySet::new(vec![key]))));
//! let ctx = RequestContext { path: "/live/match-42/index.m3u8".into(), ..Default::default() };
//! let (revoked, blocked) = (MemoryRevocations::default(), MemoryBlocklist::default());
//! let mut hooks = Hooks { revocations: &revoked, blocklist: &blocked, sessions: None };
//! let credential = Credential { kind: SchemeKind::Jwt, value: token };
//! let decision = gate.check(Some(&credential), &ctx, 1_700_000_000, &mut hooks);
//! assert!(decision.is_allowed());
//! # Ok::<(), streamgate_core::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod claims;
pub mod config;
mod denial;
pub mod detection;
pub mod encoding;
mod gate;
pub mod gateway;
pub mod grant;
pub mod keys;
pub mod manifests;
pub mod policy;
mod reason;
pub mod revocation;
pub mod schemes;
pub mod sessions;
pub mod timestamp;
pub mod unverified;

pub use denial::{Denial, Error, SignatureExplanation};
pub use gate::{Decision, Gate};
pub use grant::Grant;
pub use policy::{Hooks, Policy, RequestContext, RequestFacts};
pub use reason::ReasonCode;
