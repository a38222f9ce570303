// Cloudflare Workers (workerd): Workers cannot compile wasm from bytes at run time, so the
// module is imported (wrangler bundles .wasm imports as a WebAssembly.Module).
import * as bindings from '../dist/wasm/streamgate_wasm.js';
import module from '../dist/wasm/streamgate_wasm_bg.wasm';
import { full } from './bindings.mjs';

bindings.initSync({ module });
full.install(bindings);

export const ready = Promise.resolve();
export * from './full.mjs';
