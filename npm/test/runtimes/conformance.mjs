// An RS256 key made for these tests (RSA generation in wasm takes seconds).
const RSA_JWK = {"kty": "RSA", "n": "mzIzqSeNwQscQshfhZQsg_EGKd91mTme1rh9wUEAetsdkMtDSf7WK81km_1aprurqgFO7SHwpIj7q0tWf-B5t30XfrqxYa0LrUk8Qp_upxMAJarlz8VYPmYDg4yCJsyzLFtR_HI7lGgVJIOMhZ8NTEg_Ay-_xLYniSIyCny0nyfQZjtl1s1q3MsrpuX8GCtAmQU3IUg6a-5o3ABS5myITNt6LZ7nuM9lBGB-ENBA50tSR-Jk14ky8y9Ja6JsBpromK7R8_i906BTXSPYPcfQCMY5XrIg_yOYhepWm6XTGLzqQgXJxkb5OPaVgzGSlwA8ivOm9wEwHvQdvSrtrvyy4Q", "e": "AQAB", "d": "ENBnO8a28JjqjpW05lJVDFUa94MSnkTZilE3Vq5bMJ74B2LuPwsRWxzdRJqLWBBxxcZvLaPatYjIc24tyJxNCO3QPiut4h45wKQe7OeflzxTbMFPiqt1JwrYYJ04JfSm3ixlUotxxwoLwwakPSnWlVLSeN7oe5XHQhqRVK-JcMtXx2bBaLjok0lEay1tN9Z9kooLuSNQ_2734HzvsKgRrL9_PSISaynvq6gIf9WMUo30z9p-2rPXno_W36V-xXfGDtqrJdlQCZ1Y5kilInURAUXnaf4Uha7srEuFgYDxpo0I_Ofck-PqrZgCzEWBIsXsqEwExcWv7UQWCmfO6-v4nQ", "p": "2few9fmb9UyD3KetMJTprGx3JuSHQzPtjnVzmvVY0MXo8RGSYr4NqSJ387FkpDggNPZ0XI3odSEoYhEapGhbjS2HKqN3q0JtxpwqoL0KSXmIE214sqLYiBU8zAoHd16AF7tLzq87tHarmh4K0gRvkLN3UjbwFT-sWN7N5LLy-Dc", "q": "tkaY1GER1B2qoDAhKjf_IJgC9IRF0nngW1DHh3ynOoIcIY_bdAZ8W9XmnKtTYK-E12EBoGgzfw8J9vW1U2QuCz8YDcmC0btFeNQx7X20WeAnFaMl8WppGM8WAsMX56x88bQjAKnUJQMwwZPLkT8uOf9KJwpe8h6_gejQDLU38ac", "dp": "XySmYwhc0lte569tgtpNkc0ayahRfr0pAdk06DwWU7M_9hKEgoORNPXtxDr3wlMZg-TccBYllRMvLHdo2MEQzXRFHxCRyPjLMDm0xcsetWnOQySy3c8Fk4kpq6rpDWr7oOBJu-NzvVdbmn9om7oB9PjRqdp_O9c6ZOSEnUKbmks", "dq": "mY_ef8aLy6V2s1_5AOWONjp6-t9ZJ5pwLt5eS0H0bTFiW9AjtZslOAV8NO-N3f3hL8bVJPvErr3PylR1AB19QRJVxH_Ji8J3I_W5Xnix8aoLo4oAlGPuyOzmgUs1n4PM-6CkgJGTXd9TOzK1pNeSrV_ra_qrxNWsx9iJNruRty8", "qi": "ROEf6-GHZc_ojjHUEQMfe1eSyr3LG1N2WL0GnjAUbuYhVf9oBLtklnsw-6NvNyIyxf0Whm6eGZYW0afiO6G86waNgdLI2yCP0ofszIV9k_HRqbYxWmyhht0X02h0Ar7QETmcb8tvUfW4_2W5N4frAKS1V3Si7djM89L__4cm0O0"};

// The same checks in every runtime (Node, Deno, Bun, workerd): given the package's exports,
// returns { passed: [...], failed: [{ name, error }], outcomes, deterministicEs256 }. `outcomes` maps each
// signature case to what verification said: every runtime and both crypto paths (Node's
// node:crypto, the core's pure Rust) must give the same map. No runtime-specific API is used.
export async function conformance(sg) {
  const passed = [];
  const failed = [];
  const outcomes = {};
  const check = async (name, fn) => {
    try {
      await fn();
      passed.push(name);
    } catch (error) {
      failed.push({ name, error: String(error && error.stack || error) });
    }
  };
  const equal = (a, b, what) => {
    if (a !== b) throw new Error(`${what}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  };
  const code = (fn) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof sg.StreamgateError)) throw new Error(`not a StreamgateError: ${e}`);
      return e.code;
    }
    throw new Error('did not throw');
  };
  const now = 1_700_000_000;

  await check('ready resolves', () => sg.ready);
  await check('HS256 sign and verify', () => {
    const key = { alg: 'HS256', secret: 'conformance secret 0123456789, 32 bytes+' };
    const token = sg.signPlaybackToken({ sub: 'u', streams: ['live/a'] }, key, { expiresIn: 60, now });
    equal(sg.verifyPlaybackToken(token, [key], { path: '/live/a/i.m3u8', now }).claims.sub, 'u', 'sub');
    equal(code(() => sg.verifyPlaybackToken(token, [key], { path: '/live/b', now })), 'scope_mismatch', 'scope');
    equal(code(() => sg.verifyPlaybackToken(token, [key], { path: '/live/a', now: now + 100 })), 'expired', 'expiry');
  });
  await check('EdDSA keys generate, sign and verify', () => {
    const key = sg.generateKey('EdDSA', { kid: 'e' });
    const token = sg.signPlaybackToken({}, key, { expiresIn: 60, now });
    equal(sg.verifyPlaybackToken(token, [key.publicKey], { now }).claims.exp, now + 60, 'exp');
  });
  await check('WMSAuth URL round trip', () => {
    const url = sg.signUrl('http://h/live/s/playlist.m3u8', { scheme: 'wmsauth', key: 'k', ip: '192.0.2.1', validMinutes: 5, now });
    equal(sg.verifyUrl(url, [{ scheme: 'wmsauth', secret: 'k' }], { ip: '192.0.2.1', now }).scheme, 'wmsauth', 'scheme');
  });
  await check('EdgeAuth token matches the known vector', () => {
    equal(sg.edgeAuthToken({ key: '52a152a152a152a152a152a152a1', startTime: 1700000000, endTime: 1700000600, acl: '/live/match-*' }),
      'st=1700000000~exp=1700000600~acl=/live/match-*~hmac=54f2f61ccfa735a66ef891a28adfbd476e75e3377c513e3154c2e7ae4879cb41', 'token');
  });
  await check('bad input gives typed errors', () => {
    equal(code(() => sg.verifyPlaybackToken('junk', [{ alg: 'HS256', secret: 'a shared secret of 32 bytes or more' }], { now })), 'malformed', 'junk');
    equal(code(() => sg.verifyPlaybackToken('a.b.c', [], { now })), 'invalid_key', 'empty keys');
  });
  await check('decodeToken and withToken need no wasm', () => {
    const token = sg.signPlaybackToken({ sub: 'd' }, { alg: 'HS256', secret: 'a shared secret of 32 bytes or more' }, { expiresIn: 60, now });
    equal(sg.decodeToken(token).claims.sub, 'd', 'decoded');
    equal(sg.withToken('/a.ts?x=1#f', 'T'), '/a.ts?x=1&token=T#f', 'withToken');
  });
  await check('signatures, algorithms and keys decide alike', () => signatureOutcomes(sg, code, now, outcomes));
  const es256 = sg.generateKey('ES256');
  const es256Token = () => sg.signPlaybackToken({}, es256, { expiresIn: 60, now });
  return { passed, failed, outcomes, deterministicEs256: es256Token() === es256Token() };
}

const b64 = {
  encode: (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
  decode: (text) => Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)),
};

/** Fills `outcomes` with the code (or 'ok') of every case; throws if a case expected to pass fails. */
function signatureOutcomes(sg, code, now, outcomes) {
  const outcome = (fn) => code(() => { fn(); throw new sg.StreamgateError('ok', 'verified'); });
  const keys = {
    HS256: { alg: 'HS256', secret: 'conformance secret 0123456789, 32 bytes+' },
    HS384: { alg: 'HS384', secret: 'conformance secret for HS384, which wants 48 bytes' },
    HS512: { alg: 'HS512', secret: 'conformance secret for HS512, which wants 64 bytes: RFC 7518 3.2' },
    RS256: { alg: 'RS256', jwk: RSA_JWK },
    ES256: sg.generateKey('ES256'),
    EdDSA: sg.generateKey('EdDSA'),
  };
  const verifierKey = (alg) => keys[alg].publicKey ?? (alg === 'RS256' ? { alg, jwk: { kty: 'RSA', n: RSA_JWK.n, e: RSA_JWK.e } } : keys[alg]);
  const at = { path: '/live/a/i.m3u8', now };
  for (const [alg, key] of Object.entries(keys)) {
    const token = sg.signPlaybackToken({ sub: alg, streams: ['live/a'] }, key, { expiresIn: 60, now });
    const [header, payload, signature] = token.split('.');
    const bytes = b64.decode(signature);
    const spoil = (change) => { const copy = bytes.slice(); change(copy); return `${header}.${payload}.${b64.encode(copy)}`; };
    const other = alg === 'EdDSA' ? 'ES256' : 'EdDSA';
    const cases = {
      good: token,
      'flipped bit': spoil((s) => { s[5] ^= 1; }),
      'flipped last bit': spoil((s) => { s[s.length - 1] ^= 0x80; }),
      truncated: `${header}.${payload}.${b64.encode(bytes.slice(0, -1))}`,
      extended: `${header}.${payload}.${b64.encode([...bytes, 0])}`,
      empty: `${header}.${payload}.`,
      zeros: spoil((s) => s.fill(0)),
      'other payload': `${header}.${b64.encode(new TextEncoder().encode('{"sub":"x","exp":9999999999}'))}.${signature}`,
      'alg none': `${b64.encode(new TextEncoder().encode('{"alg":"none"}'))}.${payload}.`,
      'another alg in the header': `${b64.encode(new TextEncoder().encode(`{"alg":"${other}","typ":"JWT"}`))}.${payload}.${signature}`,
      'signed by another key': sg.signPlaybackToken({ streams: ['live/a'] }, keys[other], { expiresIn: 60, now }),
    };
    if (alg === 'EdDSA') {
      // S + L verifies the same equation; strict verifiers refuse it. R of small order, likewise.
      cases['S plus the group order'] = spoil((s) => addOrder(s));
      cases['R of small order'] = spoil((s) => { s.fill(0, 0, 32); s[0] = 1; });
    }
    if (alg === 'ES256') cases['high S (n - s)'] = spoil((s) => negateS(s)); // RFC 7518 allows it
    for (const [name, value] of Object.entries(cases)) {
      outcomes[`${alg}: ${name}`] = outcome(() => sg.verifyPlaybackToken(value, [verifierKey(alg)], at));
    }
    if (outcomes[`${alg}: good`] !== 'ok') throw new Error(`${alg}: a good token was refused: ${outcomes[`${alg}: good`]}`);
  }
  const malformed = {
    'short HS256 secret': { alg: 'HS256', secret: 'short' },
    'EC point off the curve': { alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: b64.encode(new Uint8Array(32).fill(1)), y: b64.encode(new Uint8Array(32).fill(2)) } },
    'Ed25519 key of 31 bytes': { alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: b64.encode(new Uint8Array(31)) } },
    'RSA key under 2048 bits': { alg: 'RS256', jwk: { kty: 'RSA', n: RSA_JWK.n.slice(0, 170), e: RSA_JWK.e } },
    'EC JWK for EdDSA': { alg: 'EdDSA', jwk: keys.ES256.publicKey.jwk },
    'PEM that is not a key': { pem: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' },
  };
  const token = sg.signPlaybackToken({}, keys.HS256, { expiresIn: 60, now });
  for (const [name, key] of Object.entries(malformed)) {
    outcomes[`key: ${name}`] = outcome(() => sg.verifyPlaybackToken(token, [key], { now }));
    outcomes[`signing key: ${name}`] = outcome(() => sg.signPlaybackToken({}, key, { expiresIn: 60, now }));
  }
  outcomes['public key signs'] = outcome(() => sg.signPlaybackToken({}, keys.EdDSA.publicKey, { expiresIn: 60, now }));
}

/** Adds the Ed25519 group order L to the little-endian S in `signature[32..]`. */
function addOrder(signature) {
  const order = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, ...new Array(15).fill(0), 0x10];
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const sum = signature[32 + i] + order[i] + carry;
    signature[32 + i] = sum & 0xff;
    carry = sum >> 8;
  }
}

/** Replaces the big-endian s in an ES256 `r || s` signature by n - s. */
function negateS(signature) {
  const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const s = signature.slice(32).reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  let t = n - s;
  for (let i = 63; i >= 32; i--, t >>= 8n) signature[i] = Number(t & 0xffn);
}

/**
 * `streamgate/hmac` loaded beside the full entry: the same HS256 token and secure_link URL
 * as the full build, and a public-key key refused as `invalid_key`.
 */
export function hmacConformance(full, hmac) {
  const now = 1_700_000_000;
  const key = { alg: 'HS256', secret: 'conformance secret, 32 bytes long' };
  const token = hmac.signPlaybackToken({ sub: 'h' }, key, { expiresIn: 60, now });
  const link = { scheme: 'secure-link', secret: 's', ip: '192.0.2.1', expires: now + 60 };
  let refused;
  try {
    hmac.generateKey('ES256');
  } catch (error) {
    refused = error.code;
  }
  return {
    sameToken: token === full.signPlaybackToken({ sub: 'h' }, key, { expiresIn: 60, now }),
    sameUrl: hmac.signUrl('http://h/a/b.ts', link) === full.signUrl('http://h/a/b.ts', link),
    verified: hmac.verifyPlaybackToken(token, [key], { now }).claims.sub,
    refused,
  };
}
