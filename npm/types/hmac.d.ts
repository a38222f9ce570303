// `streamgate/hmac`: the API of `streamgate` over the HMAC-only wasm build. The types are
// the same; at run time a public-key key (RS256, ES256, EdDSA, any PEM) throws a
// StreamgateError with code `invalid_key`, and a token signed with such an algorithm is
// denied `alg_not_allowed`.
export * from './index.js';
