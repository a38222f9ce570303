//! Akamai EdgeAuth 2.0: `decode` and `verify` on any token (input: `token\npath\nclient-ip`),
//! with sha256 and with md5 and a salt. `!sign\npath\nclient-ip\n<fields before ~hmac=>`
//! reaches past the signature: the right HMAC is appended, so any fields the decoder
//! accepts must verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::encoding::hex;
use streamgate_core::schemes::edgeauth::{self, EdgeAlgorithm};
use streamgate_core::schemes::Scheme;
use streamgate_core::ReasonCode;
use streamgate_fuzz::{assert_denial_is_mapped, edgeauth_scheme, facts, fields, hmac_sha256, EDGE_KEY};

fuzz_target!(|data: &[u8]| {
    if let Some(rest) = data.strip_prefix(b"!sign\n") {
        let [path, ip, signed_text] = <[String; 3]>::try_from(fields(rest, 3)).unwrap_or_default();
        let facts = facts(&path, &ip);
        let Ok(decoded) = edgeauth::decode(&format!("{signed_text}~hmac=00")) else { return };
        let mut source = decoded.signed_text.clone();
        if decoded.acl.is_none() {
            source.push_str("~url=");
            source.push_str(&facts.path);
        }
        let key = streamgate_core::encoding::hex_decode(EDGE_KEY).unwrap_or_default();
        let token = format!("{}~hmac={}", decoded.signed_text, hex(&hmac_sha256(&key, source.as_bytes())));
        if let Err(denial) = edgeauth_scheme(EdgeAlgorithm::Sha256, None).verify(&token, &facts) {
            assert_denial_is_mapped(&denial);
            assert_ne!(denial.reason(), ReasonCode::BadSignature, "{token:?} on {facts:?}: {denial:?}");
        }
        return;
    }
    let [token, path, ip] = <[String; 3]>::try_from(fields(data, 3)).unwrap_or_default();
    if let Ok(decoded) = edgeauth::decode(&token) {
        assert!(token.trim().starts_with(&decoded.signed_text));
    }
    let facts = facts(&path, &ip);
    for scheme in [edgeauth_scheme(EdgeAlgorithm::Sha256, None), edgeauth_scheme(EdgeAlgorithm::Md5, Some("salt"))] {
        if let Err(denial) = scheme.verify(&token, &facts) {
            assert_denial_is_mapped(&denial);
        }
    }
});
