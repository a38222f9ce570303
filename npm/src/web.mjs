// Browsers and bundlers (Vite, webpack, esbuild): the wasm is fetched asynchronously.
// `await ready` before the wasm-backed functions (they throw `not_ready` until then);
// decodeToken, withToken and the hls.js helpers need no wasm at all.
import init, * as bindings from '../dist/wasm/streamgate_wasm.js';
import { full } from './bindings.mjs';

export const ready = init({ module_or_path: new URL('../dist/wasm/streamgate_wasm_bg.wasm', import.meta.url) }).then(() =>
  full.install(bindings),
);
export * from './full.mjs';
