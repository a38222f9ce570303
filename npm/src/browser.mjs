// Browser helpers: no wasm, no secrets. Decode tokens (UNVERIFIED), attach them to player
// requests, and refresh them before they expire. Signing keys never belong in a browser:
// tokens come from your server.

import { StreamgateError } from './errors.mjs';

export { StreamgateError, REASON_CODES } from './errors.mjs';

function malformed(message) {
  return new StreamgateError('malformed', message);
}

function decodeBase64(text, urlSafe) {
  let b64 = urlSafe ? text.replace(/-/g, '+').replace(/_/g, '/') : text.replace(/ /g, '+');
  if (urlSafe && /[=+/]/.test(text)) throw malformed('JWT parts are unpadded base64url');
  while (b64.length % 4) b64 += '=';
  let binary;
  try {
    binary = atob(b64);
  } catch {
    throw malformed('not base64');
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

function json(text, what) {
  try {
    return JSON.parse(text);
  } catch {
    throw malformed(`${what} is not JSON`);
  }
}

function fields(text, separator) {
  const out = {};
  for (const piece of text.split(separator)) {
    const at = piece.indexOf('=');
    if (at > 0) out[piece.slice(0, at)] = piece.slice(at + 1);
  }
  return out;
}

/**
 * Decodes a token WITHOUT verifying it: for showing expiry or scheduling a refresh, never
 * for access decisions. Returns `{ scheme, header?, claims, verified: false }`.
 */
export function decodeToken(token) {
  if (typeof token !== 'string' || token.trim() === '') throw new StreamgateError('missing_token', 'token must be a non-empty string');
  const t = token.trim();
  if (t.length > 8192) throw malformed('token is over the 8192-byte limit');
  const parts = t.split('.');
  if (parts.length === 3 && t.startsWith('eyJ')) {
    return { scheme: 'jwt', header: json(decodeBase64(parts[0], true), 'header'), claims: json(decodeBase64(parts[1], true), 'payload'), verified: false };
  }
  if (t.includes('hmac=') && t.includes('exp=')) {
    const f = fields(t, '~');
    const claims = { exp: Number(f.exp) };
    if (f.st) claims.st = Number(f.st);
    for (const name of ['ip', 'acl', 'id', 'data']) if (f[name] !== undefined) claims[name] = f[name];
    return { scheme: 'edgeauth', claims, verified: false };
  }
  const decoded = decodeBase64(t, false);
  if (decoded.startsWith('server_time=')) {
    const f = fields(decoded, '&');
    return { scheme: 'wmsauth', claims: { server_time: f.server_time, validminutes: Number(f.validminutes), ...(f.strm_len ? { strm_len: Number(f.strm_len) } : {}) }, verified: false };
  }
  throw malformed('not a JWT, wmsAuthSign or EdgeAuth token');
}

/**
 * Returns `url` with `param=token` in its query (replacing an earlier value), before any
 * `#fragment`; other parameters, LL-HLS `_HLS_*` included, are kept as they were.
 */
export function withToken(url, token, { param = 'token' } = {}) {
  if (typeof url !== 'string') throw new StreamgateError('invalid_input', 'url must be a string');
  if (typeof token !== 'string' || token === '') return url;
  const hash = url.indexOf('#');
  const base = hash >= 0 ? url.slice(0, hash) : url;
  const fragment = hash >= 0 ? url.slice(hash) : '';
  const q = base.indexOf('?');
  const path = q >= 0 ? base.slice(0, q) : base;
  const kept = q >= 0 ? base.slice(q + 1).split('&').filter((p) => p && paramName(p) !== param) : [];
  kept.push(`${param}=${encodeURIComponent(token)}`);
  return `${path}?${kept.join('&')}${fragment}`;
}

/**
 * The name of a `name=value` query parameter as the gate reads it: tab, CR and LF dropped
 * (as URL parsers drop them) and percent-decoded, so `tok%65n=old` is replaced, not left
 * beside the new token (the gate takes the first).
 */
function paramName(pair) {
  const name = pair.split('=')[0].replace(/[\t\r\n]/g, '');
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/**
 * When to refresh a token just fetched, in seconds from now: `before` ahead of `exp` by
 * this device's clock, but never later than the token's own lifetime (`exp - iat`) allows,
 * so a slow clock does not refresh after expiry. With a lifetime known, the lead is at
 * most half of it. Never sooner than `retry` (or half the lifetime, if shorter), so no
 * short lifetime makes a loop; a token this clock calls expired (it may be: a cached
 * one) is fetched again after `retry`.
 */
function refreshDelay(exp, iat, now, before, retry) {
  if (!Number.isFinite(exp)) return retry;
  const lifetime = Number.isFinite(iat) && exp > iat ? exp - iat : null;
  const left = lifetime === null ? exp - now : Math.min(exp - now, lifetime);
  const lead = lifetime === null ? before : Math.min(before, lifetime / 2);
  return Math.max(left - lead, lifetime === null ? retry : Math.min(retry, lifetime / 2));
}

/**
 * Keeps a fresh token: calls your async `fetchToken()` (which returns a token string, or
 * `{ token, expiresAt }`) at start and again `refreshBeforeSeconds` before expiry. On a
 * failed refresh it keeps the current token, reports to `onError` and retries.
 */
export class TokenRefresher {
  constructor({ fetchToken, refreshBeforeSeconds = 30, retrySeconds = 5, onError, onRefresh, clock = () => Date.now() / 1000 } = {}) {
    if (typeof fetchToken !== 'function') throw new StreamgateError('invalid_input', 'fetchToken must be an async function');
    for (const [name, value] of [['refreshBeforeSeconds', refreshBeforeSeconds], ['retrySeconds', retrySeconds]]) {
      if (!Number.isFinite(value) || value < 0 || (name === 'retrySeconds' && value < 1)) {
        throw new StreamgateError('invalid_input', `${name} must be a finite number of seconds${name === 'retrySeconds' ? ', at least 1' : ''}`);
      }
    }
    Object.assign(this, { fetchToken, refreshBeforeSeconds, retrySeconds, onError, onRefresh, clock });
    this.current = null;
    this.expiresAt = null;
    this.timer = null;
    this.stopped = true;
    this.started = 0;
    this.applied = 0;
  }

  /** The current token (null before the first fetch). */
  get token() {
    return this.current;
  }

  /** Fetches the first token and schedules refreshes; resolves with the token. */
  async start() {
    this.stopped = false;
    await this.refresh();
    return this.current;
  }

  /** Cancels scheduled refreshes. */
  stop() {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Fetches a token now. The next refresh is scheduled before your `onRefresh` or
   * `onError` runs, so a callback that throws cannot stop the refreshing.
   */
  async refresh() {
    // Overlapping refreshes (a timer and an error handler, say): an answer older than one
    // already applied is dropped, so a slow response cannot bring back an older token.
    const number = ++this.started;
    try {
      const got = await this.fetchToken();
      if (number < this.applied) return this.current;
      const token = typeof got === 'string' ? got : got && got.token;
      if (typeof token !== 'string' || token === '') throw new StreamgateError('invalid_input', 'fetchToken returned no token');
      let expiresAt = typeof got === 'object' && Number.isFinite(got.expiresAt) ? got.expiresAt : null;
      let issuedAt = null;
      try {
        const { claims } = decodeToken(token);
        if (expiresAt === null && claims && Number.isFinite(claims.exp)) expiresAt = claims.exp;
        // EdgeAuth has no `iat`; its `st` (start) says the same.
        if (claims && Number.isFinite(claims.iat)) issuedAt = claims.iat;
        else if (claims && Number.isFinite(claims.st)) issuedAt = claims.st;
      } catch { /* an opaque token: refresh on the retry interval */ }
      this.applied = number;
      this.current = token;
      this.expiresAt = expiresAt;
      this.schedule(refreshDelay(expiresAt, issuedAt, this.clock(), this.refreshBeforeSeconds, this.retrySeconds));
      callSafely(this.onRefresh, token);
    } catch (error) {
      if (number < this.applied) return this.current;
      this.schedule(this.retrySeconds);
      callSafely(this.onError, error);
      if (this.current === null) throw error;
    }
    return this.current;
  }

  schedule(seconds) {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    const finite = Number.isFinite(seconds) ? seconds : this.retrySeconds;
    const delay = Math.max(1, Math.min(finite, 2_147_483)) * 1000;
    this.timer = setTimeout(() => { this.refresh().catch(() => {}); }, delay);
  }
}

/** Calls an application's callback; what it throws is reported, never let through. */
function callSafely(callback, value) {
  if (typeof callback !== 'function') return;
  try {
    callback(value);
  } catch (error) {
    globalThis.console?.error?.('streamgate: a TokenRefresher callback threw', error);
  }
}

/**
 * hls.js configuration that puts the current token on every manifest, key and segment
 * request. `source` is a token string, a TokenRefresher, or a function returning a token.
 *   new Hls({ ...hlsTokenConfig(refresher) })
 */
export function hlsTokenConfig(source, { param = 'token', origins } = {}) {
  const current = () => (typeof source === 'string' ? source : typeof source === 'function' ? source() : source && source.token);
  if (origins !== undefined && (!Array.isArray(origins) || !origins.every(isOrigin))) {
    throw new StreamgateError('invalid_input', 'origins must be an array of origins such as "https://gate.example.com" (absolute http(s) URLs without a path)');
  }
  // The token goes only to the gate: the given origins, else the origin of the first
  // request hls.js makes (the manifest). Key servers, ad and analytics hosts, and CDNs a
  // playlist names never see it.
  let allowed = origins && origins.map((o) => new URL(o).origin);
  const signed = (url) => {
    const origin = originOf(url);
    if (!allowed) allowed = origin ? [origin] : [];
    return origin && allowed.includes(origin) ? withToken(url, current(), { param }) : url;
  };
  return {
    xhrSetup(xhr, url) {
      // hls.js does not open the request again once xhrSetup has opened it.
      xhr.open('GET', signed(url), true);
    },
    fetchSetup(context, init) {
      return new Request(signed(context.url), init);
    },
  };
}

/**
 * Whether `text` names an origin on its own: an absolute http(s) URL without a path,
 * query or credentials. A bare host name (`cdn.example.com`) would resolve against the
 * page and send the token to the page's own origin instead.
 */
function isOrigin(text) {
  if (typeof text !== 'string') return false;
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && !url.search && !url.hash
      && !url.username && !url.password && /^https?:\/\//i.test(text.trim());
  } catch {
    return false;
  }
}

/** The origin of `url` (resolved against the page, where there is one), or null. */
function originOf(url) {
  try {
    const base = globalThis.location && globalThis.location.href;
    const { protocol, origin } = new URL(url, base);
    return protocol === 'http:' || protocol === 'https:' ? origin : null;
  } catch {
    return null;
  }
}
