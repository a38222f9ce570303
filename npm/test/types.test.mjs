// The .d.ts files compile, and misuse is a type error: checked with tsc on a fixture.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const npmDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(npmDir, 'node_modules', 'typescript', 'bin', 'tsc');

function compile(source) {
  const dir = mkdtempSync(join(npmDir, 'test', '.tsc-'));
  const file = join(dir, 'check.ts');
  writeFileSync(file, source);
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2022,dom', file], { cwd: npmDir, encoding: 'utf8' });
    return '';
  } catch (e) {
    return e.stdout || String(e);
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
}

it('typed usage compiles, and error codes narrow', () => {
  const errors = compile(`
    import { signPlaybackToken, verifyPlaybackToken, StreamgateError, type ReasonCode, type PlaybackKey, createVerifier, signUrl } from 'streamgate';
    import { decodeToken, hlsTokenConfig, TokenRefresher, withToken } from 'streamgate/browser';
    const key: PlaybackKey = { alg: 'HS256', secret: 's' };
    const token: string = signPlaybackToken({ streams: ['live/*'], max_sessions: 2 }, key, { expiresIn: 60 });
    try { verifyPlaybackToken(token, [key], { path: '/live/a', ip: '192.0.2.1', now: 1 }); }
    catch (e) { if (e instanceof StreamgateError) { const c = e.code; switch (c) { case 'expired': break; case 'invalid_key': break; } } }
    const codes: readonly ReasonCode[] = ['expired', 'too_many_sessions'];
    const v = createVerifier([key, { scheme: 'wmsauth', secret: 'k' }], { leeway: 5, policy: { trustedProxies: ['10.0.0.0/8'] } });
    v.verifyUrl(signUrl('https://h/a', { scheme: 'edgeauth', key: 'ab', acl: '/*', endTime: 2 }));
    const exp: number | undefined = decodeToken(token).claims.exp;
    const r = new TokenRefresher({ fetchToken: async () => token });
    const h = hlsTokenConfig(r); withToken('a', 'b'); void [codes, exp, h];
  `);
  assert.equal(errors, '');
});

it('streamgate/hmac has the same types', () => {
  const errors = compile(`
    import { signPlaybackToken, verifyUrl, StreamgateError, type PlaybackKey, type ReasonCode } from 'streamgate/hmac';
    const key: PlaybackKey = { alg: 'HS512', secret: new Uint8Array(64) };
    const token: string = signPlaybackToken({ streams: ['live/*'] }, key, { expiresIn: 60 });
    try { verifyUrl('https://h/a?token=' + token, [key, { scheme: 'secure-link', secret: 's' }]); }
    catch (e) { if (e instanceof StreamgateError) { const c: ReasonCode | string = e.code; void c; } }
  `);
  assert.equal(errors, '');
});

it('misuse does not compile', () => {
  const errors = compile(`
    import { signPlaybackToken, verifyPlaybackToken, type ReasonCode } from 'streamgate';
    signPlaybackToken({}, { alg: 'RS256', secret: 's' });
    const bad: ReasonCode = 'nope';
    verifyPlaybackToken('t', [{ alg: 'HS256', secret: 's' }], { path: 1 });
  `);
  assert.match(errors, /check\.ts\(3,/);
  assert.match(errors, /check\.ts\(4,/);
  assert.match(errors, /check\.ts\(5,/);
});
