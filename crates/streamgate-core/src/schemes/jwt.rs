//! streamgate playback JWT (RFC 7519, JWS compact serialization).
//!
//! Verification order: size, shape, header, key choice (by `kid`, then by the key's
//! configured algorithm), signature, then claims. Claims are parsed once into
//! [`PlaybackClaims`]; expiry and all other checks are the policy engine's.
//!
//! Identity: the canonical form ([`Grant::credential`]) is `jwt:` and the signing input,
//! `header.payload`, without the signature. Header and payload are strict base64url (no
//! padding, no whitespace inside, no other alphabet, zero spare bits), so the signed
//! content has one spelling, and whitespace around a token is trimmed. The signature is
//! left out rather than its spellings refused: an ES256 signature `(r, s)` has a twin
//! `(r, n - s)` that verifies too. RFC 7518 does not forbid high-S, and WebCrypto-based
//! signers (jose in browsers and Node) do not normalize it, so refusing high-S would
//! refuse about half of their tokens; one signed content is one token whatever its
//! signature.

use std::borrow::Cow;

use core::fmt;
use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::claims::{NumericDate, PlaybackClaims};
use crate::denial::{Denial, Error, SignatureExplanation};
use crate::encoding::{b64_url, b64_url_decode, b64_url_decode_small};
use crate::grant::{oversized_identity, Grant, Scope, Validity};
use crate::keys::{Algorithm, Key, KeySet};
use crate::policy::RequestFacts;
use crate::schemes::{Scheme, SchemeKind, MAX_CREDENTIAL_BYTES};
use crate::timestamp::check_seconds;

/// Verifier settings for playback JWTs.
#[derive(Clone, Debug)]
pub struct JwtScheme {
    /// The keys; each is bound to its algorithm.
    pub keys: KeySet,
    /// Clock skew forgiven for `exp`/`nbf`, seconds.
    pub leeway: u32,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Required audience (must be in `aud`), if any.
    pub audience: Option<String>,
    /// Whether a token without `exp` is refused (default: yes).
    pub require_exp: bool,
}

impl JwtScheme {
    /// A verifier with `keys`, 30 s leeway, `exp` required.
    pub fn new(keys: KeySet) -> JwtScheme {
        JwtScheme { keys, leeway: 30, issuer: None, audience: None, require_exp: true }
    }
}

/// The header members verification reads, borrowed from the decoded header where they
/// hold no escapes. Other members are ignored; `crit` is only tested for presence.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Text<'a>,
    #[serde(default, borrow)]
    kid: Option<Text<'a>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// A JSON string, borrowed from the input unless it holds escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
        }
        deserializer.deserialize_str(TextVisitor).map(Text)
    }
}

/// Decoded JWS headers up to this size are decoded on the stack.
const HEADER_BUFFER: usize = 256;
/// Payloads up to this size are decoded on the stack.
const PAYLOAD_BUFFER: usize = 512;
/// Signatures up to this size (HMAC, ES256, EdDSA) are decoded on the stack.
const SIGNATURE_BUFFER: usize = 128;

/// The parts of a compact JWS, decoded but not verified.
pub struct Decoded {
    /// The decoded header.
    pub header: Value,
    /// The decoded claims.
    pub claims: Value,
}

fn split(token: &str) -> Result<[&str; 3], Denial> {
    if token.len() > MAX_CREDENTIAL_BYTES {
        return Err(Denial::malformed(format!(
            "token is {} bytes, over the {MAX_CREDENTIAL_BYTES}-byte limit",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok([h, p, s]),
        _ => Err(Denial::malformed("a JWT has exactly three dot-separated parts")),
    }
}

fn decode_json(part: &str, what: &str) -> Result<Vec<u8>, Denial> {
    b64_url_decode(part).ok_or_else(|| Denial::malformed(format!("{what} is not unpadded base64url")))
}

/// [`decode_json`] into `buf` when the part fits there.
fn decode_small<'b>(part: &str, buf: &'b mut [u8], what: &str) -> Result<Cow<'b, [u8]>, Denial> {
    b64_url_decode_small(part, buf).ok_or_else(|| Denial::malformed(format!("{what} is not unpadded base64url")))
}

/// Decodes a JWT without verifying anything. UNVERIFIED: never base a decision on it.
pub fn decode_unverified(token: &str) -> Result<Decoded, Denial> {
    let [h, p, _] = split(token.trim())?;
    let parse = |part: &str, what: &str| -> Result<Value, Denial> {
        serde_json::from_slice(&decode_json(part, what)?)
            .map_err(|e| Denial::malformed(format!("{what} is not JSON: {e}")))
    };
    Ok(Decoded { header: parse(h, "header")?, claims: parse(p, "payload")? })
}

impl Scheme for JwtScheme {
    fn kind(&self) -> SchemeKind {
        SchemeKind::Jwt
    }

    fn verify(&self, token: &str, _facts: &RequestFacts) -> Result<Grant, Denial> {
        let token = token.trim();
        let [h, p, s] = split(token)?;
        let keys = self.keys.keys();
        let (mut header_buffer, header_json, header);
        let (alg, kid) = match keys.iter().find(|k| k.jws_header() == h) {
            // The header this library writes for one of the keys: its content is known.
            Some(key) => (key.alg(), key.kid()),
            None => {
                header_buffer = [0u8; HEADER_BUFFER];
                header_json = decode_small(h, &mut header_buffer, "header")?;
                header = serde_json::from_slice::<Header<'_>>(&header_json)
                    .map_err(|e| Denial::malformed(format!("header: {e}")))?;
                if header.crit.is_some() {
                    return Err(Denial::malformed("header lists critical extensions (crit), none are supported"));
                }
                let alg = Algorithm::parse(&header.alg.0)
                    .ok_or_else(|| Denial::AlgNotAllowed { alg: header.alg.0.to_string() })?;
                (alg, header.kid.as_ref().map(|k| k.0.as_ref()))
            }
        };
        // A `kid` picks the keys named so; keys configured without a kid serve any token
        // (a single PEM key, say). Either way the key's own algorithm must match.
        let named = kid.is_some() && keys.iter().any(|k| k.kid() == kid);
        let candidate = |k: &Key| match kid {
            Some(_) if named => k.kid() == kid,
            Some(_) => k.kid().is_none(),
            None => true,
        };
        if !keys.iter().any(candidate) {
            return Err(Denial::UnknownKey { kid: kid.map(str::to_owned) });
        }
        let usable = || keys.iter().filter(|k| candidate(k) && k.alg() == alg);
        if usable().next().is_none() {
            return Err(Denial::AlgNotAllowed { alg: alg.as_str().to_owned() });
        }
        let mut signature_buffer = [0u8; SIGNATURE_BUFFER];
        let signature = decode_small(s, &mut signature_buffer, "signature")?;
        let signing_input = token.get(..h.len() + 1 + p.len()).unwrap_or("");
        // A platform primitive's failure counts as no match (fail closed) and is named.
        let mut failure = None;
        let verified = usable().any(|k| {
            k.verify(signing_input.as_bytes(), &signature).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                false
            })
        });
        if !verified {
            let mut recipe = format!("{alg}(key, base64url(header) + \".\" + base64url(payload))");
            if let Some(e) = failure {
                recipe = format!("{recipe}; not checked, the platform's crypto failed: {e}");
            }
            return Err(Denial::BadSignature {
                explanation: Some(SignatureExplanation { tried: vec![signing_input.to_owned()], recipe }),
            });
        }
        let mut payload_buffer = [0u8; PAYLOAD_BUFFER];
        let payload = decode_small(p, &mut payload_buffer, "payload")?;
        let payload = std::str::from_utf8(&payload).map_err(|_| Denial::malformed("payload is not UTF-8 JSON"))?;
        // The grant decodes the payload again when its claims are asked for.
        let mut claims = PlaybackClaims::default();
        claims.read_json(payload).map_err(|e| Denial::malformed(format!("claims: {e}")))?;
        self.check_registered(&claims)?;
        Ok(grant_from(&mut claims, canonical(signing_input), self.leeway))
    }
}

impl JwtScheme {
    fn check_registered(&self, claims: &PlaybackClaims) -> Result<(), Denial> {
        if self.require_exp && claims.exp.is_none() {
            return Err(Denial::malformed("token has no exp; playback tokens must expire"));
        }
        if let Some(want) = &self.issuer {
            if claims.iss.as_deref() != Some(want.as_str()) {
                return Err(Denial::ForeignToken {
                    claim: "iss",
                    expected: want.clone(),
                    found: format!("{:?}", claims.iss),
                });
            }
        }
        if let Some(want) = &self.audience {
            if !claims.aud.as_ref().is_some_and(|a| a.contains(want)) {
                return Err(Denial::ForeignToken {
                    claim: "aud",
                    expected: want.clone(),
                    found: format!("{:?}", claims.aud),
                });
            }
        }
        Ok(())
    }
}

/// What a JWT's canonical form starts with.
const CANONICAL_PREFIX: &str = "jwt:";

/// The canonical form of a JWT with `signing_input` (see the module docs).
fn canonical(signing_input: &str) -> String {
    let mut out = String::with_capacity(CANONICAL_PREFIX.len() + signing_input.len());
    out.push_str(CANONICAL_PREFIX);
    out.push_str(signing_input);
    out
}

/// The payload (the claims' JSON text) inside a JWT's [`canonical`] form, if it reads as
/// base64url of UTF-8.
pub(crate) fn payload_in_canonical(canonical: &str) -> Option<String> {
    let (_, payload) = canonical.strip_prefix(CANONICAL_PREFIX)?.split_once('.')?;
    String::from_utf8(b64_url_decode(payload)?).ok()
}

/// The canonical form of a JWT and its claims, from its text alone. UNVERIFIED.
pub(crate) fn canonical_unverified(token: &str) -> Result<(String, Value), Denial> {
    let token = token.trim();
    let decoded = decode_unverified(token)?;
    let [h, p, s] = split(token)?;
    decode_json(s, "signature")?;
    Ok((canonical(&format!("{h}.{p}")), decoded.claims))
}

/// The grant of verified `claims`, whose members it takes.
fn grant_from(claims: &mut PlaybackClaims, canonical: String, leeway: u32) -> Grant {
    use std::mem::take;
    let mut grant = Grant::jwt(canonical);
    grant.validity = Validity { not_before: claims.nbf.map(|d| d.0), expires_at: claims.exp.map(|d| d.0), leeway };
    grant.scope = match take(&mut claims.streams) {
        Some(streams) => Scope::Streams(streams),
        None => Scope::Any,
    };
    grant.subject = take(&mut claims.sub);
    grant.token_id = take(&mut claims.jti);
    grant.ip_binding = claims.ip;
    grant.purpose = claims.purpose.unwrap_or_default();
    grant.max_sessions = claims.max_sessions;
    grant.referrers = take(&mut claims.referrers).unwrap_or_default();
    grant.allow_no_referrer = claims.allow_no_referrer;
    grant.user_agents = take(&mut claims.user_agents).unwrap_or_default();
    grant.access_rules = take(&mut claims.access_rules).unwrap_or_default();
    grant
}

/// Signs `claims` with `key`. Time claims must be whole seconds in a sane range; the
/// header carries the key's algorithm and `kid`.
pub fn sign(claims: &PlaybackClaims, key: &Key) -> Result<String, Error> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => sign_json(&map, key),
        _ => Err(Error::input("claims", "claims do not serialize to a JSON object")),
    }
}

/// Signs a claims object that may hold claims of the application's own besides the
/// playback claims; those are checked as [`PlaybackClaims`] first and signed as given.
pub fn sign_json(claims: &Map<String, Value>, key: &Key) -> Result<String, Error> {
    let typed: PlaybackClaims =
        serde_json::from_value(Value::Object(claims.clone())).map_err(|e| Error::input("claims", e.to_string()))?;
    for (name, value) in [("exp", typed.exp), ("nbf", typed.nbf), ("iat", typed.iat)] {
        if let Some(NumericDate(v)) = value {
            check_seconds(name, v)?;
        }
        // Signed time claims are integers, whatever the caller passed.
        if claims.get(name).is_some_and(|v| !v.is_i64() && !v.is_u64()) {
            return Err(Error::input(name, "must be whole seconds (an integer)"));
        }
    }
    if let Some((claim, why)) = oversized_identity(typed.sub.as_deref(), typed.jti.as_deref()) {
        return Err(Error::input(claim, why));
    }
    if let (Some(nbf), Some(exp)) = (typed.nbf, typed.exp) {
        if exp <= nbf {
            return Err(Error::input("exp", "expires before it becomes valid (exp <= nbf)"));
        }
    }
    if let Some(streams) = &typed.streams {
        if streams.iter().any(|s| s.trim_matches('/').is_empty()) {
            return Err(Error::input("streams", "an empty stream pattern would match nothing"));
        }
    }
    let payload = serde_json::to_vec(claims).map_err(|e| Error::input("claims", e.to_string()))?;
    let mut token = format!("{}.{}", key.jws_header(), b64_url(&payload));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&b64_url(&signature));
    if token.len() > MAX_CREDENTIAL_BYTES {
        return Err(Error::input(
            "claims",
            format!("token would be {} bytes, over the {MAX_CREDENTIAL_BYTES}-byte limit", token.len()),
        ));
    }
    Ok(token)
}
