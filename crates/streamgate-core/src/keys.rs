//! JWT signing keys, each bound to exactly one algorithm, and key sets chosen by `kid`.
//!
//! A key never changes algorithm: an HMAC secret is only ever HS256/384/512 as configured,
//! an RSA key only RS256, and so on, so a token header cannot steer verification onto
//! another algorithm (no `none`, no RS→HS key confusion).

use core::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use serde_json::{json, Map, Value};
use sha2::{Sha256, Sha384, Sha512};

use crate::denial::Error;
use crate::encoding::{self, b64_url, b64_url_decode};

#[cfg_attr(not(feature = "public-key"), path = "keys/hmac_only.rs")]
mod public;

use public::Asymmetric;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The JWS algorithms streamgate signs and verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 6] =
        [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    /// The JOSE name (`HS256`, `EdDSA`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE name, exactly (case matters, as in JOSE).
    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Whether this is an HMAC algorithm (a shared secret).
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HMAC key with its inner and outer pad already hashed, cloned per use.
#[derive(Clone)]
enum HmacState {
    S256(Hmac<Sha256>),
    S384(Hmac<Sha384>),
    S512(Hmac<Sha512>),
}

impl HmacState {
    fn new(alg: Algorithm, secret: &[u8]) -> Result<HmacState, Error> {
        let bad = |_| Error::key("HMAC key rejected");
        Ok(match alg {
            Algorithm::HS384 => HmacState::S384(<Hmac<Sha384> as Mac>::new_from_slice(secret).map_err(bad)?),
            Algorithm::HS512 => HmacState::S512(<Hmac<Sha512> as Mac>::new_from_slice(secret).map_err(bad)?),
            _ => HmacState::S256(<Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(bad)?),
        })
    }

    fn tag(&self, message: &[u8]) -> Vec<u8> {
        fn run<M: Mac + Clone>(mac: &M, message: &[u8]) -> Vec<u8> {
            let mut mac = mac.clone();
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            HmacState::S256(m) => run(m, message),
            HmacState::S384(m) => run(m, message),
            HmacState::S512(m) => run(m, message),
        }
    }

    /// Whether `tag` is the tag of `message`, compared in constant time; the computed tag
    /// stays on the stack.
    fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        fn run<M: Mac + Clone>(mac: &M, message: &[u8], tag: &[u8]) -> bool {
            let mut mac = mac.clone();
            mac.update(message);
            encoding::ct_eq(&mac.finalize().into_bytes(), tag)
        }
        match self {
            HmacState::S256(m) => run(m, message, tag),
            HmacState::S384(m) => run(m, message, tag),
            HmacState::S512(m) => run(m, message, tag),
        }
    }
}

/// A key's primitive work done outside the core, by the platform's own crypto (in the npm
/// package, Node's `node:crypto`). Keys use the core's pure-Rust code unless an adapter
/// hands them one with [`Key::with_primitive`]. Parsing, key choice, the HMAC tag
/// comparison and every decision stay in the core.
pub trait Primitive: Send + Sync {
    /// The one algorithm this primitive was made for.
    fn alg(&self) -> Algorithm;
    /// The HMAC tag, or the JWS signature (ES256: `r || s`, 64 bytes) of `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
    /// Whether `signature` over `message` verifies (public-key algorithms only: the core
    /// compares HMAC tags itself, in constant time).
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<bool, Error>;
}

/// Chooses each key's [`Primitive`]: how an adapter hands keys to its platform's crypto.
pub trait Provider {
    /// The primitive for `key`, or `None` to keep the core's pure-Rust code.
    fn primitive(&self, key: &Key) -> Result<Option<Arc<dyn Primitive>>, Error>;
}

/// The default [`Provider`]: every key keeps the core's pure-Rust code.
#[derive(Clone, Copy, Debug, Default)]
pub struct PureRust;

impl Provider for PureRust {
    fn primitive(&self, _key: &Key) -> Result<Option<Arc<dyn Primitive>>, Error> {
        Ok(None)
    }
}

#[derive(Clone)]
enum Material {
    Hmac(Vec<u8>, Box<HmacState>),
    Public(Asymmetric),
}

/// A key bound to one algorithm, with an optional `kid`.
#[derive(Clone)]
pub struct Key {
    kid: Option<String>,
    alg: Algorithm,
    material: Material,
    /// The platform's crypto for this key; `None`: the core's pure-Rust code.
    primitive: Option<Arc<dyn Primitive>>,
    /// [`Key::jws_header`], written once.
    jws_header: String,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private", &self.is_private())
            .field("platform_crypto", &self.primitive.is_some())
            .finish()
    }
}

impl Key {
    /// An HMAC key for `alg` (HS256/384/512). The secret must be at least as long as the
    /// hash output, as RFC 7518 section 3.2 requires: 32, 48 or 64 bytes.
    pub fn hmac(alg: Algorithm, secret: &[u8]) -> Result<Key, Error> {
        let min = match alg {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => {
                return Err(Error::key(format!(
                    "{alg} is not an HMAC algorithm; a shared secret cannot be used with it"
                )))
            }
        };
        if secret.len() < min {
            return Err(Error::key(format!(
                "an {alg} secret must be at least {min} bytes (RFC 7518 section 3.2); this one has {}",
                secret.len()
            )));
        }
        Ok(Key::assemble(None, alg, Material::Hmac(secret.to_vec(), Box::new(HmacState::new(alg, secret)?))))
    }

    /// Loads a PEM key: PKCS#8 (`PRIVATE KEY`), SPKI (`PUBLIC KEY`), PKCS#1
    /// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`). The algorithm follows from the
    /// key type; `expected`, when given, must agree.
    pub fn from_pem(pem: &str, expected: Option<Algorithm>) -> Result<Key, Error> {
        Key::bind(Asymmetric::from_pem(pem.trim())?, expected)
    }

    /// Loads one JWK (RFC 7517): `oct`, `RSA`, `EC` (P-256) or `OKP` (Ed25519). An `oct`
    /// JWK must carry its `alg`; see [`Key::from_jwk_with_alg`] for one that does not.
    pub fn from_jwk(jwk: &Value) -> Result<Key, Error> {
        Key::jwk(jwk, None)
    }

    /// Loads one JWK for the algorithm the configuration names, for JWKs without `alg`
    /// (RFC 7515 Appendix A.1 has one). A JWK whose own `alg` differs is refused, and so is
    /// a key of another type (an `oct` JWK for RS256, say).
    pub fn from_jwk_with_alg(jwk: &Value, alg: Algorithm) -> Result<Key, Error> {
        Key::jwk(jwk, Some(alg))
    }

    fn jwk(jwk: &Value, configured: Option<Algorithm>) -> Result<Key, Error> {
        let obj = jwk.as_object().ok_or_else(|| Error::key("JWK is not a JSON object"))?;
        let text = |name: &str| jwk_text(obj, name);
        let declared = match text("alg") {
            Some(name) => {
                Some(Algorithm::parse(name).ok_or_else(|| Error::key(format!("JWK alg {name:?} is not supported")))?)
            }
            None => None,
        };
        let declared = match (declared, configured) {
            (Some(own), Some(want)) if own != want => {
                return Err(Error::key(format!("the JWK says \"alg\": \"{own}\" but the configuration says {want}")))
            }
            (own, want) => own.or(want),
        };
        let material = match text("kty") {
            Some("oct") => {
                let alg = declared.ok_or_else(|| Error::key("an oct JWK must say its \"alg\""))?;
                return Ok(Key::hmac(alg, &jwk_bytes(obj, "k")?)?.with_kid(text("kid")));
            }
            Some(kty) => Asymmetric::from_jwk(kty, obj)?,
            None => return Err(Error::key("JWK lacks \"kty\"")),
        };
        Ok(Key::bind(material, declared)?.with_kid(text("kid")))
    }

    /// Generates a new key for `alg` with the caller's randomness (RSA: 2048 bits).
    pub fn generate(alg: Algorithm, rng: &mut impl CryptoRngCore) -> Result<Key, Error> {
        let material = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let len = match alg {
                    Algorithm::HS256 => 32,
                    Algorithm::HS384 => 48,
                    _ => 64,
                };
                let mut secret = vec![0u8; len];
                rng.fill_bytes(&mut secret);
                return Key::hmac(alg, &secret);
            }
            _ => Material::Public(Asymmetric::generate(alg, rng)?),
        };
        Ok(Key::assemble(None, alg, material))
    }

    fn bind(material: Asymmetric, expected: Option<Algorithm>) -> Result<Key, Error> {
        let alg = material.alg();
        if let Some(want) = expected {
            if want != alg {
                return Err(Error::key(format!("key is for {alg}, not {want}")));
            }
        }
        material.check_size()?;
        Ok(Key::assemble(None, alg, Material::Public(material)))
    }

    /// The same key with `kid` set (or cleared with `None`).
    pub fn with_kid(self, kid: Option<&str>) -> Key {
        Key::assemble(kid.map(str::to_owned), self.alg, self.material)
    }

    fn assemble(kid: Option<String>, alg: Algorithm, material: Material) -> Key {
        let mut header = json!({ "alg": alg.as_str(), "typ": "JWT" });
        if let (Some(kid), Some(obj)) = (&kid, header.as_object_mut()) {
            obj.insert("kid".into(), json!(kid));
        }
        let jws_header = b64_url(header.to_string().as_bytes());
        Key { kid, alg, material, primitive: None, jws_header }
    }

    /// The same key, its signing and verifying done by `primitive` (made for this key's
    /// algorithm, or refused). The key's material stays for [`Key::to_jwk`] and the rules
    /// the core applies around the primitive.
    pub fn with_primitive(mut self, primitive: Arc<dyn Primitive>) -> Result<Key, Error> {
        if primitive.alg() != self.alg {
            return Err(Error::key(format!("the primitive is for {}, the key for {}", primitive.alg(), self.alg)));
        }
        self.primitive = Some(primitive);
        Ok(self)
    }

    /// The same key with the primitive `provider` chooses for it, if any.
    pub fn provided_by(self, provider: &dyn Provider) -> Result<Key, Error> {
        match provider.primitive(&self)? {
            Some(primitive) => self.with_primitive(primitive),
            None => Ok(self),
        }
    }

    /// The JWS protected header that [`crate::schemes::jwt::sign`] writes for this key,
    /// base64url: `{"alg":…,"kid":…,"typ":"JWT"}` (members in this order, `kid` only when
    /// set). A token whose header is this text needs no header decoding to verify.
    pub(crate) fn jws_header(&self) -> &str {
        &self.jws_header
    }

    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key is for.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Whether the key can sign (a private key or an HMAC secret).
    pub fn is_private(&self) -> bool {
        match &self.material {
            Material::Hmac(..) => true,
            Material::Public(k) => k.is_private(),
        }
    }

    /// The public half, for distribution (an HMAC key has none).
    pub fn public_key(&self) -> Option<Key> {
        match &self.material {
            Material::Hmac(..) => None,
            Material::Public(k) => Some(Key::assemble(self.kid.clone(), self.alg, k.public())),
        }
    }

    /// Signs `message` (the JWS signing input).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        if let Some(primitive) = self.primitive.as_ref().filter(|_| self.is_private()) {
            return primitive.sign(message);
        }
        match &self.material {
            Material::Hmac(_, state) => Ok(state.tag(message)),
            Material::Public(k) => k.sign(message),
        }
    }

    /// Verifies `signature` over `message`; HMAC tags are compared in constant time. An
    /// error is the platform primitive's failure, never a verdict on the signature.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
        match &self.primitive {
            Some(primitive) => self.verify_with(primitive.as_ref(), message, signature),
            None => Ok(self.verify_here(message, signature)),
        }
    }

    /// [`Key::verify`] by a platform primitive, with the rules the pure-Rust code applies
    /// beyond the signature equation checked first, so both decide alike.
    fn verify_with(&self, primitive: &dyn Primitive, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
        match &self.material {
            Material::Hmac(..) => Ok(encoding::ct_eq(&primitive.sign(message)?, signature)),
            Material::Public(k) if !k.platform_may_verify(signature) => Ok(false),
            Material::Public(_) => primitive.verify(message, signature),
        }
    }

    /// [`Key::verify`] by the core's pure-Rust code.
    fn verify_here(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Hmac(_, state) => state.verify(message, signature),
            Material::Public(k) => k.verify(message, signature),
        }
    }

    /// The key as a JWK; private parts only when `include_private`.
    pub fn to_jwk(&self, include_private: bool) -> Value {
        let mut jwk = Map::new();
        let b = |bytes: &[u8]| Value::String(b64_url(bytes));
        match &self.material {
            Material::Hmac(secret, _) => {
                jwk.insert("kty".into(), json!("oct"));
                if include_private {
                    jwk.insert("k".into(), b(secret));
                }
            }
            Material::Public(k) => k.write_jwk(&mut jwk, include_private),
        }
        jwk.insert("alg".into(), json!(self.alg.as_str()));
        if let Some(kid) = &self.kid {
            jwk.insert("kid".into(), json!(kid));
        }
        Value::Object(jwk)
    }

    /// The key as PEM (PKCS#8 private or SPKI public); `None` for HMAC secrets.
    pub fn to_pem(&self) -> Option<String> {
        match &self.material {
            Material::Hmac(..) => None,
            Material::Public(k) => k.to_pem(),
        }
    }
}

/// The string member `name` of a JWK.
fn jwk_text<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str)
}

/// The base64url member `name` of a JWK, decoded.
fn jwk_bytes(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Error> {
    let v = jwk_text(obj, name).ok_or_else(|| Error::key(format!("JWK lacks \"{name}\"")))?;
    b64_url_decode(v).ok_or_else(|| Error::key(format!("JWK \"{name}\" is not base64url")))
}

/// Several keys; a token's `kid` chooses among them.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// A set of the given keys.
    pub fn new(keys: Vec<Key>) -> KeySet {
        KeySet { keys }
    }

    /// Loads a JWKS (`{"keys": [...]}`) or a single JWK.
    pub fn from_jwks(json: &Value) -> Result<KeySet, Error> {
        KeySet::jwks(json, Key::from_jwk)
    }

    /// Loads a JWKS or a single JWK whose keys are all for `alg` (see
    /// [`Key::from_jwk_with_alg`]).
    pub fn from_jwks_with_alg(json: &Value, alg: Algorithm) -> Result<KeySet, Error> {
        KeySet::jwks(json, |jwk| Key::from_jwk_with_alg(jwk, alg))
    }

    fn jwks(json: &Value, load: impl Fn(&Value) -> Result<Key, Error>) -> Result<KeySet, Error> {
        match json.get("keys").and_then(Value::as_array) {
            Some(list) => list.iter().map(load).collect::<Result<Vec<_>, _>>().map(KeySet::new),
            None if json.get("kty").is_some() => Ok(KeySet::new(vec![load(json)?])),
            None => Err(Error::key("neither a JWKS ({\"keys\": [...]}) nor a JWK")),
        }
    }

    /// The keys.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Adds a key.
    pub fn push(&mut self, key: Key) {
        self.keys.push(key);
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_types)] // tests bring their own randomness, as callers do
mod tests {
    use super::*;
    #[cfg(feature = "public-key")]
    use rand_core::OsRng;

    /// The RFC 7515 Appendix A.1 key: an `oct` JWK without `alg`, 64 bytes.
    const RFC7515_A1_JWK: &str =
        r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;

    #[test]
    fn hmac_keys_refuse_other_algorithms_and_empty_secrets() {
        assert!(Key::hmac(Algorithm::RS256, &[7; 32]).is_err());
        assert!(Key::hmac(Algorithm::HS256, b"").is_err());
        let key = Key::hmac(Algorithm::HS384, &[7; 48]).unwrap();
        let sig = key.sign(b"msg").unwrap();
        assert_eq!(sig.len(), 48);
        assert!(key.verify(b"msg", &sig).unwrap());
        assert!(!key.verify(b"msg2", &sig).unwrap());
    }

    /// Regression: secrets shorter than the hash were accepted (`b"secret"` for HS384).
    /// RFC 7518 3.2: the key MUST be at least the hash output size.
    #[test]
    fn hmac_secrets_shorter_than_the_hash_are_refused() {
        for (alg, min) in [(Algorithm::HS256, 32), (Algorithm::HS384, 48), (Algorithm::HS512, 64)] {
            let short = Key::hmac(alg, &vec![7; min - 1]).unwrap_err();
            assert_eq!(
                short,
                Error::key(format!(
                    "an {alg} secret must be at least {min} bytes (RFC 7518 section 3.2); this one has {}",
                    min - 1
                ))
            );
            assert_eq!(Key::hmac(alg, &vec![7; min]).unwrap().alg(), alg);
        }
    }

    /// Regression: an `oct` JWK without `alg` (RFC 7515 A.1) could not be loaded even when
    /// the configuration names the algorithm.
    #[test]
    fn jwk_without_alg_takes_the_configured_one() {
        let jwk: Value = serde_json::from_str(RFC7515_A1_JWK).unwrap();
        let key = Key::from_jwk_with_alg(&jwk, Algorithm::HS256).unwrap();
        assert_eq!(key.alg(), Algorithm::HS256);
        // RFC 7515 A.1's signing input and signature.
        let input = b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let signature = b64_url_decode("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert!(key.verify(input, &signature).unwrap());
        assert_eq!(Key::from_jwk_with_alg(&jwk, Algorithm::HS512).unwrap().alg(), Algorithm::HS512);
    }

    /// An asymmetric JWK without alg gets it from its type, which must agree.
    #[cfg(feature = "public-key")]
    #[test]
    fn asymmetric_jwk_without_alg_takes_its_type() {
        let ec = Key::generate(Algorithm::ES256, &mut OsRng).unwrap().public_key().unwrap();
        let mut ec_jwk = ec.to_jwk(false);
        ec_jwk.as_object_mut().unwrap().remove("alg");
        assert_eq!(Key::from_jwk_with_alg(&ec_jwk, Algorithm::ES256).unwrap().alg(), Algorithm::ES256);
        assert_eq!(
            Key::from_jwk_with_alg(&ec_jwk, Algorithm::EdDSA).unwrap_err(),
            Error::key("key is for ES256, not EdDSA")
        );
    }

    #[test]
    fn jwk_alg_must_agree_with_the_configured_one() {
        let jwk = json!({"kty": "oct", "alg": "HS256", "k": b64_url(&[7; 64])});
        assert_eq!(
            Key::from_jwk_with_alg(&jwk, Algorithm::HS512).unwrap_err(),
            Error::key("the JWK says \"alg\": \"HS256\" but the configuration says HS512")
        );
        assert_eq!(Key::from_jwk_with_alg(&jwk, Algorithm::HS256).unwrap().alg(), Algorithm::HS256);
        let oct_as_rsa = Key::from_jwk_with_alg(&json!({"kty": "oct", "k": b64_url(&[7; 64])}), Algorithm::RS256);
        assert!(oct_as_rsa.unwrap_err().to_string().contains("not an HMAC algorithm"));
    }

    #[cfg(feature = "public-key")]
    #[test]
    fn asymmetric_keys_round_trip_through_jwk_and_pem() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let key = Key::generate(alg, &mut OsRng).unwrap().with_kid(Some("k1"));
            let sig = key.sign(b"hello").unwrap();
            let public = Key::from_jwk(&key.public_key().unwrap().to_jwk(false)).unwrap();
            assert_eq!(public.kid(), Some("k1"));
            assert!(!public.is_private());
            assert!(public.verify(b"hello", &sig).unwrap());
            assert!(public.sign(b"x").is_err());
            let private = Key::from_jwk(&key.to_jwk(true)).unwrap();
            assert!(private.verify(b"hello", &private.sign(b"hello").unwrap()).unwrap());
            let from_pem = Key::from_pem(&key.to_pem().unwrap(), Some(alg)).unwrap();
            assert!(from_pem.verify(b"hello", &sig).unwrap());
            let pub_pem = Key::from_pem(&public.to_pem().unwrap(), None).unwrap();
            assert_eq!(pub_pem.alg(), alg);
        }
    }

    #[cfg(feature = "public-key")]
    #[test]
    fn private_rsa_jwk_carries_every_crt_member() {
        let key = Key::generate(Algorithm::RS256, &mut OsRng).unwrap();
        let jwk = key.to_jwk(true);
        for member in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(member).is_some(), "missing {member}");
        }
        let back = Key::from_jwk(&jwk).unwrap();
        assert!(key.verify(b"m", &back.sign(b"m").unwrap()).unwrap());
    }

    /// Regression (found by tests/no_panic.rs): inconsistent RSA private components made
    /// the `rsa` crate panic during import, which in wasm would poison the isolate.
    #[cfg(feature = "public-key")]
    #[test]
    fn inconsistent_rsa_private_jwks_are_errors_not_panics() {
        let b = |bytes: &[u8]| Value::String(b64_url(bytes));
        for (n, d, p, q) in [
            (&[0x0b][..], &[0x05][..], &[0x01][..], &[0x0b][..]),
            (&[0xc5, 0x01], &[0x07], &[0x0d], &[0x0d]),
            (&[0x8f], &[0xff, 0xff], &[0x0b], &[0x0d]),
            (&[0x00], &[0x00], &[0x00], &[0x00]),
        ] {
            let jwk = json!({"kty": "RSA", "n": b(n), "e": b(&[1, 0, 1]), "d": b(d), "p": b(p), "q": b(q)});
            assert!(Key::from_jwk(&jwk).is_err(), "{jwk}");
        }
        // The input the property test found: d present but empty, no primes; `rsa` then
        // tried to recover the primes and underflowed.
        let found = json!({"kty": "RSA", "alg": "HS256", "e": "AaaAAQ", "d": "",
            "n": "0_aa_--0-aa0aA_000a_AA0a-a0_a0A_-A-A0_A___0A_a0A_a-AaAAa0aA00w"});
        assert!(Key::from_jwk(&found).is_err());
    }

    #[cfg(feature = "public-key")]
    #[test]
    fn pem_algorithm_must_agree() {
        let key = Key::generate(Algorithm::ES256, &mut OsRng).unwrap();
        let err = Key::from_pem(&key.to_pem().unwrap(), Some(Algorithm::EdDSA)).unwrap_err();
        assert!(err.to_string().contains("ES256"), "{err}");
        assert!(Key::from_pem("hello", None).is_err());
    }

    #[test]
    fn jwk_errors_are_specific() {
        let no_alg = Key::from_jwk(&json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap_err();
        assert!(no_alg.to_string().contains("alg"), "{no_alg}");
        #[cfg(feature = "public-key")]
        {
            let curve = Key::from_jwk(&json!({"kty": "EC", "crv": "P-384", "x": "", "y": ""})).unwrap_err();
            assert!(curve.to_string().contains("P-256"), "{curve}");
        }
        assert!(KeySet::from_jwks(&json!({"nope": 1})).is_err());
        let debug = format!("{:?}", Key::hmac(Algorithm::HS256, b"topsecret, and long enough for HS256").unwrap());
        assert!(!debug.contains("topsecret"));
    }

    /// Without the `public-key` feature every public-key key is refused as an invalid key,
    /// whichever way it comes, and says why.
    #[cfg(not(feature = "public-key"))]
    #[test]
    fn public_key_keys_are_refused_without_the_feature() {
        let why = |e: Error| {
            assert_eq!(e.code(), "invalid_key");
            assert!(e.to_string().contains("HMAC keys only"), "{e}");
        };
        why(Key::from_pem("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----", None).unwrap_err());
        for kty in ["RSA", "EC", "OKP"] {
            why(Key::from_jwk(&json!({"kty": kty, "crv": "P-256", "x": "", "y": "", "n": "", "e": ""})).unwrap_err());
        }
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            why(Key::generate(alg, &mut rand_core::OsRng).unwrap_err());
        }
        assert!(Key::generate(Algorithm::HS256, &mut rand_core::OsRng).is_ok());
    }
}
