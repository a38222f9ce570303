// CommonJS build input (bundled to dist/index.cjs by scripts/build.mjs): synchronous
// instantiation, no top-level await, so `require('streamgate')` just works.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as bindings from '../dist/wasm/streamgate_wasm.js';
import { full } from './bindings.mjs';
import { installNodeCrypto } from './node-crypto.mjs';

bindings.initSync({ module: readFileSync(join(__dirname, 'wasm', 'streamgate_wasm_bg.wasm')) });
installNodeCrypto(bindings);
full.install(bindings);

export const ready = Promise.resolve();
export * from './full.mjs';
