// The API of `streamgate/hmac`, over the HMAC-only wasm build: the same functions, but a
// public-key key (RS256, ES256, EdDSA, any PEM) throws `invalid_key`, and a token signed
// with such an algorithm is denied `alg_not_allowed`.
import { createApi } from './api.mjs';
import { hmac } from './bindings.mjs';

export { StreamgateError, REASON_CODES } from './errors.mjs';
export { decodeToken, withToken, TokenRefresher, hlsTokenConfig } from './browser.mjs';
export const { createVerifier, signPlaybackToken, verifyPlaybackToken, signUrl, verifyUrl, wmsAuthSign, edgeAuthToken, generateKey } =
  createApi(hmac.wasm);
