// Load run of the gate on loopback (not a test; figures only), side by side in one run:
//  - segment requests through the gate with validation off (a PUBLIC_PATHS file: the same
//    worker, proxy and headers, no credential checks) and with full validation (session
//    credential, revocation and block-list lookups, policy), then with an HS256 entry token;
//  - the same segments through a plain JavaScript pass-through worker, the floor of a
//    worker hop, to show what the Rust/wasm adapter itself costs;
//  - media playlist reloads, which also go through the session Durable Object and the rewrite.
// Each front worker runs in its own workerd (Miniflare) with the demo origin as a second
// worker in the same process, serving from memory like a warm CDN cache, so the origin
// does not bound the figures. wrk drives the load; CPU per request is the workerd
// process's user+system time over the case divided by the requests it served.
// After a warm-up pass, the cases run in turn, LOAD_ROUNDS times (default 3), so a noisy
// moment hits them alike; each figure is the median over the rounds.
// It also times the gate's cold start: compiling and instantiating its wasm, each run in a
// fresh Node (the V8 of workerd), median of COLD_RUNS (default 5).
// Run: npm/node_modules/.bin/node workers/gate/bench/load.mjs   (after scripts/build-gate.sh)
// LOAD_SECONDS sets the seconds per case and round (default 3).
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { gzipSync } from 'node:zlib';
import { extname, join, relative } from 'node:path';
import { gateWorker, root, token, types } from '../test/support.mjs';

const require = createRequire(join(root, 'npm', 'package.json'));
const { Miniflare } = require('miniflare');
const SECONDS = Number(process.env.LOAD_SECONDS || 3);
const ROUNDS = Number(process.env.LOAD_ROUNDS || 3);
const CONNECTIONS = 8;
const COLD_RUNS = Number(process.env.COLD_RUNS || 5);

if (spawnSync('wrk', ['--version']).error) {
  console.error('wrk is not installed: run scripts/setup.sh --peers (Debian package wrk)');
  process.exit(2);
}

/** Two cores or more and taskset (util-linux) at hand: workerd and wrk get a core each. */
const PINNED = availableParallelism() >= 2 && !spawnSync('taskset', ['-V']).error;
/** The command line that runs wrk with `args`, on the second core when pinned. */
const wrk = (args) => (PINNED ? ['taskset', ['-c', '1', 'wrk', ...args]] : ['wrk', args]);

/** The demo origin as a worker: every file under demo/origin, held in memory. */
function originWorker() {
  const files = {};
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else files[`/${relative(join(root, 'demo', 'origin'), path)}`] = [types[extname(path)] ?? 'application/octet-stream', readFileSync(path).toString('base64')];
    }
  };
  walk(join(root, 'demo', 'origin'));
  return {
    name: 'origin',
    modules: true,
    script: `const files = new Map(Object.entries(${JSON.stringify(files)}).map(([path, [type, body]]) =>
      [path, [type, Uint8Array.from(atob(body), (c) => c.charCodeAt(0))]]));
    export default { fetch(request) {
      const file = files.get(new URL(request.url).pathname);
      if (!file) return new Response('not found', { status: 404 });
      return new Response(file[1], { headers: { 'content-type': file[0], 'content-length': String(file[1].length) } });
    } };`,
  };
}

const PASS_THROUGH = {
  name: 'front',
  modules: true,
  compatibilityDate: '2026-07-01',
  script: `export default { fetch(request) {
    const url = new URL(request.url);
    // The gate's own segment fetch options, so the two differ only in validation.
    return fetch('http://origin.test' + url.pathname + url.search, { cf: { cacheEverything: true } });
  } };`,
};

/** Starts `front` on 127.0.0.1 with the origin worker behind it; returns its URL and workerd pid. */
async function start(front) {
  const before = new Set(children());
  // cf: false, a placeholder `request.cf`, never fetched over the network.
  const mf = new Miniflare({ host: '127.0.0.1', port: 0, cf: false, workers: [{ ...front, name: 'front', outboundService: 'origin' }, originWorker()] });
  const url = (await mf.ready).origin;
  const pid = children().find((p) => !before.has(p));
  // workerd on the first core, wrk on the second: the two do not take turns on one core,
  // which otherwise moves figures by several points from run to run.
  if (PINNED) execFileSync('taskset', ['-a', '-p', '-c', '0', String(pid)], { stdio: 'ignore' });
  return { mf, url, pid };
}

function children() {
  return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.trim().endsWith('workerd'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

function milliseconds(text) {
  const [, value, unit] = /^([\d.]+)(us|ms|s)$/.exec(text);
  return Number(value) * { us: 0.001, ms: 1, s: 1000 }[unit];
}

/** One wrk run of `url`: requests, req/s, p50/p99 ms, and workerd CPU ms per request. */
function measure(server, url) {
  const cpuBefore = cpuSeconds(server.pid);
  const out = execFileSync(...wrk(['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--timeout', '10s', '--latency', url]), { encoding: 'utf8' });
  const cpu = cpuSeconds(server.pid) - cpuBefore;
  const failed = /Non-2xx or 3xx responses: (\d+)/.exec(out) || /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (failed && failed.slice(1).some(Number)) throw new Error(`${url}: ${failed[0]}\n${out}`);
  const requests = Number(/(\d+) requests in/.exec(out)[1]);
  const latency = (p) => milliseconds(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)[1]);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]), p50: latency(50), p99: latency(99), cpu: (1000 * cpu) / requests };
}

const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Runs every case ROUNDS times in turn; one row per case, medians over the rounds. */
function runAll(cases) {
  // Warm-up, not measured: wasm tiers up to optimized code, isolates and caches fill.
  for (const [name, server, url] of cases) {
    process.stderr.write(`  warm-up: ${name}\n`);
    execFileSync(...wrk(['-t1', `-c${CONNECTIONS}`, '-d1s', url]));
  }
  const results = cases.map(() => []);
  for (let round = 1; round <= ROUNDS; round++) {
    cases.forEach(([name, server, url], i) => {
      process.stderr.write(`  round ${round}/${ROUNDS}: ${name} (${SECONDS}s)\n`);
      results[i].push(measure(server, url));
    });
  }
  return cases.map(([name], i) => {
    const of = (field) => median(results[i].map((r) => r[field]));
    return { case: name, 'req/s': Math.round(of('rps')), 'p50 ms': of('p50'), 'p99 ms': of('p99'), 'CPU ms/req': Number(of('cpu').toFixed(3)) };
  });
}

console.error(`gate load run: wrk, ${ROUNDS} rounds of ${SECONDS}s per case, ${CONNECTIONS} connections, loopback`);
const passThrough = await start(PASS_THROUGH);
// seg_001.ts and seg_003.ts have the same size: one is public, the other needs a credential.
const gate = await start(gateWorker({ bindings: { ORIGIN_URL: 'http://origin.test', PUBLIC_PATHS: 'hls/ts/seg_003.ts' } }));
let rows;
try {
  // A session credential, as a player holds it after its first playlist.
  const entry = token({ max_sessions: 1000 });
  const master = await (await fetch(`${gate.url}/hls/master.m3u8?token=${entry}`)).text();
  const variant = master.split('\n').find((l) => l.startsWith('ts/'));
  const playlist = await (await fetch(`${gate.url}/hls/${variant}`)).text();
  const segment = playlist.split('\n').find((l) => l.startsWith('seg_001.ts'));
  rows = runAll([
    ['segment, gate, validation off (public path)', gate, `${gate.url}/hls/ts/seg_003.ts`],
    ['segment, gate, session credential', gate, `${gate.url}/hls/ts/${segment}`],
    ['segment, gate, HS256 entry token', gate, `${gate.url}/hls/ts/seg_001.ts?token=${entry}`],
    ['segment, JavaScript pass-through worker', passThrough, `${passThrough.url}/hls/ts/seg_001.ts`],
    ['playlist reload, gate (Durable Object + rewrite)', gate, `${gate.url}/hls/${variant}`],
  ]);
} finally {
  await passThrough.mf.dispose();
  await gate.mf.dispose();
}

console.log(`gate load run: wrk, median of ${ROUNDS} rounds of ${SECONDS}s per case, ${CONNECTIONS} connections, loopback, workerd via Miniflare, origin in memory${PINNED ? ', workerd and wrk on a core each' : ''}`);
console.table(rows);
const [off, session, entryToken, js] = rows;
const keeps = (row) => `${((100 * row['req/s']) / off['req/s']).toFixed(1)}%`;
const cpu = (row) => `${(row['CPU ms/req'] - off['CPU ms/req']).toFixed(3)} ms`;
console.log(`validation keeps ${keeps(session)} of the throughput with validation off (session credential; ${keeps(entryToken)} with an entry token)`);
console.log(`validation adds ${cpu(session)} of workerd CPU per request (${cpu(entryToken)} with an entry token) and ${(session['p50 ms'] - off['p50 ms']).toFixed(2)} ms at p50`);
console.log(`the gate with validation off runs at ${((100 * off['req/s']) / js['req/s']).toFixed(1)}% of a plain JavaScript pass-through worker`);

// Cold start: a fresh process each run, as V8 reuses a module it compiled from the same bytes.
// The imports are stand-ins (the glue's own need the Workers runtime); instantiating runs no
// Rust code, which the glue starts afterwards.
const COLD = `const bytes = require('node:fs').readFileSync(process.argv[1]);
const t0 = performance.now();
WebAssembly.compile(bytes).then(async (module) => {
  const t1 = performance.now();
  const imports = {};
  for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
    imports[from] ??= {};
    imports[from][name] = kind === 'tag' ? new WebAssembly.Tag({ parameters: ['externref'] }) : () => {};
  }
  await WebAssembly.instantiate(module, imports);
  console.log(JSON.stringify([t1 - t0, performance.now() - t1]));
});`;
const wasm = join(root, 'workers', 'gate', 'build', 'index_bg.wasm');
const cold = Array.from({ length: COLD_RUNS }, () => JSON.parse(execFileSync(process.execPath, ['-e', COLD, wasm], { encoding: 'utf8' })));
const ms = (i) => median(cold.map((run) => run[i])).toFixed(1);
console.log(`gate cold start (wasm, Node ${process.versions.node}, median of ${COLD_RUNS} fresh processes): compile ${ms(0)} ms, instantiate ${ms(1)} ms`);

// What ships: Cloudflare's limits are 3 MiB compressed on the free plan, 10 MiB on paid ones.
const built = ['index_bg.wasm', 'index.js'].map((name) => readFileSync(join(root, 'workers', 'gate', 'build', name)));
const kb = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
const raw = built.reduce((sum, b) => sum + b.length, 0);
const zipped = built.reduce((sum, b) => sum + gzipSync(b, { level: 9 }).length, 0);
console.log(`gate bundle: ${kb(raw)} (wasm + glue), ${kb(zipped)} gzipped: ${((100 * zipped) / (3 * 1024 * 1024)).toFixed(0)}% of the free plan's 3 MiB`);
