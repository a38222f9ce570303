// node:crypto as the primitive of the public-key JWT keys (RS256, ES256, EdDSA), in Node
// only: the wasm imports each key once (a KeyObject held here under a handle), then signs
// and verifies through it. The core still parses, chooses the key and decides; HMAC keys
// stay in wasm, which is faster there than a createHmac per token. Deno and Bun load the
// Node entry too, but keep the core's pure-Rust code, as browsers and Workers do.
// STREAMGATE_CRYPTO=wasm keeps it in Node as well (the tests run both paths).
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';

/** One public-key JWT key as node:crypto uses it, bound to its algorithm. */
function importKey(alg, jwkText) {
  const jwk = JSON.parse(jwkText);
  const hash = alg === 'EdDSA' ? null : 'sha256';
  const privateKey = 'd' in jwk ? createPrivateKey({ key: jwk, format: 'jwk' }) : null;
  const publicKey = privateKey ? createPublicKey(privateKey) : createPublicKey({ key: jwk, format: 'jwk' });
  const options = (key) => (alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  const [signWith, verifyWith] = [privateKey && options(privateKey), options(publicKey)];
  return {
    sign: (message) => sign(hash, message, signWith),
    verify: (message, signature) => verify(hash, message, verifyWith, signature),
  };
}

/** The provider the wasm calls (crates/streamgate-wasm/src/node_crypto.rs). */
function provider() {
  const keys = [];
  const free = [];
  return {
    importKey(alg, jwkText) {
      const handle = free.length ? free.pop() : keys.length;
      keys[handle] = importKey(alg, jwkText);
      return handle;
    },
    release(handle) {
      keys[handle] = undefined;
      free.push(handle);
    },
    sign: (handle, message) => keys[handle].sign(message),
    verify: (handle, message, signature) => keys[handle].verify(message, signature),
  };
}

/** Installs node:crypto into the bindings when this is Node (not Deno or Bun) and not turned off. */
export function installNodeCrypto(bindings) {
  const isNode = typeof process === 'object' && process.release?.name === 'node' && !('Deno' in globalThis) && !process.versions?.bun;
  if (isNode && process.env.STREAMGATE_CRYPTO !== 'wasm') bindings.useNodeCrypto(provider());
}
