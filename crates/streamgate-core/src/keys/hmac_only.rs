//! Stands in for `public.rs` when the `public-key` feature is off: no RS256, ES256 or
//! EdDSA key can exist, and each way to make one is an [`Error::InvalidKey`] saying so.

use rand_core::CryptoRngCore;
use serde_json::{Map, Value};

use super::{Algorithm, Material};
use crate::denial::Error;

/// No public-key material: this build has none.
#[derive(Clone)]
pub(super) enum Asymmetric {}

/// The refusal of a public-key key, `what` naming it.
fn not_built(what: impl core::fmt::Display) -> Error {
    Error::key(format!("{what}: this build has HMAC keys only (HS256, HS384, HS512), not public-key ones"))
}

impl Asymmetric {
    pub(super) fn from_pem(_pem: &str) -> Result<Asymmetric, Error> {
        Err(not_built("PEM keys"))
    }

    pub(super) fn from_jwk(kty: &str, _obj: &Map<String, Value>) -> Result<Asymmetric, Error> {
        Err(not_built(format_args!("JWK kty {kty:?}")))
    }

    pub(super) fn generate(alg: Algorithm, _rng: &mut impl CryptoRngCore) -> Result<Asymmetric, Error> {
        Err(not_built(format_args!("{alg} keys")))
    }

    pub(super) fn alg(&self) -> Algorithm {
        match *self {}
    }

    pub(super) fn check_size(&self) -> Result<(), Error> {
        match *self {}
    }

    pub(super) fn is_private(&self) -> bool {
        match *self {}
    }

    pub(super) fn public(&self) -> Material {
        match *self {}
    }

    pub(super) fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, Error> {
        match *self {}
    }

    pub(super) fn verify(&self, _message: &[u8], _signature: &[u8]) -> bool {
        match *self {}
    }

    pub(super) fn platform_may_verify(&self, _signature: &[u8]) -> bool {
        match *self {}
    }

    pub(super) fn write_jwk(&self, _jwk: &mut Map<String, Value>, _include_private: bool) {
        match *self {}
    }

    pub(super) fn to_pem(&self) -> Option<String> {
        match *self {}
    }
}
