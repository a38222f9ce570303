// A real browser: a page on localhost decodes a token and plays a stream with hls.js and
// the token helper, against a local origin that verifies every request with this package
// and records it. Every manifest and segment request must carry the token.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as sg from 'streamgate';
import { launch } from './support/chromium.mjs';

const npmDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const streamDir = join(npmDir, '..', 'demo', 'origin', 'hls');
const key = { alg: 'ES256', ...sg.generateKey('ES256', { kid: 'browser-test' }) };
const types = { '.m3u8': 'application/vnd.apple.mpegurl', '.ts': 'video/mp2t', '.m4s': 'video/iso.segment', '.mp4': 'video/mp4', '.mjs': 'text/javascript', '.js': 'text/javascript' };

const PAGE = `<!doctype html><meta charset="utf-8"><title>streamgate hls.js test</title>
<video id="v" muted playsinline></video>
<script src="/hls.js"></script>
<script type="module">
  import { decodeToken, hlsTokenConfig, TokenRefresher } from '/sg/browser.mjs';
  const refresher = new TokenRefresher({ fetchToken: async () => (await fetch('/token')).text() });
  await refresher.start();
  window.decoded = decodeToken(refresher.token);
  const video = document.getElementById('v');
  const hls = new Hls({ ...hlsTokenConfig(refresher), maxBufferLength: 30 });
  hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) window.fatal = data.details; });
  hls.loadSource(location.search.slice(1) || '/stream/master.m3u8');
  hls.attachMedia(video);
  video.play().catch(() => {});
</script>`;

let server;
let base;
const requests = [];
const denials = [];
let revoked = [];

before(async () => {
  server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    try {
      if (url.pathname === '/') return send(res, 200, 'text/html', PAGE);
      if (url.pathname === '/hls.js') return send(res, 200, 'text/javascript', await readFile(join(npmDir, 'node_modules', 'hls.js', 'dist', 'hls.min.js')));
      if (url.pathname === '/token') {
        return send(res, 200, 'text/plain', sg.signPlaybackToken({ sub: 'viewer-7', jti: 'browser-1', streams: ['stream/**'] }, key, { expiresIn: 300 }));
      }
      if (url.pathname.startsWith('/sg/')) {
        const file = normalize(url.pathname.slice(4));
        if (file.includes('..')) return send(res, 404, 'text/plain', 'no');
        return send(res, 200, 'text/javascript', await readFile(join(npmDir, 'src', file)));
      }
      if (url.pathname.startsWith('/stream/')) {
        requests.push(req.url);
        try {
          sg.verifyUrl(req.url, [key.publicKey], { ip: '127.0.0.1' }, { revoked });
        } catch (e) {
          denials.push(e.code);
          return send(res, e.code === 'missing_token' ? 401 : 403, 'text/plain', e.code);
        }
        const file = normalize(url.pathname.slice('/stream/'.length));
        return send(res, 200, types[extname(file)] || 'application/octet-stream', await readFile(join(streamDir, file)));
      }
      send(res, 404, 'text/plain', 'not found');
    } catch (e) {
      send(res, 500, 'text/plain', String(e));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server && server.close());

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function play(page, query = '') {
  await page.goto(`${base}/${query}`);
  await page.waitForFunction(() => window.fatal || document.getElementById('v').currentTime > 2.5, null, { timeout: 30_000 });
  return page.evaluate(() => ({ fatal: window.fatal, time: document.getElementById('v').currentTime, decoded: window.decoded }));
}

it('hls.js plays through the token helper; every request carries a valid token', async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const state = await play(page);
    assert.equal(state.fatal, undefined, `hls.js fatal error: ${state.fatal}; denials: ${denials}`);
    assert.ok(state.time > 2.5, `played ${state.time}s`);
    assert.equal(state.decoded.scheme, 'jwt');
    assert.equal(state.decoded.claims.sub, 'viewer-7');
    assert.equal(state.decoded.verified, false);
    const manifests = requests.filter((r) => r.includes('.m3u8'));
    const segments = requests.filter((r) => /\.(ts|m4s|mp4)\?/.test(r));
    assert.ok(manifests.length >= 2, `manifests: ${manifests}`);
    assert.ok(segments.length >= 2, `segments: ${segments}`);
    for (const r of requests) assert.match(r, /[?&]token=eyJ/, `request without token: ${r}`);
    assert.deepEqual(denials, []);
  } finally {
    await browser.close();
  }
});

it('with the token revoked, every request fails and playback does not start', async () => {
  revoked = ['browser-1'];
  requests.length = 0;
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const state = await play(page);
    assert.ok(state.fatal, 'hls.js reported a fatal error');
    assert.equal(state.time, 0);
    assert.ok(requests.length > 0);
    assert.ok(denials.length >= requests.length && denials.every((c) => c === 'revoked'), `denials: ${denials}`);
  } finally {
    revoked = [];
    await browser.close();
  }
});
