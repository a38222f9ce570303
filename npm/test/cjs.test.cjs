// CommonJS consumers: require() works synchronously, no top-level await involved.
const assert = require('node:assert/strict');
const { it } = require('node:test');

it('require("streamgate") signs and verifies at once', () => {
  const sg = require('streamgate');
  const key = { alg: 'HS256', secret: 'cjs-secret-0123456789abcdefghijklmn' };
  const token = sg.signPlaybackToken({ streams: ['a'] }, key, { expiresIn: 60, now: 1700000000 });
  assert.equal(sg.verifyPlaybackToken(token, [key], { path: '/a/x.ts', now: 1700000000 }).claims.streams[0], 'a');
  assert.throws(() => sg.verifyPlaybackToken(token, [key], { path: '/b', now: 1700000000 }), (e) => e instanceof sg.StreamgateError && e.code === 'scope_mismatch');
  assert.equal(typeof require('streamgate/browser').decodeToken, 'function');
});

it('require("streamgate/hmac") signs and verifies at once, and refuses public-key keys', () => {
  const sg = require('streamgate/hmac');
  const key = { alg: 'HS256', secret: 'cjs-secret-0123456789abcdefghijklmn' };
  const token = sg.signPlaybackToken({ streams: ['a'] }, key, { expiresIn: 60, now: 1700000000 });
  assert.equal(token, require('streamgate').signPlaybackToken({ streams: ['a'] }, key, { expiresIn: 60, now: 1700000000 }));
  assert.equal(sg.verifyPlaybackToken(token, [key], { path: '/a/x.ts', now: 1700000000 }).claims.streams[0], 'a');
  assert.throws(() => sg.generateKey('ES256'), (e) => e instanceof sg.StreamgateError && e.code === 'invalid_key');
});
