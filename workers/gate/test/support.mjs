// The built gate in workerd (Miniflare), in front of the demo origin served by Miniflare's
// outbound service, which records every request that reached the origin. With
// GATE_BACKEND=serve the same suites run against `streamgate serve --origin` (the same
// request flow, natively) in front of the same origin on a loopback port; tests of what
// only the edge has (request.cf, KV, D1, the worker's own configuration errors) are skipped
// there, by name.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(join(root, 'npm', 'package.json'));
const { Miniflare } = require('miniflare');
export const sg = await import(join(root, 'npm', 'src', 'node.mjs'));

export const KEY = { alg: 'HS256', secret: 'e2e gate secret 0123456789abcdef', kid: 'k1' };
export const ADMIN = 'e2e-admin-token-0123456789abcdef0123456789';
export const types = { '.m3u8': 'application/vnd.apple.mpegurl', '.mpd': 'application/dash+xml', '.ts': 'video/mp2t', '.m4s': 'video/iso.segment', '.mp4': 'video/mp4', '.jpg': 'image/jpeg' };

/** The built gate as a Miniflare worker, with test secrets and `bindings` on top. */
export function gateWorker({ bindings = {}, sessionStore = true } = {}) {
  return {
    modules: true,
    scriptPath: join(root, 'workers', 'gate', 'build', 'index.js'),
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-07-01',
    kvNamespaces: ['REVOCATIONS'],
    d1Databases: ['GUARDIAN'],
    r2Buckets: ['USAGE'],
    // Without the binding every session-store call fails: the store-failure path.
    durableObjects: sessionStore ? { SESSIONS: 'SessionHub' } : {},
    bindings: {
      KEYS: JSON.stringify([KEY]),
      SESSION_SECRET: 'e2e session secret, thirty-two bytes or more',
      ADMIN_TOKEN: ADMIN,
      ORIGIN_URL: 'http://origin.test',
      GATE_CONFIG: '{"policy": {"defaultMaxSessions": 5}}',
      SESSION_TTL: '120',
      ...bindings,
    },
  };
}

/** `workerd` (the default) or `serve`. */
export const backend = process.env.GATE_BACKEND ?? 'workerd';

/** `it`, for a test of what only the edge gate has; skipped, by name, against `serve`. */
export const edgeOnly = backend === 'workerd' ? it : (name, fn) => it.skip(`${name} [edge only]`, fn);

/** Starts the gate; `listen` also serves it on 127.0.0.1 for a browser. */
export async function startGate({ listen = false, bindings = {}, sessionStore = true } = {}) {
  const origin = [];
  // Every request that reached the origin, whole: method, path and query, headers, body.
  const requests = [];
  const answer = demoOrigin(origin, requests);
  if (backend === 'serve') return startServe({ bindings, origin, requests, answer });
  const mf = new Miniflare({
    ...gateWorker({ bindings, sessionStore }),
    cf: false, // a placeholder `request.cf` (tests inject theirs): never fetched over the network
    ...(listen ? { host: '127.0.0.1', port: 0 } : {}),
    outboundService: answer,
  });
  const url = listen ? (await mf.ready).origin : 'http://gate.test';
  await applyMigrations(mf);
  return { mf, origin, requests, url };
}

/** The demo origin as a fetch handler that records what reached it. */
function demoOrigin(origin, requests) {
  const livePlaylist = liveStream();
  return async (request) => {
      const url = new URL(request.url);
      origin.push(url.pathname + url.search);
      const body = ['GET', 'HEAD'].includes(request.method) ? '' : await request.text();
      requests.push({ method: request.method, url: url.pathname + url.search, headers: Object.fromEntries(request.headers), body });
      if (request.method === 'POST' || request.method === 'PUT') return new Response('published', { status: 201 });
      try {
        const live = livePlaylist(url.pathname);
        if (live) return new Response(live.body, { headers: { 'content-type': live.type } });
        if (url.pathname === '/dash/live.mpd') {
          // The demo MPD as a live one, as a packager would publish it during an event.
          const mpd = await readFile(join(root, 'demo', 'origin', 'dash', 'manifest.mpd'), 'utf8');
          return new Response(mpd.replace('type="static"', 'type="dynamic" minimumUpdatePeriod="PT2S"'), { headers: { 'content-type': types['.mpd'] } });
        }
        const body = await readFile(join(root, 'demo', 'origin', decodeURIComponent(url.pathname)));
        const headers = { 'content-type': types[extname(url.pathname)] ?? 'application/octet-stream' };
        const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.get('range') ?? '');
        if (range) {
          const [start, end] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
          headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
          headers['content-length'] = String(end + 1 - start);
          return new Response(body.subarray(start, end + 1), { status: 206, headers });
        }
        // Like a static origin (nginx, object storage): the length is known up front.
        headers['content-length'] = String(body.length);
        return new Response(body, { headers });
      } catch {
        return new Response('not found', { status: 404 });
      }
  };
}

/** The worker's vars and secrets, as the configuration document `serve` reads. */
function serveConfig(bindings) {
  const vars = { ...gateWorker().bindings, ...bindings };
  const config = JSON.parse(vars.GATE_CONFIG ?? '{}');
  const policy = { ...config.policy, trustedProxies: ['127.0.0.1/32'] };
  if (vars.PUBLIC_PATHS) policy.publicPaths = [...(policy.publicPaths ?? []), ...vars.PUBLIC_PATHS.split(',').map((p) => p.trim()).filter(Boolean)];
  const seconds = (name) => (vars[name] === undefined ? undefined : Number(vars[name]));
  const sessions = {
    ...config.sessions,
    secret: vars.SESSION_SECRET,
    ttl: seconds('SESSION_TTL'),
    idle: seconds('SESSION_IDLE'),
    grace: seconds('SESSION_GRACE'),
    maxAge: seconds('SESSION_MAX_AGE'),
    binding: vars.SESSION_BINDING,
    urlTokenScope: vars.SESSION_URL_TOKEN_SCOPE,
    atLimit: vars.AT_LIMIT,
    onStoreError: vars.ON_STORE_ERROR,
    cookie: vars.COOKIE_TRANSPORT === undefined ? undefined : vars.COOKIE_TRANSPORT === 'on',
  };
  // The tests name the client in CF-Connecting-IP, as Cloudflare does; serve believes it
  // from the loopback proxy that the test is.
  return { ...config, keys: JSON.parse(vars.KEYS), policy, sessions, clientIpHeader: 'CF-Connecting-IP' };
}

/** `streamgate serve --origin` in front of the demo origin, with the handle the tests use. */
async function startServe({ bindings, origin, requests, answer }) {
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = chunks.length ? Buffer.concat(chunks) : undefined;
    const request = new Request(`http://origin.test${req.url}`, { method: req.method, headers: req.headers, body });
    const response = await answer(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = await mkdtemp(join(tmpdir(), 'streamgate-serve-'));
  const config = join(dir, 'streamgate.json');
  await writeFile(config, JSON.stringify(serveConfig(bindings)));
  const binary = join(root, 'target', 'debug', 'streamgate');
  const args = ['serve', '--config', config, '--listen', '127.0.0.1:0', '--origin', `http://127.0.0.1:${server.address().port}`];
  const child = spawn(binary, args, { env: { ...process.env, STREAMGATE_ADMIN_TOKEN: ADMIN }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const address = await new Promise((resolve, reject) => {
    child.stderr.on('data', (data) => {
      log += data;
      const listening = /"address":"([^"]+)"/.exec(log);
      if (listening) resolve(listening[1]);
    });
    child.on('exit', (code) => reject(new Error(`streamgate serve exited with ${code}:\n${log}`)));
  });
  const url = `http://${address}`;
  const dispatchFetch = (target, { cf, ...init } = {}) => fetch(target.replace('http://gate.test', url), { redirect: 'manual', ...init });
  const dispose = async () => {
    child.kill('SIGTERM');
    server.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { mf: { dispatchFetch, dispose }, origin, requests, url };
}

/**
 * Applies workers/gate/migrations to the gate's D1 database, in order, as
 * `wrangler d1 migrations apply GUARDIAN --local` does for `scripts/run.sh`.
 */
export async function applyMigrations(mf) {
  const db = await mf.getD1Database('GUARDIAN');
  const dir = join(root, 'workers', 'gate', 'migrations');
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort()) {
    const sql = (await readFile(join(dir, file), 'utf8')).replace(/^\s*--.*$/gm, '');
    const statements = sql.split(';').map((s) => s.trim()).filter(Boolean);
    await db.batch(statements.map((s) => db.prepare(s)));
  }
}

/**
 * A live HLS stream, simulated from demo/origin/hls/live (30 s in 2-second segments): a
 * master at /hls/live/master.m3u8, and a three-segment media playlist that slides on by a
 * segment every two seconds from its first request, and ends after the last segment.
 * Returns the playlist for a path, or null.
 */
function liveStream() {
  let start;
  return (path) => {
    if (path === '/hls/live/master.m3u8') {
      return { type: types['.m3u8'], body: '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=90000,CODECS="avc1.42c00a,mp4a.40.2"\nindex.m3u8\n' };
    }
    if (path !== '/hls/live/index.m3u8') return null;
    start ??= Date.now();
    return { type: types['.m3u8'], body: slidingWindow(Date.now() - start) };
  };
}

function slidingWindow(elapsed) {
  const published = Math.min(15, Math.floor(elapsed / 2000) + 3);
  const first = published - 3;
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', `#EXT-X-MEDIA-SEQUENCE:${first}`];
  for (let i = first; i < published; i++) lines.push('#EXTINF:2.000,', `seg_${String(i).padStart(3, '0')}.ts`);
  if (published === 15) lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}

/** Every URI of an HLS playlist (URI lines and `URI="…"` attributes), resolved against `base`. */
export function hlsUris(text, base) {
  const uris = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      for (const m of line.matchAll(/URI="([^"]+)"/g)) uris.push(new URL(m[1], base));
    } else if (line.trim()) {
      uris.push(new URL(line.trim(), base));
    }
  }
  return uris;
}

/** Asserts a denial: its status, `X-Streamgate-Reason`, CORS so web players can read it, and the JSON body. */
export async function expectDenied(response, status, reason) {
  const text = await response.text();
  assert.equal(response.status, status, text);
  assert.equal(response.headers.get('x-streamgate-reason'), reason, text);
  assert.equal(response.headers.get('access-control-allow-origin'), '*', 'web players can read the reason');
  assert.equal(JSON.parse(text).error, reason);
}

/** A playback token for the demo streams. */
export function token(claims = {}, options = {}) {
  return sg.signPlaybackToken(
    { jti: `t-${Math.random().toString(36).slice(2)}`, streams: ['hls/**', 'dash/**'], ...claims },
    KEY,
    { expiresIn: 600, ...options },
  );
}

/** An admin call. */
export function admin(gate, path, body, auth = ADMIN) {
  return gate.mf.dispatchFetch(`${gate.url}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${auth}` }, body: JSON.stringify(body) });
}
