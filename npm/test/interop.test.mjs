// Interop with the libraries people already use: tokens from this package verify with jose
// and jsonwebtoken, jose's tokens verify here, and EdgeAuth tokens match Akamai's npm
// generator byte for byte.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import EdgeAuth from 'akamai-edgeauth';
import * as jose from 'jose';
import jsonwebtoken from 'jsonwebtoken';
import * as sg from 'streamgate';

const NOW = Math.floor(Date.now() / 1000);

describe('JWT interop', () => {
  it('jose and jsonwebtoken verify our HS256/384/512 tokens', async () => {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const secret = `interop secret for ${alg}, as long as the longest hash (64 bytes)`;
      const token = sg.signPlaybackToken({ sub: 'u1', streams: ['live/a'] }, { alg, secret }, { expiresIn: 600 });
      const { payload } = await jose.jwtVerify(token, new TextEncoder().encode(secret), { algorithms: [alg] });
      assert.equal(payload.sub, 'u1');
      const decoded = jsonwebtoken.verify(token, secret, { algorithms: [alg] });
      assert.deepEqual(decoded.streams, ['live/a']);
    }
  });

  it('jose and jsonwebtoken verify our ES256, EdDSA and RS256 tokens', async () => {
    for (const alg of ['ES256', 'EdDSA', 'RS256']) {
      const key = sg.generateKey(alg, { kid: `k-${alg}` });
      const token = sg.signPlaybackToken({ jti: alg }, key, { expiresIn: 600 });
      const { payload, protectedHeader } = await jose.jwtVerify(token, await jose.importJWK(key.publicKey.jwk, alg));
      assert.equal(payload.jti, alg);
      assert.equal(protectedHeader.kid, `k-${alg}`);
      if (alg !== 'EdDSA') {
        const pem = createPublicKey({ key: key.publicKey.jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
        assert.equal(jsonwebtoken.verify(token, pem, { algorithms: [alg] }).jti, alg);
      }
    }
  });

  it('we verify tokens from jose (HS256, ES256, EdDSA) and jsonwebtoken (RS256 PEM)', async () => {
    const secret = new TextEncoder().encode('jose made this secret, 32 bytes+');
    const hs = await new jose.SignJWT({ streams: ['vod/**'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(secret);
    assert.deepEqual(sg.verifyPlaybackToken(hs, [{ alg: 'HS256', secret }], { path: '/vod/x/y.ts' }).claims.streams, ['vod/**']);
    for (const alg of ['ES256', 'EdDSA']) {
      const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
      const token = await new jose.SignJWT({ sub: alg }).setProtectedHeader({ alg, kid: 'j1' }).setExpirationTime('5m').sign(privateKey);
      const jwk = await jose.exportJWK(publicKey);
      assert.equal(sg.verifyPlaybackToken(token, [{ alg, jwk, kid: 'j1' }]).claims.sub, alg);
      // A token from a different key with the same kid is refused.
      const other = await jose.generateKeyPair(alg);
      const forged = await new jose.SignJWT({ sub: 'x' }).setProtectedHeader({ alg, kid: 'j1' }).setExpirationTime('5m').sign(other.privateKey);
      assert.throws(() => sg.verifyPlaybackToken(forged, [{ alg, jwk, kid: 'j1' }]), (e) => e.code === 'bad_signature');
    }
    const rsa = sg.generateKey('RS256');
    const pem = createPrivateKey({ key: rsa.jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' });
    const publicPem = createPublicKey({ key: rsa.publicKey.jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const token = jsonwebtoken.sign({ jti: 'jwt-lib' }, pem, { algorithm: 'RS256', expiresIn: 300 });
    assert.equal(sg.verifyPlaybackToken(token, [{ pem: publicPem }]).claims.jti, 'jwt-lib');
  });

  it('refuses jsonwebtoken tokens with alg none', () => {
    const unsigned = jsonwebtoken.sign({ exp: NOW + 60 }, null, { algorithm: 'none' });
    assert.throws(() => sg.verifyPlaybackToken(unsigned, [{ alg: 'HS256', secret: 'a shared secret of 32 bytes or more' }]), (e) => e.code === 'alg_not_allowed');
  });
});

describe('EdgeAuth interop (akamai-edgeauth npm)', () => {
  const key = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const cases = [
    { acl: '/live/*', options: {} },
    { acl: ['/live/*', '/vod/*'], options: { ip: '198.51.100.9', sessionId: 's 1', payload: 'x:y z' } },
    { acl: '/hls/*', options: { startTime: NOW - 10, algorithm: 'sha1', salt: 'nacl' } },
    { url: '/vod/film one/index.m3u8', options: { escapeEarly: true, payload: 'k=v&w~x' } },
    { url: '/vod/plain.m3u8', options: { algorithm: 'md5', sessionId: 'abc' } },
    { url: "/vod/(x)!'*/a.ts", options: { escapeEarly: true, ip: '2001:db8::7' } },
  ];

  it('tokens are byte-identical for the same inputs, and theirs verify here', () => {
    for (const c of cases) {
      const endTime = NOW + 300;
      const theirs = new EdgeAuth({ key, endTime, ...c.options });
      const expected = c.acl ? theirs.generateACLToken(c.acl) : theirs.generateURLToken(c.url);
      const ours = sg.edgeAuthToken({ key, endTime, ...(c.acl ? { acl: c.acl } : { url: c.url }), ...c.options });
      assert.equal(ours, expected);
      const path = c.url ? encodeURI(c.url) : '/live/seg.ts'.replace('/live', [c.acl].flat()[0].replace('/*', ''));
      const verifyKey = { scheme: 'edgeauth', key, ...(c.options.algorithm ? { algorithm: c.options.algorithm } : {}), ...(c.options.salt ? { salt: c.options.salt } : {}) };
      const out = sg.createVerifier([verifyKey]).verify(expected, { path, ip: c.options.ip ?? '192.0.2.1', now: NOW }, 'edgeauth');
      assert.equal(out.scheme, 'edgeauth');
    }
  });
});
