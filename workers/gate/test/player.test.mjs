// Stock web players in headless Chromium play through the gate from the signed URL alone:
// hls.js for HLS, dash.js for DASH. Every request succeeds; with the token revoked, they fail.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { admin, root, startGate, token } from './support.mjs';

const { launch } = await import(join(root, 'npm', 'test', 'support', 'chromium.mjs'));

// `?player=hls|dash&src=<signed URL>`; sets window.fatal on a fatal player error.
const PAGE = `<!doctype html><video id="v" muted autoplay playsinline></video><script>
  const params = new URLSearchParams(location.search);
  const video = document.getElementById('v');
  video.addEventListener('playing', () => { if (window.t0 === undefined) window.t0 = video.currentTime; });
  const script = document.createElement('script');
  script.src = '/' + params.get('player') + '.js';
  script.onload = () => {
    if (params.get('player') === 'hls') {
      const hls = new Hls();
      hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.fatal = d.details; });
      hls.loadSource(params.get('src'));
      hls.attachMedia(video);
    } else {
      const dash = dashjs.MediaPlayer().create();
      dash.on(dashjs.MediaPlayer.events.ERROR, (e) => { window.fatal = String(e.error && (e.error.message || e.error.code)); });
      dash.initialize(video, params.get('src'), true);
    }
  };
  document.head.appendChild(script);
</script>`;

let gate;
let pages;

before(async () => {
  gate = await startGate({ listen: true });
  const players = {
    '/hls.js': await readFile(join(root, 'npm', 'node_modules', 'hls.js', 'dist', 'hls.min.js')),
    '/dash.js': await readFile(join(root, 'npm', 'node_modules', 'dashjs', 'dist', 'modern', 'umd', 'dash.all.min.js')),
  };
  pages = createServer((req, res) => {
    const script = players[new URL(req.url, 'http://x').pathname];
    res.writeHead(200, { 'content-type': script ? 'text/javascript' : 'text/html' });
    res.end(script ?? PAGE);
  });
  await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  pages && pages.close();
  gate && (await gate.mf.dispose());
});

/** Plays `src` until `seconds` of media have played (or a fatal error); every response from `via`. */
async function play(player, src, { seconds = 2.5, via = gate } = {}) {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const responses = [];
    page.on('response', (r) => {
      if (r.url().startsWith(via.url)) responses.push({ url: r.url(), status: r.status(), reason: r.headers()['x-streamgate-reason'] });
    });
    await page.goto(`http://127.0.0.1:${pages.address().port}/?player=${player}&src=${encodeURIComponent(src)}`);
    await page.waitForFunction(
      (s) => window.fatal || (window.t0 !== undefined && document.getElementById('v').currentTime - window.t0 > s),
      seconds,
      { timeout: 30_000 + seconds * 2000 },
    );
    const state = await page.evaluate(() => ({ fatal: window.fatal, time: document.getElementById('v').currentTime - (window.t0 ?? 0) }));
    return { ...state, responses };
  } finally {
    await browser.close();
  }
}

for (const [player, manifest] of [['hls', '/hls/master.m3u8'], ['dash', '/dash/manifest.mpd']]) {
  it(`${player}.js plays from the signed URL alone; every request succeeds; revoked, they fail`, async () => {
    const jti = `player-${player}-${Date.now()}`;
    const src = `${gate.url}${manifest}?token=${token({ jti })}`;
    const ok = await play(player, src);
    assert.equal(ok.fatal, undefined, JSON.stringify(ok.responses.filter((r) => r.status !== 200)));
    assert.ok(ok.time > 2.5);
    assert.ok(ok.responses.length >= 4, `${ok.responses.length} requests`);
    for (const r of ok.responses) assert.equal(r.status, 200, r.url);
    assert.ok(ok.responses.slice(1).every((r) => r.url.includes('sgs=')), 'follow-up requests carry the session credential');

    assert.equal((await admin(gate, '/admin/revoke', { jti })).status, 200);
    const revoked = await play(player, src);
    assert.ok(revoked.fatal, 'playback fails');
    assert.equal(revoked.time, 0);
    assert.ok(revoked.responses.length >= 1);
    for (const r of revoked.responses) {
      assert.equal(r.status, 403, r.url);
      assert.equal(r.reason, 'revoked');
    }
  });
}

it('hls.js plays a live stream for several session-credential lifetimes without a failed request', async () => {
  // SESSION_TTL 8 s: hls.js keeps reloading the media playlist URL it got from the master,
  // whose credential lapses after 8 s; each reload is renewed while the session is active.
  // (A segment is fetched up to a few seconds after the playlist that lists it, so the TTL
  // must exceed that; the default is 120 s.)
  const live = await startGate({ listen: true, bindings: { SESSION_TTL: '8', SESSION_IDLE: '20' } });
  try {
    const played = await play('hls', `${live.url}/hls/live/master.m3u8?token=${token()}`, { seconds: 18, via: live });
    assert.equal(played.fatal, undefined, JSON.stringify(played.responses.filter((r) => r.status !== 200)));
    assert.ok(played.time > 18, `played ${played.time} s`);
    for (const r of played.responses) assert.equal(r.status, 200, r.url);
    const reloads = played.responses.filter((r) => r.url.includes('/hls/live/index.m3u8'));
    assert.ok(reloads.length >= 4, `${reloads.length} playlist loads`);
    assert.equal(new Set(reloads.map((r) => r.url)).size, 1, 'hls.js reloads one URL, whose credential lapsed long ago');
  } finally {
    await live.mf.dispose();
  }
});
