//! RS256, ES256 and EdDSA keys, with PEM import and export: the `public-key` feature.
//! Without it, `hmac_only.rs` stands in and only HMAC keys load.

use p256::ecdsa::signature::{Signer, Verifier};
use rand_core::CryptoRngCore;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BigUint;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::{jwk_bytes, jwk_text, Algorithm, Material, MIN_RSA_BITS};
use crate::denial::Error;
use crate::encoding::b64_url;

mod ed25519;

/// The material of a public-key algorithm's key, private or public.
#[derive(Clone)]
pub(super) enum Asymmetric {
    RsaPrivate(Box<rsa::RsaPrivateKey>),
    RsaPublic(Box<rsa::RsaPublicKey>),
    EcPrivate(p256::ecdsa::SigningKey),
    EcPublic(p256::ecdsa::VerifyingKey),
    EdPrivate(Box<ed25519_dalek::SigningKey>),
    EdPublic(ed25519_dalek::VerifyingKey),
}

impl Asymmetric {
    /// Reads a PEM key (see [`super::Key::from_pem`]).
    pub(super) fn from_pem(pem: &str) -> Result<Asymmetric, Error> {
        Ok(if pem.contains("-----BEGIN PRIVATE KEY-----") {
            if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
                Asymmetric::EcPrivate(k)
            } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
                Asymmetric::EdPrivate(Box::new(k))
            } else {
                Asymmetric::RsaPrivate(Box::new(rsa_private_from_pem(pem)?))
            }
        } else if pem.contains("-----BEGIN PUBLIC KEY-----") {
            if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
                Asymmetric::EcPublic(k)
            } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
                Asymmetric::EdPublic(k)
            } else {
                let k = rsa::RsaPublicKey::from_public_key_pem(pem)
                    .map_err(|e| Error::key(format!("unsupported or damaged public key: {e}")))?;
                Asymmetric::RsaPublic(Box::new(k))
            }
        } else if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            Asymmetric::RsaPrivate(Box::new(rsa_private_from_pem(pem)?))
        } else if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            let k = p256::SecretKey::from_sec1_pem(pem)
                .map_err(|e| Error::key(format!("unsupported or damaged EC key (only P-256): {e}")))?;
            Asymmetric::EcPrivate(k.into())
        } else {
            return Err(Error::key("not a PEM key (no PRIVATE KEY / PUBLIC KEY block)"));
        })
    }

    /// Reads a JWK of type `kty` other than `oct`: `RSA`, `EC` (P-256) or `OKP` (Ed25519).
    pub(super) fn from_jwk(kty: &str, obj: &Map<String, Value>) -> Result<Asymmetric, Error> {
        let bytes = |name: &str| jwk_bytes(obj, name);
        Ok(match kty {
            "RSA" => {
                let n = BigUint::from_bytes_be(&bytes("n")?);
                let e = BigUint::from_bytes_be(&bytes("e")?);
                if obj.contains_key("d") {
                    let (d, p, q) = (bytes("d")?, bytes("p")?, bytes("q")?);
                    let k = rsa_private_from_parts(&n.to_bytes_be(), &e.to_bytes_be(), &d, &p, &q)?;
                    Asymmetric::RsaPrivate(Box::new(k))
                } else {
                    let k = rsa::RsaPublicKey::new(n, e).map_err(|e| Error::key(format!("bad RSA JWK: {e}")))?;
                    Asymmetric::RsaPublic(Box::new(k))
                }
            }
            "EC" => {
                if jwk_text(obj, "crv") != Some("P-256") {
                    return Err(Error::key("only EC keys on P-256 are supported"));
                }
                if obj.contains_key("d") {
                    let k = p256::ecdsa::SigningKey::from_slice(&bytes("d")?)
                        .map_err(|_| Error::key("bad P-256 private key"))?;
                    Asymmetric::EcPrivate(k)
                } else {
                    let (x, y) = (bytes("x")?, bytes("y")?);
                    if x.len() != 32 || y.len() != 32 {
                        return Err(Error::key("P-256 coordinates must be 32 bytes"));
                    }
                    let mut sec1 = vec![0x04];
                    sec1.extend_from_slice(&x);
                    sec1.extend_from_slice(&y);
                    let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                        .map_err(|_| Error::key("P-256 point is not on the curve"))?;
                    Asymmetric::EcPublic(k)
                }
            }
            "OKP" => {
                if jwk_text(obj, "crv") != Some("Ed25519") {
                    return Err(Error::key("only OKP keys on Ed25519 are supported"));
                }
                let fixed = |v: Vec<u8>| -> Result<[u8; 32], Error> {
                    v.try_into().map_err(|_| Error::key("Ed25519 keys are 32 bytes"))
                };
                if obj.contains_key("d") {
                    let k = ed25519_dalek::SigningKey::from_bytes(&fixed(bytes("d")?)?);
                    Asymmetric::EdPrivate(Box::new(k))
                } else {
                    let k = ed25519_dalek::VerifyingKey::from_bytes(&fixed(bytes("x")?)?)
                        .map_err(|_| Error::key("bad Ed25519 public key"))?;
                    Asymmetric::EdPublic(k)
                }
            }
            other => return Err(Error::key(format!("JWK kty {other:?} is not supported"))),
        })
    }

    /// A new private key for a public-key `alg` (RSA: 2048 bits).
    pub(super) fn generate(alg: Algorithm, rng: &mut impl CryptoRngCore) -> Result<Asymmetric, Error> {
        Ok(match alg {
            Algorithm::RS256 => {
                let k = rsa::RsaPrivateKey::new(rng, MIN_RSA_BITS)
                    .map_err(|e| Error::key(format!("RSA generation failed: {e}")))?;
                Asymmetric::RsaPrivate(Box::new(k))
            }
            Algorithm::ES256 => Asymmetric::EcPrivate(p256::ecdsa::SigningKey::random(rng)),
            Algorithm::EdDSA => {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                Asymmetric::EdPrivate(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            hmac => return Err(Error::key(format!("{hmac} is not a public-key algorithm"))),
        })
    }

    /// The one algorithm the key type allows.
    pub(super) fn alg(&self) -> Algorithm {
        match self {
            Asymmetric::RsaPrivate(_) | Asymmetric::RsaPublic(_) => Algorithm::RS256,
            Asymmetric::EcPrivate(_) | Asymmetric::EcPublic(_) => Algorithm::ES256,
            Asymmetric::EdPrivate(_) | Asymmetric::EdPublic(_) => Algorithm::EdDSA,
        }
    }

    /// Refuses RSA keys below [`MIN_RSA_BITS`].
    pub(super) fn check_size(&self) -> Result<(), Error> {
        let bits = match self {
            Asymmetric::RsaPrivate(k) => k.size() * 8,
            Asymmetric::RsaPublic(k) => k.size() * 8,
            _ => return Ok(()),
        };
        if bits < MIN_RSA_BITS {
            return Err(Error::key(format!("RSA key of {bits} bits is too small (minimum {MIN_RSA_BITS})")));
        }
        Ok(())
    }

    /// Whether this is a private key.
    pub(super) fn is_private(&self) -> bool {
        matches!(self, Asymmetric::RsaPrivate(_) | Asymmetric::EcPrivate(_) | Asymmetric::EdPrivate(_))
    }

    /// The public half, as a key's material.
    pub(super) fn public(&self) -> Material {
        Material::Public(match self {
            Asymmetric::RsaPrivate(k) => Asymmetric::RsaPublic(Box::new(k.to_public_key())),
            Asymmetric::EcPrivate(k) => Asymmetric::EcPublic(*k.verifying_key()),
            Asymmetric::EdPrivate(k) => Asymmetric::EdPublic(k.verifying_key()),
            public => public.clone(),
        })
    }

    /// The JWS signature of `message`.
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        match self {
            Asymmetric::RsaPrivate(k) => {
                let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone());
                let sig: rsa::pkcs1v15::Signature = signer.sign(message);
                Ok(rsa::signature::SignatureEncoding::to_vec(&sig))
            }
            Asymmetric::EcPrivate(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                Ok(sig.to_bytes().to_vec())
            }
            Asymmetric::EdPrivate(k) => Ok(k.sign(message).to_bytes().to_vec()),
            _ => Err(Error::key("a public key cannot sign")),
        }
    }

    /// Whether `signature` over `message` verifies, by the pure-Rust code.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Asymmetric::RsaPrivate(k) => rsa_verify(&k.to_public_key(), message, signature),
            Asymmetric::RsaPublic(k) => rsa_verify(k, message, signature),
            Asymmetric::EcPrivate(k) => ec_verify(k.verifying_key(), message, signature),
            Asymmetric::EcPublic(k) => ec_verify(k, message, signature),
            Asymmetric::EdPrivate(k) => ed_verify(&k.verifying_key(), message, signature),
            Asymmetric::EdPublic(k) => ed_verify(k, message, signature),
        }
    }

    /// Whether `signature` passes the rules the pure-Rust code applies beyond the signature
    /// equation, checked before a platform primitive verifies it, so both decide alike.
    pub(super) fn platform_may_verify(&self, signature: &[u8]) -> bool {
        match self {
            Asymmetric::EcPrivate(_) | Asymmetric::EcPublic(_) => signature.len() == 64,
            Asymmetric::EdPrivate(k) => ed25519::strict(&k.verifying_key(), signature),
            Asymmetric::EdPublic(k) => ed25519::strict(k, signature),
            Asymmetric::RsaPrivate(_) | Asymmetric::RsaPublic(_) => true,
        }
    }

    /// Writes the key's JWK members; private parts only when `include_private`.
    pub(super) fn write_jwk(&self, jwk: &mut Map<String, Value>, include_private: bool) {
        let b = |bytes: &[u8]| Value::String(b64_url(bytes));
        match self {
            Asymmetric::RsaPrivate(k) => {
                rsa_public_jwk(jwk, &k.to_public_key());
                if include_private {
                    jwk.insert("d".into(), b(&k.d().to_bytes_be()));
                    // RFC 7518 6.3.2: with any of p, q, dp, dq, qi present, all must be.
                    if let ([p, q], Some(dp), Some(dq), Some(qi)) = (k.primes(), k.dp(), k.dq(), k.crt_coefficient()) {
                        for (name, value) in [("p", p), ("q", q), ("dp", dp), ("dq", dq), ("qi", &qi)] {
                            jwk.insert(name.into(), b(&value.to_bytes_be()));
                        }
                    }
                }
            }
            Asymmetric::RsaPublic(k) => rsa_public_jwk(jwk, k),
            Asymmetric::EcPrivate(k) => {
                ec_public_jwk(jwk, k.verifying_key());
                if include_private {
                    jwk.insert("d".into(), b(&k.to_bytes()));
                }
            }
            Asymmetric::EcPublic(k) => ec_public_jwk(jwk, k),
            Asymmetric::EdPrivate(k) => {
                ed_public_jwk(jwk, &k.verifying_key());
                if include_private {
                    jwk.insert("d".into(), b(k.as_bytes()));
                }
            }
            Asymmetric::EdPublic(k) => ed_public_jwk(jwk, k),
        }
    }

    /// The key as PEM: PKCS#8 private or SPKI public.
    pub(super) fn to_pem(&self) -> Option<String> {
        match self {
            Asymmetric::RsaPrivate(k) => k.to_pkcs8_pem(LineEnding::LF).ok().map(|z| z.to_string()),
            Asymmetric::RsaPublic(k) => k.to_public_key_pem(LineEnding::LF).ok(),
            Asymmetric::EcPrivate(k) => k.to_pkcs8_pem(LineEnding::LF).ok().map(|z| z.to_string()),
            Asymmetric::EcPublic(k) => k.to_public_key_pem(LineEnding::LF).ok(),
            Asymmetric::EdPrivate(k) => k.to_pkcs8_pem(LineEnding::LF).ok().map(|z| z.to_string()),
            Asymmetric::EdPublic(k) => k.to_public_key_pem(LineEnding::LF).ok(),
        }
    }
}

/// Builds an RSA private key only from components that cannot make the `rsa` crate panic
/// (it assumes consistent inputs; a panic in wasm would poison the isolate): both primes,
/// each above 1, multiplying to `n`, and `1 < d < n`, `e > 1`; then `rsa`'s own checks.
fn rsa_private_from_parts(n: &[u8], e: &[u8], d: &[u8], p: &[u8], q: &[u8]) -> Result<rsa::RsaPrivateKey, Error> {
    let [n, e, d, p, q] = [n, e, d, p, q].map(BigUint::from_bytes_be);
    let one = BigUint::from(1u8);
    let consistent = p > one && q > one && &p * &q == n && d > one && d < n && e > one && e < n;
    if !consistent {
        return Err(Error::key("RSA private key components are inconsistent (p*q != n, or d/e out of range)"));
    }
    let key = rsa::RsaPrivateKey::from_components(n, e, d, vec![p, q])
        .map_err(|e| Error::key(format!("bad RSA private key: {e}")))?;
    key.validate().map_err(|e| Error::key(format!("bad RSA private key: {e}")))?;
    Ok(key)
}

/// Reads a PKCS#8 or PKCS#1 RSA private key through [`rsa_private_from_parts`].
fn rsa_private_from_pem(pem: &str) -> Result<rsa::RsaPrivateKey, Error> {
    use rsa::pkcs1::der::{Decode, SecretDocument};
    let damaged = |e: &dyn core::fmt::Display| Error::key(format!("unsupported or damaged RSA key: {e}"));
    let (label, document) = SecretDocument::from_pem(pem).map_err(|e| damaged(&e))?;
    let pkcs1_der = match label {
        "PRIVATE KEY" => {
            let info = rsa::pkcs8::PrivateKeyInfo::from_der(document.as_bytes()).map_err(|e| damaged(&e))?;
            if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
                return Err(Error::key("PKCS#8 key is not an RSA key"));
            }
            info.private_key.to_vec()
        }
        "RSA PRIVATE KEY" => document.as_bytes().to_vec(),
        other => return Err(Error::key(format!("unexpected PEM label {other:?}"))),
    };
    let k = rsa::pkcs1::RsaPrivateKey::from_der(&pkcs1_der).map_err(|e| damaged(&e))?;
    rsa_private_from_parts(
        k.modulus.as_bytes(),
        k.public_exponent.as_bytes(),
        k.private_exponent.as_bytes(),
        k.prime1.as_bytes(),
        k.prime2.as_bytes(),
    )
}

fn rsa_verify(key: &rsa::RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone());
    rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|sig| verifier.verify(message, &sig).is_ok())
}

fn ec_verify(key: &p256::ecdsa::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    p256::ecdsa::Signature::from_slice(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
}

fn ed_verify(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    ed25519_dalek::Signature::from_slice(signature).is_ok_and(|sig| key.verify_strict(message, &sig).is_ok())
}

fn rsa_public_jwk(jwk: &mut Map<String, Value>, k: &rsa::RsaPublicKey) {
    jwk.insert("kty".into(), json!("RSA"));
    jwk.insert("n".into(), Value::String(b64_url(&k.n().to_bytes_be())));
    jwk.insert("e".into(), Value::String(b64_url(&k.e().to_bytes_be())));
}

fn ec_public_jwk(jwk: &mut Map<String, Value>, k: &p256::ecdsa::VerifyingKey) {
    let point = k.to_encoded_point(false);
    jwk.insert("kty".into(), json!("EC"));
    jwk.insert("crv".into(), json!("P-256"));
    if let (Some(x), Some(y)) = (point.x(), point.y()) {
        jwk.insert("x".into(), Value::String(b64_url(x)));
        jwk.insert("y".into(), Value::String(b64_url(y)));
    }
}

fn ed_public_jwk(jwk: &mut Map<String, Value>, k: &ed25519_dalek::VerifyingKey) {
    jwk.insert("kty".into(), json!("OKP"));
    jwk.insert("crv".into(), json!("Ed25519"));
    jwk.insert("x".into(), Value::String(b64_url(k.as_bytes())));
}
