//! The allow path of `Gate::check` allocates only what its decision keeps.
//!
//! This test binary counts heap allocations with a global allocator that forwards every
//! call to the system's. Implementing `GlobalAlloc` takes `unsafe`; the core itself stays
//! `forbid(unsafe_code)`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use streamgate_core::claims::{NumericDate, PlaybackClaims};
use streamgate_core::keys::{Algorithm, Key, KeySet};
use streamgate_core::revocation::{MemoryBlocklist, MemoryRevocations};
use streamgate_core::schemes::jwt::{self, JwtScheme};
use streamgate_core::schemes::{Credential, SchemeKind};
use streamgate_core::{Gate, Hooks, Policy, RequestContext};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: an allocation while the thread is being torn down is not counted.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// The system allocator, counting allocations per thread.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn an_allowed_hs256_check_allocates_only_what_the_decision_holds() {
    let key = Key::hmac(Algorithm::HS256, b"a 32-byte-or-longer shared secret for HS256 checks").unwrap();
    let claims = PlaybackClaims {
        exp: Some(NumericDate(1_700_000_600)),
        iat: Some(NumericDate(1_700_000_000)),
        jti: Some("tok-8f1c2a".into()),
        streams: Some(vec!["live/match-*".into()]),
        ..Default::default()
    };
    let credential = Credential { kind: SchemeKind::Jwt, value: jwt::sign(&claims, &key).unwrap() };
    let gate = Gate::new(Policy::default()).with_scheme(Box::new(JwtScheme::new(KeySet::new(vec![key]))));
    let ctx = RequestContext {
        path: "/live/match-42/seg_7.ts".into(),
        peer_ip: "198.51.100.7".parse().ok(),
        referer: Some("https://www.example.com/watch/42".into()),
        user_agent: Some("Mozilla/5.0".into()),
        country: Some("fr".into()),
        method: Some("GET".into()),
        ..Default::default()
    };
    let (revocations, blocklist) = (MemoryRevocations::default(), MemoryBlocklist::default());
    let mut hooks = Hooks { revocations: &revocations, blocklist: &blocklist, sessions: None };
    let (decision, allocations) = allocations_during(|| gate.check(Some(&credential), &ctx, 1_700_000_000, &mut hooks));
    assert!(decision.is_allowed(), "{decision:?}");
    // What the decision holds: the normalized path, the canonical form (which holds the
    // payload, decoded again when the claims are asked for), the `jti`, and the `streams`
    // list with its one glob.
    assert!(allocations <= 5, "{allocations} allocations on the allow path (5 expected)");
    let grant = decision.grant().expect("an allowed decision holds its grant");
    assert_eq!(grant.claims()["jti"], "tok-8f1c2a", "the claims are still there");
}
