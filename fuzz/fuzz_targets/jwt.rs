//! Playback JWTs: `decode_unverified` and `JwtScheme::verify` on any text; and, to reach
//! past the signature, any JSON object signed with each test key must verify (it may still
//! be refused for its claims, never for its signature).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use streamgate_core::schemes::jwt::{self, decode_unverified};
use streamgate_core::schemes::Scheme;
use streamgate_core::ReasonCode;
use streamgate_fuzz::{assert_denial_is_mapped, facts, jwt_keys, jwt_scheme};

fuzz_target!(|data: &[u8]| {
    let scheme = jwt_scheme();
    // `!sign <key index>\n<claims JSON>`: sign the claims, then verify.
    if let Some(rest) = data.strip_prefix(b"!sign ") {
        let Some((&index, claims)) = rest.split_first() else { return };
        let key = &jwt_keys()[usize::from(index) % jwt_keys().len()];
        let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(claims) else { return };
        let claims: Map<String, Value> = claims;
        let Ok(token) = jwt::sign_json(&claims, key) else { return };
        match scheme.verify(&token, &facts("/", "")) {
            // The grant names the token by its signed content (see schemes::jwt), which is
            // what revocation by text names too.
            Ok(grant) => {
                let named = streamgate_core::unverified::identity(&token).map(|i| i.fingerprint);
                assert_eq!(Ok(grant.fingerprint()), named, "{token}");
            }
            Err(denial) => {
                assert_denial_is_mapped(&denial);
                assert!(
                    !matches!(
                        denial.reason(),
                        ReasonCode::BadSignature | ReasonCode::UnknownKey | ReasonCode::AlgNotAllowed
                    ),
                    "a token signed with {} was refused: {denial:?}",
                    key.alg()
                );
                assert!(decode_unverified(&token).is_ok(), "{token}");
            }
        }
        return;
    }
    let text = String::from_utf8_lossy(data);
    let _ = decode_unverified(&text);
    match scheme.verify(&text, &facts("/live/a.m3u8", "192.0.2.1")) {
        Ok(grant) => {
            // Only the test keys sign: an accepted token decodes, and its claims are JSON.
            assert!(decode_unverified(&text).is_ok());
            // A verified JWT's claims are an object, decoded again from the canonical form.
            assert!(matches!(serde_json::from_str::<Value>(&grant.claims_json()), Ok(Value::Object(_))));
        }
        Err(denial) => assert_denial_is_mapped(&denial),
    }
});
