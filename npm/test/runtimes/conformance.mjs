// The same checks in every runtime (Node, Deno, Bun, workerd): given the package's exports,
// returns { passed: [...], failed: [{ name, error }] }. No runtime-specific API is used.
export async function conformance(sg) {
  const passed = [];
  const failed = [];
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
  return { passed, failed };
}
