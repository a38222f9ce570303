// Load run of the gate on loopback (not a test; figures only). Side by side in one run:
//  - segment requests through full validation (session credential, revocation and block
//    list lookups, policy) vs the same requests through a pass-through worker that only
//    proxies to the origin (the cost of a worker hop without validation);
//  - manifest requests, which also go through the session Durable Object and the rewrite.
// Run: npm/node_modules/.bin/node workers/gate/bench/load.mjs   (after scripts/build-gate.sh)
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { startGate, token, root } from '../test/support.mjs';

const require = createRequire(join(root, 'npm', 'package.json'));
const autocannon = require('autocannon');
const { Miniflare } = require('miniflare');
const SECONDS = Number(process.env.LOAD_SECONDS || 5);

const gate = await startGate({ listen: true });
const passthrough = new Miniflare({
  modules: true,
  host: '127.0.0.1',
  port: 0,
  compatibilityDate: '2026-07-01',
  script: `export default { async fetch(request) {
    const url = new URL(request.url);
    return fetch('http://origin.test' + url.pathname + url.search);
  } };`,
  // The same origin as the gate's: the demo files, read per request.
  outboundService: async (request) => {
    const body = await readFile(join(root, 'demo', 'origin', new URL(request.url).pathname));
    return new Response(body, { headers: { 'content-type': 'video/mp2t' } });
  },
});
const passUrl = (await passthrough.ready).origin;

// A session credential, as a player would hold it after the first playlist.
const master = await (await fetch(`${gate.url}/hls/master.m3u8?token=${token({ max_sessions: 1000 })}`)).text();
const variant = master.split('\n').find((l) => l.startsWith('ts/'));
const playlist = await (await fetch(`${gate.url}/hls/${variant}`)).text();
const segment = playlist.split('\n').find((l) => l.startsWith('seg_'));

async function run(name, url) {
  const result = await autocannon({ url, connections: 8, duration: SECONDS });
  if (result.non2xx || result.errors) throw new Error(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { case: name, 'req/s': Math.round(result.requests.average), 'p50 ms': result.latency.p50, 'p99 ms': result.latency.p99 };
}

const rows = [];
rows.push(await run('segment, pass-through worker (no validation)', `${passUrl}/hls/ts/seg_000.ts`));
rows.push(await run('segment, gate (full validation)', `${gate.url}/hls/ts/${segment}`));
rows.push(await run('media playlist reload, gate (DO heartbeat + rewrite)', `${gate.url}/hls/${variant}`));
await passthrough.dispose();
await gate.mf.dispose();

const [base, gated] = rows;
console.log(`gate load run: ${SECONDS}s per case, 8 connections, loopback, workerd via Miniflare`);
console.table(rows);
console.log(`validation keeps ${(100 * gated['req/s'] / base['req/s']).toFixed(1)}% of pass-through throughput on segments; ` +
  `added p50 ${(gated['p50 ms'] - base['p50 ms']).toFixed(2)} ms`);
