// What users get: `npm pack`, then install the tarball into an empty Node project (ESM and
// CommonJS) and into a Vite app, build it, and run it in Chromium.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { after, before, it } from 'node:test';
import * as sg from 'streamgate';
import { launch } from './support/chromium.mjs';
import { installInto as install, npmDir, pack, run } from './support/pack.mjs';

let work;
let tarball;
const installInto = (name, extra) => install(work, tarball, name, extra);

before(() => {
  let files;
  ({ work, tarball, files } = pack());
  assert.ok(files.includes('dist/wasm/streamgate_wasm_bg.wasm'), 'the wasm is in the package');
  assert.ok(files.includes('dist/index.cjs') && files.includes('types/index.d.ts'));
  for (const file of ['dist/wasm/streamgate_hmac_bg.wasm', 'dist/wasm/streamgate_hmac.js', 'dist/hmac.cjs', 'types/hmac.d.ts']) {
    assert.ok(files.includes(file), `${file} is in the package`);
  }
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), `unexpected files: ${files}`);
});

after(() => rmSync(work, { recursive: true, force: true }));

it('installs into an empty Node project and works from ESM and CommonJS', () => {
  const dir = installInto('node-app');
  writeFileSync(join(dir, 'esm.mjs'), `
    import { signPlaybackToken, verifyPlaybackToken } from 'streamgate';
    const key = { alg: 'HS256', secret: 'packed secret, 32 bytes or longer' };
    const t = signPlaybackToken({ sub: 'esm' }, key, { expiresIn: 60 });
    console.log(verifyPlaybackToken(t, [key]).claims.sub);`);
  writeFileSync(join(dir, 'hmac.mjs'), `
    import { signPlaybackToken, verifyPlaybackToken, generateKey } from 'streamgate/hmac';
    const key = { alg: 'HS256', secret: 'packed secret, 32 bytes or longer' };
    const t = signPlaybackToken({ sub: 'hmac-esm' }, key, { expiresIn: 60 });
    let refused;
    try { generateKey('ES256'); } catch (e) { refused = e.code; }
    console.log(verifyPlaybackToken(t, [key]).claims.sub, refused);`);
  writeFileSync(join(dir, 'hmac.cjs'), `
    const { signUrl, verifyUrl } = require('streamgate/hmac');
    const url = signUrl('http://h/s/link', { scheme: 'secure-link', secret: 'secret', ip: '127.0.0.1', expiresIn: 60 });
    console.log(verifyUrl(url, [{ scheme: 'secure-link', secret: 'secret' }], { ip: '127.0.0.1' }).scheme);`);
  writeFileSync(join(dir, 'cjs.cjs'), `
    const { signUrl, verifyUrl } = require('streamgate');
    const key = { alg: 'HS256', secret: 'packed secret, 32 bytes or longer' };
    const url = signUrl('https://h/live/a/index.m3u8', { key, claims: { streams: ['live/a'] }, expiresIn: 60 });
    console.log(verifyUrl(url, [key]).scheme);`);
  assert.equal(run(process.execPath, ['esm.mjs'], dir).trim(), 'esm');
  assert.equal(run(process.execPath, ['cjs.cjs'], dir).trim(), 'jwt');
  assert.equal(run(process.execPath, ['hmac.mjs'], dir).trim(), 'hmac-esm invalid_key');
  assert.equal(run(process.execPath, ['hmac.cjs'], dir).trim(), 'secure-link');
});

let server;
after(() => server && server.close());

it('works in a Vite app: built, served and run in Chromium', async () => {
  const dir = installInto('vite-app', { type: 'module' });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="/main.js"></script>');
  writeFileSync(join(dir, 'main.js'), `
    import { ready, verifyPlaybackToken, decodeToken, StreamgateError } from 'streamgate';
    const params = new URLSearchParams(location.search);
    const token = params.get('token');
    ready.then(() => {
      const key = JSON.parse(params.get('key'));
      const { claims } = verifyPlaybackToken(token, [key], { path: '/live/a/index.m3u8' });
      let denied = null;
      try { verifyPlaybackToken(token, [key], { path: '/other' }); } catch (e) { denied = e instanceof StreamgateError && e.code; }
      document.body.dataset.result = JSON.stringify({ sub: claims.sub, decoded: decodeToken(token).claims.sub, denied });
    }, (e) => { document.body.dataset.result = JSON.stringify({ error: String(e) }); });`);
  run(join(npmDir, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn'], dir);
  const assets = readdirSync(join(dir, 'dist', 'assets'));
  assert.ok(assets.some((f) => f.endsWith('.wasm')), `vite emitted the wasm: ${assets}`);

  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  server = createServer((req, res) => {
    const path = normalize(new URL(req.url, 'http://x').pathname);
    const file = join(dir, 'dist', path === '/' ? 'index.html' : path);
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

  const key = sg.generateKey('EdDSA');
  const token = sg.signPlaybackToken({ sub: 'vite-viewer', streams: ['live/a'] }, key, { expiresIn: 300 });
  const query = new URLSearchParams({ token, key: JSON.stringify(key.publicKey) });
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/?${query}`);
    await page.waitForFunction(() => document.body && document.body.dataset.result, null, { timeout: 20_000 });
    const result = JSON.parse(await page.evaluate(() => document.body.dataset.result));
    assert.deepEqual(result, { sub: 'vite-viewer', decoded: 'vite-viewer', denied: 'scope_mismatch' });
  } finally {
    await browser.close();
  }
});
