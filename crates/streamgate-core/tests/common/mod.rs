//! Shared helpers for the core's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use streamgate_core::keys::Algorithm;
use streamgate_core::revocation::{MemoryBlocklist, MemoryRevocations};
use streamgate_core::schemes::{Credential, SchemeKind};
use streamgate_core::sessions::SessionTable;
use streamgate_core::{Decision, Gate, Hooks, ReasonCode, RequestContext};

/// The algorithms this build has keys for: all, or only HMAC without `public-key`.
pub fn built_algorithms() -> impl Iterator<Item = Algorithm> {
    Algorithm::ALL.into_iter().filter(|alg| cfg!(feature = "public-key") || alg.is_hmac())
}

/// Request facts for `path` from `ip`.
pub fn ctx(path: &str, ip: &str) -> RequestContext {
    RequestContext { path: path.into(), peer_ip: ip.parse().ok(), ..Default::default() }
}

/// The stores a test can fill before checking.
#[derive(Default)]
pub struct Stores {
    pub revocations: MemoryRevocations,
    pub blocklist: MemoryBlocklist,
    pub sessions: Option<SessionTable>,
}

impl Stores {
    pub fn check(&mut self, gate: &Gate, kind: SchemeKind, value: &str, ctx: &RequestContext, now: i64) -> Decision {
        let credential = Credential { kind, value: value.to_owned() };
        let mut hooks = Hooks {
            revocations: &self.revocations,
            blocklist: &self.blocklist,
            sessions: self.sessions.as_mut().map(|s| s as &mut dyn streamgate_core::sessions::SessionLimiter),
        };
        gate.check(Some(&credential), ctx, now, &mut hooks)
    }
}

/// Checks with empty stores.
pub fn check(gate: &Gate, kind: SchemeKind, value: &str, ctx: &RequestContext, now: i64) -> Decision {
    Stores::default().check(gate, kind, value, ctx, now)
}

/// The reason code of a denial; panics (in tests) when the decision allowed.
pub fn reason(decision: &Decision) -> ReasonCode {
    match decision.denial() {
        Some(d) => d.reason(),
        None => panic!("expected a denial, got {decision:?}"),
    }
}
