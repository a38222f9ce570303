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

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::claims::{NumericDate, PlaybackClaims};
use crate::denial::{Denial, Error, SignatureExplanation};
use crate::encoding::{b64_url, b64_url_decode};
use crate::grant::{Grant, Scope, Validity};
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

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

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
        let header: Header = serde_json::from_slice(&decode_json(h, "header")?)
            .map_err(|e| Denial::malformed(format!("header: {e}")))?;
        if header.crit.is_some() {
            return Err(Denial::malformed("header lists critical extensions (crit), none are supported"));
        }
        let alg = Algorithm::parse(&header.alg).ok_or_else(|| Denial::AlgNotAllowed { alg: header.alg.clone() })?;
        // A `kid` picks the keys named so; keys configured without a kid serve any token
        // (a single PEM key, say). Either way the key's own algorithm must match.
        let keys = self.keys.keys();
        let candidates: Vec<&Key> = match &header.kid {
            Some(kid) => {
                let named: Vec<&Key> = keys.iter().filter(|k| k.kid() == Some(kid.as_str())).collect();
                if named.is_empty() {
                    keys.iter().filter(|k| k.kid().is_none()).collect()
                } else {
                    named
                }
            }
            None => keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(Denial::UnknownKey { kid: header.kid.clone() });
        }
        let usable: Vec<&Key> = candidates.into_iter().filter(|k| k.alg() == alg).collect();
        if usable.is_empty() {
            return Err(Denial::AlgNotAllowed { alg: header.alg });
        }
        let signature = decode_json(s, "signature")?;
        let signing_input = token.get(..h.len() + 1 + p.len()).unwrap_or("");
        if !usable.iter().any(|k| k.verify(signing_input.as_bytes(), &signature)) {
            return Err(Denial::BadSignature {
                explanation: Some(SignatureExplanation {
                    tried: vec![signing_input.to_owned()],
                    recipe: format!("{alg}(key, base64url(header) + \".\" + base64url(payload))"),
                }),
            });
        }
        let payload = String::from_utf8(decode_json(p, "payload")?)
            .map_err(|_| Denial::malformed("payload is not UTF-8 JSON"))?;
        let claims: PlaybackClaims =
            serde_json::from_str(&payload).map_err(|e| Denial::malformed(format!("claims: {e}")))?;
        self.check_registered(&claims)?;
        Ok(grant_from(claims, &canonical(signing_input), payload, self.leeway))
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

/// The canonical form of a JWT with `signing_input` (see the module docs).
fn canonical(signing_input: &str) -> String {
    format!("jwt:{signing_input}")
}

/// The canonical form of a JWT and its claims, from its text alone. UNVERIFIED.
pub(crate) fn canonical_unverified(token: &str) -> Result<(String, Value), Denial> {
    let token = token.trim();
    let decoded = decode_unverified(token)?;
    let [h, p, s] = split(token)?;
    decode_json(s, "signature")?;
    Ok((canonical(&format!("{h}.{p}")), decoded.claims))
}

fn grant_from(claims: PlaybackClaims, canonical: &str, payload: String, leeway: u32) -> Grant {
    let mut grant = Grant::new(SchemeKind::Jwt, canonical, payload);
    grant.validity = Validity { not_before: claims.nbf.map(|d| d.0), expires_at: claims.exp.map(|d| d.0), leeway };
    grant.scope = match claims.streams {
        Some(streams) => Scope::Streams(streams),
        None => Scope::Any,
    };
    grant.subject = claims.sub;
    grant.token_id = claims.jti;
    grant.ip_binding = claims.ip;
    grant.purpose = claims.purpose.unwrap_or_default();
    grant.max_sessions = claims.max_sessions;
    grant.referrers = claims.referrers.unwrap_or_default();
    grant.allow_no_referrer = claims.allow_no_referrer;
    grant.user_agents = claims.user_agents.unwrap_or_default();
    grant.access_rules = claims.access_rules.unwrap_or_default();
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
    let mut header = json!({ "alg": key.alg().as_str(), "typ": "JWT" });
    if let (Some(kid), Some(obj)) = (key.kid(), header.as_object_mut()) {
        obj.insert("kid".into(), json!(kid));
    }
    let payload = serde_json::to_vec(claims).map_err(|e| Error::input("claims", e.to_string()))?;
    let mut token = format!("{}.{}", b64_url(header.to_string().as_bytes()), b64_url(&payload));
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
