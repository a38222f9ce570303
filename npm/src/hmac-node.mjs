// `streamgate/hmac` in Node, Deno and Bun (ESM): as node.mjs, with the HMAC-only wasm.
// HMAC stays in wasm everywhere, so node:crypto is never installed here.
import { readFileSync } from 'node:fs';
import * as bindings from '../dist/wasm/streamgate_hmac.js';
import { hmac } from './bindings.mjs';

bindings.initSync({ module: readFileSync(new URL('../dist/wasm/streamgate_hmac_bg.wasm', import.meta.url)) });
hmac.install(bindings);

export const ready = Promise.resolve();
export * from './hmac.mjs';
