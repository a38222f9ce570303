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

it('StreamgateError is one class across entries and module formats', async () => {
  const copies = [
    require('streamgate'), require('streamgate/hmac'), require('streamgate/browser'),
    await import('streamgate'), await import('streamgate/hmac'), await import('streamgate/browser'),
  ];
  const key = { alg: 'HS256', secret: 'cjs-secret-0123456789abcdefghijklmn' };
  const thrown = (f) => { try { f(); } catch (e) { return e; } assert.fail('did not throw'); };
  const errors = [
    thrown(() => copies[0].verifyPlaybackToken('x.y.z', [key])),
    thrown(() => copies[1].generateKey('ES256')),
    thrown(() => copies[2].decodeToken('not a token')),
    thrown(() => copies[4].verifyPlaybackToken('x.y.z', [key])),
    new copies[3].StreamgateError('expired', 'made by hand'),
  ];
  for (const error of errors) {
    for (const copy of copies) assert.ok(error instanceof copy.StreamgateError, `${error.code} from another copy`);
    assert.ok(error instanceof Error);
  }
  for (const other of [new Error('x'), { code: 'expired' }, null, 'expired']) {
    assert.ok(!(other instanceof copies[0].StreamgateError));
  }
});

it('require("streamgate/hmac") signs and verifies at once, and refuses public-key keys', () => {
  const sg = require('streamgate/hmac');
  const key = { alg: 'HS256', secret: 'cjs-secret-0123456789abcdefghijklmn' };
  const token = sg.signPlaybackToken({ streams: ['a'] }, key, { expiresIn: 60, now: 1700000000 });
  assert.equal(token, require('streamgate').signPlaybackToken({ streams: ['a'] }, key, { expiresIn: 60, now: 1700000000 }));
  assert.equal(sg.verifyPlaybackToken(token, [key], { path: '/a/x.ts', now: 1700000000 }).claims.streams[0], 'a');
  assert.throws(() => sg.generateKey('ES256'), (e) => e instanceof sg.StreamgateError && e.code === 'invalid_key');
});
