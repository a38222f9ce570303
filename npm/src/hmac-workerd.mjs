// `streamgate/hmac` in Cloudflare Workers: as workerd.mjs, with the HMAC-only wasm.
import * as bindings from '../dist/wasm/streamgate_hmac.js';
import module from '../dist/wasm/streamgate_hmac_bg.wasm';
import { hmac } from './bindings.mjs';

bindings.initSync({ module });
hmac.install(bindings);

export const ready = Promise.resolve();
export * from './hmac.mjs';
