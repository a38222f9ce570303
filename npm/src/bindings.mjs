// Where each entry leaves its initialized wasm bindings for its API to use: one slot per
// wasm build, so `streamgate` and `streamgate/hmac` can be loaded side by side.
import { StreamgateError } from './errors.mjs';

function slot() {
  let installed = null;
  return {
    install(bindings) {
      installed = bindings;
    },
    wasm() {
      if (installed === null) throw new StreamgateError('not_ready', "streamgate's wasm is still loading: await ready first");
      return installed;
    },
  };
}

/** The full build (every key type): `streamgate`. */
export const full = slot();
/** The HMAC-only build: `streamgate/hmac`. */
export const hmac = slot();
