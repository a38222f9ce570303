// The wasm-backed API, made once per wasm build (full.mjs, hmac.mjs) over that build's
// slot in bindings.mjs. Entries differ only in which build they load and how.

import { StreamgateError, fromThrown, invalidInput } from './errors.mjs';

const clock = () => Math.floor(Date.now() / 1000);

function base64url(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * A key object as the wasm side reads it: secret bytes become base64url, and the
 * `publicKey` that generateKey() attaches is dropped (it is not part of the key).
 */
function normalizeKey(key) {
  if (key === null || typeof key !== 'object' || Array.isArray(key)) {
    throw new StreamgateError('invalid_key', 'a key must be an object such as { alg: "HS256", secret }');
  }
  const { publicKey, secret, ...rest } = key;
  if (secret instanceof Uint8Array || secret instanceof ArrayBuffer) {
    return { ...rest, secretBase64url: base64url(new Uint8Array(secret)) };
  }
  return secret === undefined ? rest : { ...rest, secret };
}

function normalizeKeys(keys) {
  return Array.isArray(keys) ? keys.map(normalizeKey) : [normalizeKey(keys)];
}

function nowFrom(value) {
  if (value === undefined) return clock();
  if (typeof value !== 'number') throw invalidInput('now must be unix seconds (a number)');
  return value;
}

/** `[now, activeSessions]` from the context, checked. */
function timing(now, activeSessions) {
  if (activeSessions !== undefined && !(Number.isInteger(activeSessions) && activeSessions >= 0)) {
    throw invalidInput('activeSessions must be a whole number');
  }
  return nowFrom(now);
}

/** The request facts as JSON, with `now` and `activeSessions` taken out of them. */
function contextJson(context) {
  if (context === undefined || context === null) return ['{}', clock(), undefined];
  if (typeof context !== 'object') throw invalidInput('context must be an object');
  const { now, activeSessions, ...facts } = context;
  return [JSON.stringify(facts), timing(now, activeSessions), activeSessions];
}

/** Whether the context holds nothing but a string `path` and `ip`, `now` and `activeSessions`. */
function isPlain(context) {
  for (const name in context) {
    const value = context[name];
    if (name === 'path' || name === 'ip' ? typeof value !== 'string' : name !== 'now' && name !== 'activeSessions') return false;
  }
  return true;
}

function call(fn) {
  try {
    return fn();
  } catch (thrown) {
    throw fromThrown(thrown);
  }
}

function requireObject(value, name) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidInput(`${name} must be an object`);
  return value;
}

const DOCUMENT_MEMBERS = ['jwt', 'policy', 'sessions', 'clientIpHeader'];

/**
 * Whether `value` is the configuration document (`{ keys, jwt?, policy?, sessions?,
 * clientIpHeader? }`, or its JSON text: the file `streamgate serve` reads) rather than a
 * key, an array of keys or a JWKS. A JWKS's keys are JWKs (they have `kty`); a document's
 * key entries never do.
 */
function isConfigDocument(value) {
  if (typeof value === 'string') return true;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  if (DOCUMENT_MEMBERS.some((member) => member in value)) return true;
  return Array.isArray(value.keys) && value.keys.every((k) => k !== null && typeof k === 'object' && !('kty' in k));
}

function configDocument(document) {
  let parsed = document;
  if (typeof document === 'string') {
    try {
      parsed = JSON.parse(document);
    } catch (error) {
      throw invalidInput(`the configuration is not JSON: ${error.message}`);
    }
  }
  requireObject(parsed, 'the configuration');
  return JSON.stringify({ ...parsed, keys: normalizeKeys(parsed.keys ?? []) });
}

// Verifiers and signers cached by the content of the keys and options (a caller that
// changes its keys object, say to drop a compromised key, gets a new one), least recently
// used first out.
const CACHED = 32;

function cached(cache, id, make) {
  let made = cache.get(id);
  if (made) {
    cache.delete(id);
  } else {
    made = make();
    if (cache.size >= CACHED) cache.delete(cache.keys().next().value);
  }
  cache.set(id, made);
  return made;
}

/** JSON.stringify writes every ArrayBuffer as `{}`: write its bytes, so that keys differ. */
const withBytes = (_, value) => (value instanceof ArrayBuffer ? { arrayBuffer: base64url(new Uint8Array(value)) } : value);

/**
 * The API over one wasm build, which `wasm()` returns once an entry has loaded it (and
 * throws `not_ready` before).
 */
export function createApi(wasm) {
  const verifiers = new Map();
  const signers = new Map();

  /**
   * A verifier for `keys` and `options`, or for a configuration document (the one
   * `streamgate serve --config` and `streamgate verify --config` read) with only `revoked`
   * and `blockedIps` as options: parse the keys once, verify many times.
   * `verify(token, context, scheme = 'jwt')` and `verifyUrl(url, context)` return
   * `{ scheme, claims }` or throw a StreamgateError whose `code` says why.
   */
  function createVerifier(keys, options = {}) {
    if (keys === null || (typeof keys !== 'object' && typeof keys !== 'string')) {
      throw new StreamgateError('invalid_key', 'keys must be a key, an array of keys, a JWKS or a configuration document');
    }
    const document = isConfigDocument(keys);
    const { leeway, issuer, audience, requireExp, policy, revoked, blockedIps, ...unknown } = requireObject(options, 'options');
    if (Object.keys(unknown).length) throw invalidInput(`unknown option ${Object.keys(unknown)[0]}`);
    const documentOption = [['leeway', leeway], ['issuer', issuer], ['audience', audience], ['requireExp', requireExp], ['policy', policy]]
      .find(([, value]) => value !== undefined);
    if (document && documentOption) throw invalidInput(`${documentOption[0]} belongs in the configuration document, not in options`);
    const config = document
      ? configDocument(keys)
      : JSON.stringify({ keys: normalizeKeys(keys), jwt: { leeway, issuer, audience, requireExp }, policy });
    const Verifier = wasm().Verifier;
    const verifier = call(() => new Verifier(config, JSON.stringify({ revoked, blockedIps })));
    return {
      verify(token, context, scheme = 'jwt') {
        if (typeof token !== 'string') throw invalidInput('token must be a string');
        let claims;
        if (context !== null && typeof context === 'object' && isPlain(context)) {
          // The common request crosses into wasm as two strings, not as JSON.
          const { path, ip, now, activeSessions } = context;
          const at = timing(now, activeSessions);
          claims = call(() => verifier.verify_token(scheme, token, path, ip, undefined, at, activeSessions));
        } else {
          const [facts, now, active] = contextJson(context);
          claims = call(() => verifier.verify_token(scheme, token, undefined, undefined, facts, now, active));
        }
        return { scheme, claims: JSON.parse(claims) };
      },
      verifyUrl(url, context) {
        if (typeof url !== 'string') throw invalidInput('url must be a string');
        const [facts, now, active] = contextJson(context);
        return JSON.parse(call(() => verifier.verify_url(url, facts, now, active)));
      },
    };
  }

  function cachedVerifier(keys, options) {
    let id;
    try {
      id = JSON.stringify([keys, options ?? null], withBytes);
    } catch {
      return createVerifier(keys, options); // not JSON (a cycle): createVerifier explains
    }
    return cached(verifiers, id, () => createVerifier(keys, options));
  }

  /** A playback JWT from the signer of `key` (made once per key content). */
  function signJwt(key, claims, expiresIn, url, now) {
    const normalized = JSON.stringify(normalizeKey(key));
    const signer = cached(signers, normalized, () => {
      const Signer = wasm().Signer;
      return call(() => new Signer(normalized));
    });
    return call(() => signer.sign(JSON.stringify(claims), expiresIn, url, nowFrom(now)));
  }

  function sign(options, url, now) {
    const bindings = wasm();
    return call(() => bindings.sign(JSON.stringify(options), url, nowFrom(now)));
  }

  /** Signs a playback JWT. `options`: `{ expiresIn?, now? }` (seconds). */
  function signPlaybackToken(claims, key, options = {}) {
    requireObject(claims, 'claims');
    const { expiresIn, now } = requireObject(options, 'options');
    return signJwt(key, claims, expiresIn, undefined, now);
  }

  /** Verifies a playback JWT against the request `context` → `{ claims }`. */
  function verifyPlaybackToken(token, keys, context, options) {
    const { claims } = cachedVerifier(keys, options).verify(token, context, 'jwt');
    return { claims };
  }

  /** Signs `url` in any scheme (`options.scheme`: jwt, wmsauth, edgeauth, secure-link). */
  function signUrl(url, options) {
    if (typeof url !== 'string') throw invalidInput('url must be a string');
    const { scheme = 'jwt', now, ...rest } = requireObject(options, 'options');
    if (scheme === 'jwt') {
      const { key, claims = {}, expiresIn, ...unknown } = rest;
      if (Object.keys(unknown).length) throw invalidInput(`unknown option ${Object.keys(unknown)[0]}`);
      return signJwt(key, requireObject(claims, 'claims'), expiresIn, url, now);
    }
    return sign({ scheme, ...rest }, url, now);
  }

  /** Verifies a signed URL of any scheme → `{ scheme, claims }`. */
  function verifyUrl(url, keys, context, options) {
    return cachedVerifier(keys, options).verifyUrl(url, context);
  }

  /** A Nimble `wmsAuthSign` value. */
  function wmsAuthSign(options) {
    const { now, ...rest } = requireObject(options, 'options');
    return sign({ scheme: 'wmsauth', ...rest }, undefined, now);
  }

  /** An Akamai EdgeAuth 2.0 token; options as in akamai-edgeauth, plus `acl` or `url`. */
  function edgeAuthToken(options) {
    const { now, startTime, ...rest } = requireObject(options, 'options');
    const start = startTime === 'now' ? nowFrom(now) : startTime;
    return sign({ scheme: 'edgeauth', startTime: start, ...rest }, undefined, now);
  }

  /** A new key: `{ alg, kid?, jwk, publicKey? }`; give verifiers `publicKey`. */
  function generateKey(alg, { kid } = {}) {
    if (typeof alg !== 'string') throw invalidInput('alg must be a string such as "ES256"');
    const bindings = wasm();
    const out = JSON.parse(call(() => bindings.generateKey(alg, kid)));
    const withKid = (key) => (kid === undefined ? key : { ...key, kid });
    const key = withKid({ alg: out.alg, jwk: out.jwk });
    if (out.publicJwk) key.publicKey = withKid({ alg: out.alg, jwk: out.publicJwk });
    return key;
  }

  return { createVerifier, signPlaybackToken, verifyPlaybackToken, signUrl, verifyUrl, wmsAuthSign, edgeAuthToken, generateKey };
}
