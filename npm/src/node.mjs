// Node, Deno and Bun (ESM): the wasm is read from disk and instantiated synchronously, so
// every function is usable as soon as the import resolves.
import { readFileSync } from 'node:fs';
import * as bindings from '../dist/wasm/streamgate_wasm.js';
import { full } from './bindings.mjs';
import { installNodeCrypto } from './node-crypto.mjs';

bindings.initSync({ module: readFileSync(new URL('../dist/wasm/streamgate_wasm_bg.wasm', import.meta.url)) });
installNodeCrypto(bindings);
full.install(bindings);

export const ready = Promise.resolve();
export * from './full.mjs';
