// VLC, a stock native player (its own HLS/DASH client, not a browser), plays through the
// gate from the signed URL alone: every request it makes succeeds and carries a credential,
// and it reaches the end of the stream. With the token revoked, it cannot open the stream.
// VLC comes from Debian (scripts/setup.sh --peers). It runs headless, without audio or video
// output, and with metadata lookups over the network turned off.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, it } from 'node:test';
import { admin, startGate, token } from './support.mjs';

if (spawnSync('cvlc', ['--version']).error) {
  throw new Error('VLC (cvlc) is not installed: run scripts/setup.sh --peers');
}

let gate;

before(async () => {
  gate = await startGate({ listen: true });
});

after(() => gate && gate.mf.dispose());

/** Plays `src` to its end in VLC; returns VLC's HTTP exchanges and whether it reached EOF. */
async function vlc(src) {
  const args = ['-vv', '-I', 'dummy', '--no-lua', '--no-metadata-network-access', '--no-video', '--aout', 'dummy', '--play-and-exit', src];
  // VLC refuses to run as root; CI machines run as root.
  const [command, argv] = process.getuid() === 0 ? ['runuser', ['-u', 'nobody', '--', 'cvlc', ...args]] : ['cvlc', args];
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const timer = setTimeout(() => child.kill(), 60_000);
  const code = await new Promise((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  // VLC logs each request line and the status line of each response.
  const requests = [...log.matchAll(/^GET (\S+) HTTP\/1\.1$/gm)].map((m) => m[1]);
  const statuses = [...log.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
  return { code, requests, statuses, eof: log.includes('EOF reached'), unopened: log.includes("Your input can't be opened"), log };
}

for (const manifest of ['/hls/master.m3u8', '/dash/manifest.mpd']) {
  it(`VLC plays ${manifest} through the gate from the signed URL alone`, async () => {
    gate.origin.length = 0;
    const played = await vlc(`${gate.url}${manifest}?token=${token()}`);
    assert.equal(played.code, 0, played.log.slice(-3000));
    assert.ok(played.eof, 'VLC reached the end of the stream');
    assert.ok(played.requests.length >= 4, `${played.requests.length} requests`);
    assert.equal(played.statuses.length, played.requests.length);
    assert.ok(played.statuses.every((s) => s === 200), String(played.statuses));
    assert.ok(played.requests.slice(1).every((r) => r.includes('sgs=')), 'follow-up requests carry the session credential');
    assert.ok(gate.origin.some((p) => /\.(ts|m4s)$/.test(p)), 'media segments reached the origin');
    assert.ok(gate.origin.every((p) => !/token=|sgs=/.test(p)), 'no credential reached the origin');
  });
}

it('VLC cannot open the stream once the token is revoked', async () => {
  const jti = `vlc-${Date.now()}`;
  assert.equal((await admin(gate, '/admin/revoke', { jti })).status, 200);
  gate.origin.length = 0;
  const refused = await vlc(`${gate.url}/hls/master.m3u8?token=${token({ jti })}`);
  assert.ok(refused.unopened, refused.log.slice(-3000));
  assert.deepEqual([...new Set(refused.statuses)], [403]);
  assert.deepEqual(gate.origin, [], 'nothing reached the origin');
});
