//! The gate's session credential: `SessionScheme::verify` on any text (input:
//! `credential\npath\nclient-ip`). `!sign\npath\nclient-ip\n<payload JSON>` signs any
//! payload with the session secret, so the claims parser and everything after the
//! signature see arbitrary JSON; a payload that verifies is re-issued for the same
//! manifest, and the new credential must verify with the same restrictions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::encoding::b64_url;
use streamgate_core::keys::{Algorithm, Key};
use streamgate_core::schemes::session::lift_expiry_for_renewal;
use streamgate_core::schemes::Scheme;
use streamgate_core::ReasonCode;
use streamgate_fuzz::{assert_denial_is_mapped, facts, fields, session_scheme, NOW, SESSION_SECRET};

fuzz_target!(|data: &[u8]| {
    let scheme = session_scheme();
    let (credential, path, ip, signed) = match data.strip_prefix(b"!sign\n") {
        Some(rest) => {
            let [path, ip, payload] = <[String; 3]>::try_from(fields(rest, 3)).unwrap_or_default();
            let mut credential = format!("v1.{}", b64_url(payload.as_bytes()));
            let key = Key::hmac(Algorithm::HS256, SESSION_SECRET).expect("session key");
            let tag = key.sign(credential.as_bytes()).expect("HMAC signs");
            credential.push('.');
            credential.push_str(&b64_url(&tag));
            (credential, path, ip, true)
        }
        None => {
            let [credential, path, ip] = <[String; 3]>::try_from(fields(data, 3)).unwrap_or_default();
            (credential, path, ip, false)
        }
    };
    let facts = facts(&path, &ip);
    let grant = match scheme.verify(&credential, &facts) {
        Ok(grant) => grant,
        Err(denial) => {
            assert_denial_is_mapped(&denial);
            assert!(!(signed && denial.reason() == ReasonCode::BadSignature), "{credential}: {denial:?}");
            return;
        }
    };
    for now in [NOW, grant.validity.expires_at.unwrap_or(NOW)] {
        let _ = lift_expiry_for_renewal(&grant, now);
    }
    // Re-issued for the same manifest, a credential keeps every restriction.
    let Ok(reissued) = scheme.issue(&grant, "sid", &facts.path, facts.client_ip, NOW, Some(3_600)) else { return };
    let again = scheme.verify(&reissued, &facts).expect("a credential the gate issued verifies");
    assert_eq!(again.scope, scheme.scope_for(&grant, &facts.path));
    assert_eq!(again.ip_binding, grant.ip_binding);
    assert_eq!(again.network_binding, grant.network_binding);
    assert_eq!(again.referrers, grant.referrers);
    assert_eq!(again.user_agents, grant.user_agents);
    assert_eq!(again.access_rules, grant.access_rules);
    assert_eq!(again.purpose, grant.purpose);
    assert_eq!(again.session_bounds, grant.session_bounds);
    assert_eq!(again.token_id, grant.token_id);
    if grant.token_id.is_none() {
        assert_eq!(again.entry_fingerprint(), grant.entry_fingerprint());
    }
    let bounds = again.session_bounds.expect("a session credential has bounds");
    assert!(again.validity.expires_at.is_some_and(|exp| exp <= bounds.ends), "{again:?}");
});
