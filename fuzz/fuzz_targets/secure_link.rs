//! nginx secure_link: `verify` on any `md5,expires` credential (input:
//! `credential\npath\nclient-ip\nexpression`), with the default expression and with the
//! input's own expression when it parses. `!sign\npath\nclient-ip\nexpires\nexpression`
//! signs with the scheme and verifies: what it signs must verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::schemes::secure_link::SecureLinkScheme;
use streamgate_core::schemes::Scheme;
use streamgate_fuzz::{assert_denial_is_mapped, facts, fields, secure_link_scheme, SECURE_LINK_SECRET};

fuzz_target!(|data: &[u8]| {
    if let Some(rest) = data.strip_prefix(b"!sign\n") {
        let [path, ip, expires, expression] = <[String; 4]>::try_from(fields(rest, 4)).unwrap_or_default();
        let Ok(scheme) = SecureLinkScheme::new(SECURE_LINK_SECRET, &expression) else { return };
        let facts = facts(&path, &ip);
        let expires: Option<i64> = expires.trim().parse().ok();
        let Ok(md5) = scheme.sign(&facts.path, facts.client_ip, expires) else { return };
        let credential = match expires {
            Some(e) => format!("{md5},{e}"),
            None => md5,
        };
        if let Err(denial) = scheme.verify(&credential, &facts) {
            panic!("{credential:?} signed for {facts:?} with {expression:?} was refused: {denial:?}");
        }
        return;
    }
    let [credential, path, ip, expression] = <[String; 4]>::try_from(fields(data, 4)).unwrap_or_default();
    let facts = facts(&path, &ip);
    let mut schemes = vec![secure_link_scheme()];
    schemes.extend(SecureLinkScheme::new(SECURE_LINK_SECRET, &expression).ok());
    for scheme in schemes {
        if let Err(denial) = scheme.verify(&credential, &facts) {
            assert_denial_is_mapped(&denial);
        }
    }
});
