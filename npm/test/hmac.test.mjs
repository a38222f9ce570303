// `streamgate/hmac`, the HMAC-only build: every HMAC scheme signs and verifies exactly as
// the full `streamgate` does, and public-key keys and tokens are refused with the usual
// codes, never a trap. Both entries are loaded side by side, as an application may.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as full from 'streamgate';
import * as hmac from 'streamgate/hmac';

const NOW = 1_700_000_000;
const ok = { path: '/live/match-42/index.m3u8', ip: '198.51.100.7', now: NOW };

function refused(fn, code, message) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof hmac.StreamgateError, `not a StreamgateError: ${err}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('streamgate/hmac', () => {
  it('has the exports of streamgate', async () => {
    await hmac.ready;
    assert.deepEqual(Object.keys(hmac).sort(), Object.keys(full).sort());
  });

  it('signs JWTs (HS256, HS384, HS512) byte for byte as the full build, and each verifies the other', () => {
    for (const [alg, secret] of [['HS256', 's'.repeat(32)], ['HS384', 't'.repeat(48)], ['HS512', 'u'.repeat(64)]]) {
      const key = { alg, secret, kid: alg };
      const claims = { sub: 'viewer', streams: ['live/match-*'], ip: '198.51.100.7' };
      const token = hmac.signPlaybackToken(claims, key, { expiresIn: 600, now: NOW });
      assert.equal(token, full.signPlaybackToken(claims, key, { expiresIn: 600, now: NOW }), alg);
      assert.deepEqual(hmac.verifyPlaybackToken(token, [key], ok), full.verifyPlaybackToken(token, [key], ok));
      const generated = hmac.generateKey(alg, { kid: 'g' });
      const fromGenerated = hmac.signPlaybackToken({}, generated, { expiresIn: 60, now: NOW });
      assert.equal(full.verifyPlaybackToken(fromGenerated, [generated], { now: NOW }).claims.exp, NOW + 60);
    }
  });

  it('signs and verifies WMSAuth, EdgeAuth and secure_link URLs as the full build', () => {
    const cases = [
      ['http://nimble.example:8081/live/stream/playlist.m3u8',
        { scheme: 'wmsauth', key: 'defaultpassword', ip: '198.51.100.7', validMinutes: 20, stream: 'live/stream', now: NOW },
        [{ scheme: 'wmsauth', secret: 'defaultpassword' }]],
      ['https://media.example/vod/film/master.m3u8',
        { scheme: 'edgeauth', key: 'a1b2c3d4', acl: '/vod/*', endTime: NOW + 300, now: NOW },
        [{ scheme: 'edgeauth', key: 'a1b2c3d4' }]],
      ['http://127.0.0.1/s/link',
        { scheme: 'secure-link', secret: 'secret', ip: '198.51.100.7', expires: NOW + 300 },
        [{ scheme: 'secure-link', secret: 'secret' }]],
    ];
    for (const [url, options, keys] of cases) {
      const signed = hmac.signUrl(url, options);
      assert.equal(signed, full.signUrl(url, options), options.scheme);
      const context = { ip: '198.51.100.7', now: NOW };
      assert.deepEqual(hmac.verifyUrl(signed, keys, context), full.verifyUrl(signed, keys, context), options.scheme);
      assert.equal(hmac.verifyUrl(signed, keys, context).scheme, options.scheme);
    }
    const wms = { key: 'k', ip: '198.51.100.7', validMinutes: 5, now: NOW };
    assert.equal(hmac.wmsAuthSign(wms), full.wmsAuthSign(wms));
    const edge = { key: 'abcd', acl: '/*', startTime: NOW, endTime: NOW + 60 };
    assert.equal(hmac.edgeAuthToken(edge), full.edgeAuthToken(edge));
  });

  it('denies as the full build does', () => {
    const key = { alg: 'HS256', secret: 'd'.repeat(32) };
    const token = hmac.signPlaybackToken({ streams: ['live/a'] }, key, { expiresIn: 60, now: NOW });
    for (const sg of [hmac, full]) {
      refused(() => sg.verifyPlaybackToken(token, [key], { path: '/other', now: NOW }), 'scope_mismatch');
      refused(() => sg.verifyPlaybackToken(token, [key], { path: '/live/a/x.ts', now: NOW + 3600 }), 'expired');
      refused(() => sg.verifyPlaybackToken(`${token.slice(0, -2)}AA`, [key], { path: '/live/a/x.ts', now: NOW }), 'bad_signature');
    }
  });

  it('refuses public-key keys as invalid_key, each way they come', () => {
    const onlyHmac = /HMAC keys only/;
    for (const alg of ['RS256', 'ES256', 'EdDSA']) {
      refused(() => hmac.generateKey(alg), 'invalid_key', onlyHmac);
    }
    const es = full.generateKey('ES256', { kid: 'es' });
    const ed = full.generateKey('EdDSA', { kid: 'ed' });
    refused(() => hmac.createVerifier([es.publicKey]), 'invalid_key', onlyHmac);
    refused(() => hmac.createVerifier({ keys: [ed.publicKey.jwk] }), 'invalid_key', onlyHmac);
    refused(() => hmac.signPlaybackToken({}, ed, { expiresIn: 60 }), 'invalid_key', onlyHmac);
    const pem = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----';
    refused(() => hmac.verifyPlaybackToken('a.b.c', [{ alg: 'EdDSA', pem }]), 'invalid_key', onlyHmac);
    refused(() => hmac.createVerifier({ keys: [{ alg: 'ES256', pem }] }), 'invalid_key', onlyHmac);
    // The full build, loaded alongside, keeps its public-key keys.
    const token = full.signPlaybackToken({}, es, { expiresIn: 60, now: NOW });
    assert.equal(full.verifyPlaybackToken(token, [es.publicKey], { now: NOW }).claims.exp, NOW + 60);
  });

  it('denies a public-key token alg_not_allowed, as the full build given only HMAC keys', () => {
    const es = full.generateKey('ES256');
    const token = full.signPlaybackToken({}, es, { expiresIn: 60, now: NOW });
    const key = { alg: 'HS256', secret: 'e'.repeat(32) };
    for (const sg of [hmac, full]) refused(() => sg.verifyPlaybackToken(token, [key], { now: NOW }), 'alg_not_allowed');
  });
});
