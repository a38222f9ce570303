// The packed package in Deno, Bun and workerd (JS Workers), and in Node on both crypto
// paths (node:crypto, and the core's pure Rust with STREAMGATE_CRYPTO=wasm), running the
// same conformance checks with the same outcomes as Node does here, and `streamgate/hmac`
// beside the full entry in each.
import assert from 'node:assert/strict';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import * as esbuild from 'esbuild';
import * as sg from 'streamgate';
import * as hmac from 'streamgate/hmac';
import { conformance, hmacConformance } from './runtimes/conformance.mjs';
import { installInto, npmDir, pack, run } from './support/pack.mjs';

const bin = (name) => join(npmDir, 'node_modules', '.bin', name);
let work;
let project;

before(() => {
  let tarball;
  ({ work, tarball } = pack());
  project = installInto(work, tarball, 'runtimes-app', { type: 'module' });
  for (const file of ['conformance.mjs', 'script.mjs', 'worker.mjs']) {
    copyFileSync(join(npmDir, 'test', 'runtimes', file), join(project, file));
  }
});

after(() => rmSync(work, { recursive: true, force: true }));

let reference;

/** Checks a runtime's result; `pureRust`: whether it should be on the core's own crypto. */
function assertAllPassed(output, runtime, pureRust = true) {
  const result = JSON.parse(output.trim().split('\n').pop());
  assert.deepEqual(result.failed, [], `${runtime} failures`);
  assert.equal(result.passed.length, 8, `${runtime} ran every check`);
  assert.deepEqual(result.hmac, { sameToken: true, sameUrl: true, verified: 'h', refused: 'invalid_key' }, `${runtime}: streamgate/hmac`);
  // ES256 signatures tell the paths apart: the core's are deterministic (RFC 6979), OpenSSL's not.
  assert.equal(result.deterministicEs256, pureRust, `${runtime} on the ${pureRust ? 'pure-Rust' : 'node:crypto'} path`);
  reference ??= result.outcomes;
  assert.deepEqual(result.outcomes, reference, `${runtime} decides as Node with node:crypto does`);
}

it('Node (this process), with node:crypto', async () => {
  assertAllPassed(JSON.stringify({ ...(await conformance(sg)), hmac: hmacConformance(sg, hmac) }), 'node', false);
  assert.ok(Object.keys(reference).length > 80, 'signature cases');
});

it("Node, on the core's pure-Rust path (STREAMGATE_CRYPTO=wasm)", () => {
  assertAllPassed(run(process.execPath, ['script.mjs'], project, { STREAMGATE_CRYPTO: 'wasm' }), 'node, pure Rust');
});

it('Deno', () => {
  const out = run(bin('deno'), ['run', '--quiet', '--allow-read', '--allow-env', 'script.mjs'], project, { DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' });
  assertAllPassed(out, 'deno');
});

it('Bun', () => {
  assertAllPassed(run(bin('bun'), ['script.mjs'], project), 'bun');
});

it('Cloudflare Workers (workerd via Miniflare), bundled as wrangler would', async () => {
  const outdir = join(project, 'worker-dist');
  await esbuild.build({
    entryPoints: [join(project, 'worker.mjs')],
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    loader: { '.wasm': 'copy' },
    absWorkingDir: project,
  });
  assertAllPassed(run(bin('node'), [join(npmDir, 'test', 'runtimes', 'workerd.mjs'), join(outdir, 'worker.js')], project), 'workerd');
});
