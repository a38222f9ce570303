// CommonJS build input of `streamgate/hmac` (bundled to dist/hmac.cjs by scripts/build.mjs).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as bindings from '../dist/wasm/streamgate_hmac.js';
import { hmac } from './bindings.mjs';

bindings.initSync({ module: readFileSync(join(__dirname, 'wasm', 'streamgate_hmac_bg.wasm')) });
hmac.install(bindings);

export const ready = Promise.resolve();
export * from './hmac.mjs';
