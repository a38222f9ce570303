// Builds the package: the wasm (cargo), its JS glue (wasm-bindgen, same version as the
// crate), size optimization (wasm-opt from binaryen), the CommonJS bundle (esbuild), and
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

run('cargo', ['build', '-p', 'streamgate-wasm', '--target', 'wasm32-unknown-unknown', '--release', '--locked']);
const built = join(root, 'target', 'wasm32-unknown-unknown', 'release', 'streamgate_wasm.wasm');

const wantBindgen = /name = "wasm-bindgen"\nversion = "([^"]+)"/.exec(readFileSync(join(root, 'Cargo.lock'), 'utf8'))[1];
const haveBindgen = execFileSync('wasm-bindgen', ['--version'], { encoding: 'utf8' }).trim().split(' ')[1];
if (haveBindgen !== wantBindgen) {
  throw new Error(`wasm-bindgen CLI is ${haveBindgen} but Cargo.lock has ${wantBindgen}: run scripts/setup.sh`);
}
run('wasm-bindgen', ['--target', 'web', '--no-typescript', '--out-dir', wasmOut, built]);

const wasmFile = join(wasmOut, 'streamgate_wasm_bg.wasm');
run(join(npmDir, 'node_modules', '.bin', 'wasm-opt'), [
  '-Oz', '--strip-debug', '--strip-producers',
  '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals',
  '--enable-reference-types', '--enable-multivalue',
  wasmFile, '-o', wasmFile,
]);

for (const [entry, out] of [['node.cjs.mjs', 'index.cjs'], ['browser.mjs', 'browser.cjs']]) {
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
const glue = await bundledSize(join(npmDir, 'src', 'web.mjs'));
const wasmGz = gzipSync(readFileSync(wasmFile), { level: 9 }).length;
const sizes = {
  browserEntryGzip: browserEntry,
  wasmRaw: statSync(wasmFile).size,
  wasmGzip: wasmGz,
  fullGzip: wasmGz + glue,
};
writeFileSync(join(dist, 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`sizes: browser entry ${kb(sizes.browserEntryGzip)} gz (goal <= 6.4 KB); wasm ${kb(sizes.wasmRaw)} raw, ` +
  `${kb(sizes.wasmGzip)} gz; full build with glue ${kb(sizes.fullGzip)} gz (goal <= 60 KB)`);
