// Where the entry point leaves the initialized wasm bindings for the API to use.
import { StreamgateError } from './errors.mjs';

let installed = null;

export function install(bindings) {
  installed = bindings;
}

export function wasm() {
  if (installed === null) throw new StreamgateError('not_ready', "streamgate's wasm is still loading: await ready first");
  return installed;
}
