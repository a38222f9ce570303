//! Node's `node:crypto` as the primitive of the public-key JWT keys (RS256, ES256,
//! EdDSA), once the Node entry installs it (`useNodeCrypto`, npm/src/node-crypto.mjs).
//! Each key is imported there once, as a KeyObject the JS side holds under a handle;
//! signing and verifying then call it with that handle. HMAC keys stay in wasm, and
//! browsers, Deno, Bun and Workers never install it. Parsing, key choice and every
//! decision stay in the core either way.

use std::cell::RefCell;
use std::sync::Arc;

use streamgate_core::keys::{Algorithm, Key, Primitive, Provider};
use streamgate_core::Error;
use wasm_bindgen::prelude::*;

use crate::thrown;

#[wasm_bindgen]
extern "C" {
    /// The provider object that npm/src/node-crypto.mjs makes.
    pub type NodeCrypto;

    #[wasm_bindgen(method, catch, js_name = importKey)]
    fn import_key(this: &NodeCrypto, alg: &str, jwk: &str) -> Result<u32, JsValue>;

    #[wasm_bindgen(method)]
    fn release(this: &NodeCrypto, handle: u32);

    #[wasm_bindgen(method, catch)]
    fn sign(this: &NodeCrypto, handle: u32, message: &[u8]) -> Result<Vec<u8>, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn verify(this: &NodeCrypto, handle: u32, message: &[u8], signature: &[u8]) -> Result<bool, JsValue>;
}

thread_local! {
    /// The one provider of this instance; installed once, never swapped, so a handle
    /// always names the key it was made for.
    static INSTALLED: RefCell<Option<NodeCrypto>> = const { RefCell::new(None) };
}

/// Hands the JWT keys of every verifier and signer made from now on to `provider`.
#[wasm_bindgen(js_name = useNodeCrypto)]
pub fn use_node_crypto(provider: NodeCrypto) -> Result<(), String> {
    INSTALLED.with(|installed| match installed.try_borrow_mut() {
        Ok(mut slot) if slot.is_none() => {
            *slot = Some(provider);
            Ok(())
        }
        _ => Err(thrown("invalid_input", "node:crypto is already installed")),
    })
}

/// Calls the installed provider; its failures (and its absence) are errors, never verdicts.
fn call<T>(f: impl FnOnce(&NodeCrypto) -> Result<T, JsValue>) -> Result<T, Error> {
    INSTALLED.with(|installed| match installed.try_borrow().as_deref() {
        Ok(Some(node)) => f(node)
            .map_err(|e| Error::key(format!("node:crypto: {}", e.as_string().unwrap_or_else(|| format!("{e:?}"))))),
        _ => Err(Error::key("node:crypto is not installed")),
    })
}

/// Chooses node:crypto for every JWT key when it is installed, the core's code otherwise.
pub(crate) struct NodeProvider;

impl Provider for NodeProvider {
    fn primitive(&self, key: &Key) -> Result<Option<Arc<dyn Primitive>>, Error> {
        // HMAC stays in wasm: a createHmac per token costs more than the core's SHA-256 on
        // a token-sized input (npm/README.md has the figures of both).
        if key.alg().is_hmac() || INSTALLED.with(|installed| installed.try_borrow().map_or(true, |slot| slot.is_none()))
        {
            return Ok(None);
        }
        let jwk = key.to_jwk(key.is_private()).to_string();
        let handle = call(|node| node.import_key(key.alg().as_str(), &jwk))?;
        Ok(Some(Arc::new(NodeKey { handle, alg: key.alg() })))
    }
}

/// A key held by node:crypto.
struct NodeKey {
    handle: u32,
    alg: Algorithm,
}

impl Primitive for NodeKey {
    fn alg(&self) -> Algorithm {
        self.alg
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        call(|node| node.sign(self.handle, message))
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
        call(|node| node.verify(self.handle, message, signature))
    }
}

impl Drop for NodeKey {
    fn drop(&mut self) {
        // Frees the KeyObject when the last verifier or signer holding the key is freed.
        let _ = call(|node| {
            node.release(self.handle);
            Ok(())
        });
    }
}
