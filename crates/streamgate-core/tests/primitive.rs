//! Keys whose primitive work a platform does (`Key::with_primitive`, as the npm package's
//! Node entry uses `node:crypto`) decide exactly as the core's pure-Rust keys do: the
//! same verdicts on good and bad signatures, wrong algorithms and odd shapes, the HMAC
//! comparison and Ed25519's strict rules kept in the core, and a failing platform refused.
#![cfg(feature = "public-key")]
#![allow(clippy::disallowed_types)] // tests bring their own randomness, as callers do

mod common;

use std::sync::Arc;

use rand_core::OsRng;
use serde_json::json;
use streamgate_core::claims::{NumericDate, PlaybackClaims};
use streamgate_core::config::GateConfig;
use streamgate_core::keys::{Algorithm, Key, KeySet, Primitive, Provider};
use streamgate_core::schemes::jwt::{self, JwtScheme};
use streamgate_core::schemes::SchemeKind;
use streamgate_core::{Decision, Denial, Error, Gate, Policy, ReasonCode};

const NOW: i64 = 1_700_000_000;

/// A stand-in for a platform: another key object doing the work with the core's code.
struct Twin(Key);

impl Primitive for Twin {
    fn alg(&self) -> Algorithm {
        self.0.alg()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.0.sign(message)
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
        self.0.verify(message, signature)
    }
}

/// A platform that says yes to every signature and signs with garbage.
struct Lenient(Algorithm);

impl Primitive for Lenient {
    fn alg(&self) -> Algorithm {
        self.0
    }
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(vec![0; 32])
    }
    fn verify(&self, _message: &[u8], _signature: &[u8]) -> Result<bool, Error> {
        Ok(true)
    }
}

/// A platform that fails.
struct Failing(Algorithm);

impl Primitive for Failing {
    fn alg(&self) -> Algorithm {
        self.0
    }
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::key("platform down"))
    }
    fn verify(&self, _message: &[u8], _signature: &[u8]) -> Result<bool, Error> {
        Err(Error::key("platform down"))
    }
}

struct Twins;

impl Provider for Twins {
    fn primitive(&self, key: &Key) -> Result<Option<Arc<dyn Primitive>>, Error> {
        Ok(Some(Arc::new(Twin(key.clone()))))
    }
}

fn gate(key: Key) -> Gate {
    Gate::new(Policy::default()).with_scheme(Box::new(JwtScheme::new(KeySet::new(vec![key]))))
}

fn outcome(gate: &Gate, token: &str) -> Result<(), ReasonCode> {
    match common::check(gate, SchemeKind::Jwt, token, &common::ctx("/live/a.ts", "192.0.2.1"), NOW) {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny { denial, .. } => Err(denial.reason()),
    }
}

fn claims() -> PlaybackClaims {
    PlaybackClaims { exp: Some(NumericDate(NOW + 60)), ..Default::default() }
}

/// Tokens for `key`: good, and spoiled in every way a signature can be.
fn tokens(key: &Key, other: &Key) -> Vec<String> {
    let good = jwt::sign(&claims(), key).unwrap();
    let (input, signature) = good.rsplit_once('.').unwrap();
    let flipped = {
        let mut bytes = signature.as_bytes().to_vec();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    vec![
        good.clone(),
        format!("{input}.{flipped}"),
        format!("{input}.{}", &signature[..signature.len() - 4]),
        format!("{input}."),
        format!("{input}.{signature}AAAA"),
        jwt::sign(&claims(), other).unwrap(),
        format!("{input}.!!"),
    ]
}

#[test]
fn platform_keys_decide_as_the_core_does() {
    for alg in Algorithm::ALL {
        let key = Key::generate(alg, &mut OsRng).unwrap();
        let other = Key::generate(if alg.is_hmac() { Algorithm::ES256 } else { Algorithm::HS256 }, &mut OsRng).unwrap();
        let verifier = key.public_key().unwrap_or_else(|| key.clone());
        let platform = verifier.clone().provided_by(&Twins).unwrap();
        let (pure, twin) = (gate(verifier), gate(platform));
        for token in tokens(&key, &other) {
            assert_eq!(outcome(&twin, &token), outcome(&pure, &token), "{alg}: {token}");
        }
        assert_eq!(outcome(&twin, &tokens(&key, &other)[0]), Ok(()), "{alg}");
    }
}

#[test]
fn configurations_hand_jwt_keys_to_the_provider() {
    let config = json!({"keys": [{"alg": "HS256", "secret": "a secret of thirty-two bytes, ok"}]}).to_string();
    let key = Key::hmac(Algorithm::HS256, b"a secret of thirty-two bytes, ok").unwrap();
    let token = jwt::sign(&claims(), &key).unwrap();
    let platform = GateConfig::from_json(&config).unwrap().build_with(&Twins).unwrap();
    assert_eq!(outcome(&platform, &token), Ok(()));
    assert_eq!(format!("{platform:?}"), format!("{:?}", GateConfig::from_json(&config).unwrap().build().unwrap()));
}

#[test]
fn the_core_keeps_its_rules_around_a_lenient_platform() {
    // HMAC: the core compares the platform's tag itself.
    let hmac = Key::generate(Algorithm::HS256, &mut OsRng).unwrap();
    let token = jwt::sign(&claims(), &hmac).unwrap();
    let lenient = hmac.with_primitive(Arc::new(Lenient(Algorithm::HS256))).unwrap();
    assert_eq!(outcome(&gate(lenient), &token), Err(ReasonCode::BadSignature));

    // Ed25519: a malleated S, a small-order R, and ES256: a signature of the wrong length.
    let ed_key = Key::generate(Algorithm::EdDSA, &mut OsRng).unwrap();
    let good = jwt::sign(&claims(), &ed_key).unwrap();
    let lenient_own = gate(ed_key.public_key().unwrap().with_primitive(Arc::new(Lenient(Algorithm::EdDSA))).unwrap());
    assert_eq!(outcome(&lenient_own, &good), Ok(()));
    let (head, signature) = good.rsplit_once('.').unwrap();
    let mut sig = streamgate_core::encoding::b64_url_decode(signature).unwrap();
    let mut identity_r = sig.clone();
    identity_r[..32].copy_from_slice(&[[1].as_slice(), &[0; 31]].concat());
    sig[63] |= 0xf0; // S far above the group order
    for spoiled in [sig, identity_r] {
        let token = format!("{head}.{}", streamgate_core::encoding::b64_url(&spoiled));
        assert_eq!(outcome(&lenient_own, &token), Err(ReasonCode::BadSignature));
    }
    let es = Key::generate(Algorithm::ES256, &mut OsRng).unwrap();
    let good = jwt::sign(&claims(), &es).unwrap();
    let lenient = gate(es.public_key().unwrap().with_primitive(Arc::new(Lenient(Algorithm::ES256))).unwrap());
    assert_eq!(outcome(&lenient, &format!("{}AAAA", good)), Err(ReasonCode::BadSignature));
}

#[test]
fn a_failing_platform_is_refused_and_named() {
    let key = Key::generate(Algorithm::HS256, &mut OsRng).unwrap();
    let token = jwt::sign(&claims(), &key).unwrap();
    let failing = gate(key.clone().with_primitive(Arc::new(Failing(Algorithm::HS256))).unwrap());
    match common::check(&failing, SchemeKind::Jwt, &token, &common::ctx("/a", "192.0.2.1"), NOW) {
        Decision::Deny { denial: Denial::BadSignature { explanation: Some(e) }, .. } => {
            assert!(
                e.recipe.ends_with("not checked, the platform's crypto failed: invalid key: platform down"),
                "{}",
                e.recipe
            );
        }
        other => panic!("{other:?}"),
    }
    let signer = key.with_primitive(Arc::new(Failing(Algorithm::HS256))).unwrap();
    assert_eq!(jwt::sign(&claims(), &signer).unwrap_err(), Error::key("platform down"));
}

#[test]
fn primitives_stay_bound_to_the_key_algorithm() {
    let key = Key::generate(Algorithm::ES256, &mut OsRng).unwrap();
    assert_eq!(
        key.clone().with_primitive(Arc::new(Lenient(Algorithm::EdDSA))).unwrap_err(),
        Error::key("the primitive is for EdDSA, the key for ES256")
    );
    // A public key cannot sign, whatever its platform would do.
    let public = key.public_key().unwrap().with_primitive(Arc::new(Lenient(Algorithm::ES256))).unwrap();
    assert_eq!(public.sign(b"m").unwrap_err(), Error::key("a public key cannot sign"));
}
