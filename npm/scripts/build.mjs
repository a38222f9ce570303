// Builds the package: the two wasm builds (cargo: the full one for `streamgate`, the
// HMAC-only one for `streamgate/hmac`), their JS glue (wasm-bindgen, same version as the
// crate), size optimization (wasm-opt from binaryen), the CommonJS bundles (esbuild), and
// a size report. Run from npm/: `npm run build`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const npmDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(npmDir, '..');
const dist = join(npmDir, 'dist');
const wasmOut = join(dist, 'wasm');

function run(cmd, args, options = {}) {
  console.log(`==> ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...options });
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(wasmOut, { recursive: true });

const wantBindgen = /name = "wasm-bindgen"\nversion = "([^"]+)"/.exec(readFileSync(join(root, 'Cargo.lock'), 'utf8'))[1];
const haveBindgen = execFileSync('wasm-bindgen', ['--version'], { encoding: 'utf8' }).trim().split(' ')[1];
if (haveBindgen !== wantBindgen) {
  throw new Error(`wasm-bindgen CLI is ${haveBindgen} but Cargo.lock has ${wantBindgen}: run scripts/setup.sh`);
}

/** Builds streamgate-wasm with `features` into dist/wasm/<name>.js and <name>_bg.wasm; returns the .wasm path. */
function buildWasm(name, features) {
  run('cargo', ['build', '-p', 'streamgate-wasm', '--target', 'wasm32-unknown-unknown', '--release', '--locked', ...features]);
  const built = join(root, 'target', 'wasm32-unknown-unknown', 'release', 'streamgate_wasm.wasm');
  run('wasm-bindgen', ['--target', 'web', '--no-typescript', '--out-dir', wasmOut, '--out-name', name, built]);
  const wasmFile = join(wasmOut, `${name}_bg.wasm`);
  run(join(npmDir, 'node_modules', '.bin', 'wasm-opt'), [
    '-Oz', '--strip-debug', '--strip-producers',
    '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals',
    '--enable-reference-types', '--enable-multivalue',
    wasmFile, '-o', wasmFile,
  ]);
  return wasmFile;
}

// Both builds leave their .wasm at the same cargo path: each is bound before the next.
const hmacWasm = buildWasm('streamgate_hmac', ['--no-default-features']);
const wasmFile = buildWasm('streamgate_wasm', []);

for (const [entry, out] of [['node.cjs.mjs', 'index.cjs'], ['hmac-node.cjs.mjs', 'hmac.cjs'], ['browser.mjs', 'browser.cjs']]) {
  console.log(`==> esbuild dist/${out}`);
  await esbuild.build({
    entryPoints: [join(npmDir, 'src', entry)],
    outfile: join(dist, out),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node18',
    // The glue's async init reads import.meta.url; the CommonJS entry never calls it.
    logOverride: { 'empty-import-meta': 'silent' },
  });
}

// Sizes, as a browser would download them (minified, gzipped).
async function bundledSize(entry) {
  const out = await esbuild.build({ entryPoints: [entry], bundle: true, minify: true, format: 'esm', write: false, platform: 'browser' });
  return gzipSync(out.outputFiles[0].contents).length;
}
const browserEntry = await bundledSize(join(npmDir, 'src', 'browser.mjs'));
const wasmGzip = (file) => gzipSync(readFileSync(file), { level: 9 }).length;
const fullWasmGzip = wasmGzip(wasmFile);
const hmacWasmGzip = wasmGzip(hmacWasm);
const sizes = {
  browserEntryGzip: browserEntry,
  wasmRaw: statSync(wasmFile).size,
  wasmGzip: fullWasmGzip,
  fullGzip: fullWasmGzip + (await bundledSize(join(npmDir, 'src', 'web.mjs'))),
  hmacWasmRaw: statSync(hmacWasm).size,
  hmacWasmGzip,
  hmacGzip: hmacWasmGzip + (await bundledSize(join(npmDir, 'src', 'hmac-web.mjs'))),
};
writeFileSync(join(dist, 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`sizes: browser entry ${kb(sizes.browserEntryGzip)} gz (goal <= 6.4 KB); wasm ${kb(sizes.wasmRaw)} raw, ` +
  `${kb(sizes.wasmGzip)} gz; full build with glue ${kb(sizes.fullGzip)} gz (goal <= 150 KB); ` +
  `hmac wasm ${kb(sizes.hmacWasmRaw)} raw; hmac build with glue ${kb(sizes.hmacGzip)} gz (goal <= 60 KB)`);
