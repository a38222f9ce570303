// `streamgate/hmac` in browsers and bundlers: as web.mjs, with the HMAC-only wasm.
import init, * as bindings from '../dist/wasm/streamgate_hmac.js';
import { hmac } from './bindings.mjs';

export const ready = init({ module_or_path: new URL('../dist/wasm/streamgate_hmac_bg.wasm', import.meta.url) }).then(() =>
  hmac.install(bindings),
);
export * from './hmac.mjs';
