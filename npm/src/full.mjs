// The API of `streamgate`, over the full wasm build (HMAC and public-key keys).
import { createApi } from './api.mjs';
import { full } from './bindings.mjs';

export { StreamgateError, REASON_CODES } from './errors.mjs';
export { decodeToken, withToken, TokenRefresher, hlsTokenConfig } from './browser.mjs';
export const { createVerifier, signPlaybackToken, verifyPlaybackToken, signUrl, verifyUrl, wmsAuthSign, edgeAuthToken, generateKey } =
  createApi(full.wasm);
