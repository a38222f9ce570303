// Sign/verify throughput of streamgate next to jose, jsonwebtoken (KeyObject secret, its
// fast path) and fast-jwt, measured side by side in one run, with ratios; plus sizes.
// Run: npm run bench (Node 22; JWT public keys on node:crypto), or
// STREAMGATE_CRYPTO=wasm npm run bench (everything on the core's pure Rust). Figures are
// for comparison on one machine, not targets asserted by tests.
import { createHash, createHmac, createSecretKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import EdgeAuth from 'akamai-edgeauth';
import { createSigner, createVerifier as fastVerifier } from 'fast-jwt';
import * as jose from 'jose';
import jsonwebtoken from 'jsonwebtoken';
import * as sg from 'streamgate';

const SECONDS = Number(process.env.BENCH_SECONDS || 1);
// Each case runs its libraries in turns, ROUNDS times, and keeps each one's median: on a
// shared machine, load that comes and goes then falls on every library alike.
const ROUNDS = 5;
const now = Math.floor(Date.now() / 1000);

async function measure(fn, seconds) {
  let ops = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 100; i++) await fn();
    ops += 100;
    elapsed = process.hrtime.bigint() - start;
  }
  return ops / (Number(elapsed) / 1e9);
}

const median = (values) => values.sort((a, b) => a - b)[values.length >> 1];

// A playback token of about 416 bytes, as a real one would carry.
const claims = {
  iss: 'https://auth.example.com', aud: 'streamgate', sub: 'viewer-4f2a9c1e-7b3d-4e8a', jti: 'b8b7d027b5f48b170d984ab7e36b9d4b',
  streams: ['live/match-*', 'vod/highlights/**'], ip: '198.51.100.0/24', max_sessions: 2,
};
const secret = 'bench-secret-0123456789abcdef-0123456789';
const hsKey = { alg: 'HS256', secret };
const token = sg.signPlaybackToken(claims, hsKey, { expiresIn: 3600 });
const context = { path: '/live/match-42/index.m3u8', ip: '198.51.100.7' };
const hsVerifier = sg.createVerifier([hsKey]);

const secretBytes = new TextEncoder().encode(secret);
const keyObject = createSecretKey(Buffer.from(secret));
const rows = [];

async function compare(name, entries) {
  const runs = entries.map(() => []);
  for (const [, fn] of entries) if (fn) for (let i = 0; i < 200; i++) await fn();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [, fn]] of entries.entries()) if (fn) runs[i].push(await measure(fn, SECONDS / ROUNDS));
  }
  const results = entries.map(([lib, fn], i) => [lib, fn ? median(runs[i]) : null]);
  const ours = results[0][1];
  for (const [lib, ops] of results) {
    rows.push({ case: name, library: lib, 'ops/s': ops === null ? 'n/a' : Math.round(ops).toLocaleString('en'), 'streamgate ×': ops === null || lib === 'streamgate' ? '' : (ours / ops).toFixed(2) });
  }
}

// HS256
await compare(`HS256 verify (${token.length}-byte token)`, [
  ['streamgate', () => hsVerifier.verify(token, context)],
  ['jose', () => jose.jwtVerify(token, secretBytes, { algorithms: ['HS256'] })],
  ['jsonwebtoken', () => jsonwebtoken.verify(token, keyObject, { algorithms: ['HS256'] })],
  ['fast-jwt', (() => { const v = fastVerifier({ key: secret, algorithms: ['HS256'], cache: false }); return () => v(token); })()],
]);
await compare('HS256 sign', [
  ['streamgate', () => sg.signPlaybackToken(claims, hsKey, { expiresIn: 3600 })],
  ['jose', () => new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(secretBytes)],
  ['jsonwebtoken', () => jsonwebtoken.sign(claims, keyObject, { algorithm: 'HS256', expiresIn: 3600 })],
  ['fast-jwt', (() => { const s = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 3600000 }); return () => s(claims); })()],
]);

for (const alg of ['ES256', 'EdDSA']) {
  const key = sg.generateKey(alg, { kid: 'b' });
  const signed = sg.signPlaybackToken(claims, key, { expiresIn: 3600 });
  const verifier = sg.createVerifier([key.publicKey]);
  const joseKey = await jose.importJWK(key.publicKey.jwk, alg);
  const josePrivate = await jose.importJWK(key.jwk, alg);
  const nodeKeys = generateKeyPairSync(alg === 'ES256' ? 'ec' : 'ed25519', alg === 'ES256' ? { namedCurve: 'P-256' } : {});
  const pemPublic = nodeKeys.publicKey.export({ type: 'spki', format: 'pem' });
  const pemPrivate = nodeKeys.privateKey.export({ type: 'pkcs8', format: 'pem' });
  // jsonwebtoken has no EdDSA.
  const peerToken = alg === 'ES256' ? jsonwebtoken.sign(claims, pemPrivate, { algorithm: 'ES256' }) : null;
  const fastSigned = createSigner({ key: pemPrivate, algorithm: alg, expiresIn: 3600000 })(claims);
  await compare(`${alg} verify`, [
    ['streamgate', () => verifier.verify(signed, context)],
    ['jose', () => jose.jwtVerify(signed, joseKey)],
    ['jsonwebtoken', alg === 'ES256' ? () => jsonwebtoken.verify(peerToken, nodeKeys.publicKey, { algorithms: ['ES256'] }) : null],
    ['fast-jwt', (() => { const v = fastVerifier({ key: pemPublic, algorithms: [alg], cache: false }); return () => v(fastSigned); })()],
  ]);
  await compare(`${alg} sign`, [
    ['streamgate', () => sg.signPlaybackToken(claims, key, { expiresIn: 3600 })],
    ['jose', () => new jose.SignJWT(claims).setProtectedHeader({ alg }).setExpirationTime('1h').sign(josePrivate)],
    ['jsonwebtoken', alg === 'ES256' ? () => jsonwebtoken.sign(claims, nodeKeys.privateKey, { algorithm: 'ES256', expiresIn: 3600 }) : null],
    ['fast-jwt', (() => { const s = createSigner({ key: pemPrivate, algorithm: alg, expiresIn: 3600000 }); return () => s(claims); })()],
  ]);
}

// WMSAuth has no npm peer: compare with the recipe written directly on node:crypto.
const wmsKey = 'defaultpassword';
const wms = sg.wmsAuthSign({ key: wmsKey, ip: '198.51.100.7', validMinutes: 20 });
const wmsVerifier = sg.createVerifier([{ scheme: 'wmsauth', secret: wmsKey }]);
await compare('WMSAuth sign', [
  ['streamgate', () => sg.wmsAuthSign({ key: wmsKey, ip: '198.51.100.7', validMinutes: 20 })],
  ['node:crypto recipe', () => {
    const time = '11/21/2026 6:01:56 AM';
    const hash = createHash('md5').update(`198.51.100.7${wmsKey}${time}20`).digest('base64');
    return Buffer.from(`server_time=${time}&hash_value=${hash}&validminutes=20`).toString('base64');
  }],
]);
await compare('WMSAuth verify', [
  ['streamgate', () => wmsVerifier.verify(wms, { ip: '198.51.100.7', path: '/live/stream/playlist.m3u8' }, 'wmsauth')],
]);

// EdgeAuth: akamai-edgeauth signs; nothing on npm verifies, so the recipe on node:crypto stands in.
const edgeKey = '52a152a152a152a152a152a152a1';
const edge = sg.edgeAuthToken({ key: edgeKey, acl: '/live/*', windowSeconds: 300 });
const edgeVerifier = sg.createVerifier([{ scheme: 'edgeauth', key: edgeKey }]);
const akamai = new EdgeAuth({ key: edgeKey, windowSeconds: 300 });
await compare('EdgeAuth sign', [
  ['streamgate', () => sg.edgeAuthToken({ key: edgeKey, acl: '/live/*', windowSeconds: 300 })],
  ['akamai-edgeauth', () => { akamai.options.endTime = undefined; return akamai.generateACLToken('/live/*'); }],
]);
await compare('EdgeAuth verify', [
  ['streamgate', () => edgeVerifier.verify(edge, { path: '/live/a/seg.ts' }, 'edgeauth')],
  ['node:crypto recipe', () => {
    const [signed, mac] = edge.split('~hmac=');
    return createHmac('sha256', Buffer.from(edgeKey, 'hex')).update(signed).digest('hex') === mac;
  }],
]);

const path = process.env.STREAMGATE_CRYPTO === 'wasm' ? "the core's pure Rust (STREAMGATE_CRYPTO=wasm)" : 'node:crypto';
console.log(`streamgate bench: Node ${process.version}, JWT keys on ${path}; ${SECONDS}s per library and case, ` +
  `median of ${ROUNDS} turns; "streamgate ×" = streamgate ops/s ÷ that library's`);
console.table(rows);
try {
  const sizes = JSON.parse(readFileSync(new URL('../dist/sizes.json', import.meta.url)));
  console.log(`sizes (gzip): browser entry ${(sizes.browserEntryGzip / 1024).toFixed(1)} KB (jose sign+verify browser bundle: 6.4 KB); ` +
    `full wasm build with glue ${(sizes.fullGzip / 1024).toFixed(1)} KB (goal 150 KB); hmac build with glue ${(sizes.hmacGzip / 1024).toFixed(1)} KB (goal 60 KB)`);
} catch {
  console.log('sizes: run npm run build first');
}
