import type { ReasonCode, SchemeName } from './browser.js';

export * from './browser.js';

/** Resolves when the wasm is ready (at once in Node, Deno, Bun and Workers). */
export declare const ready: Promise<void>;

export type JwtAlgorithm = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'ES256' | 'EdDSA';

export interface JsonWebKey {
  kty: string;
  [member: string]: unknown;
}

/** A JWT key, bound to its algorithm. Secrets never belong in browser code. */
export type PlaybackKey =
  | { alg: 'HS256' | 'HS384' | 'HS512'; secret: string | Uint8Array; kid?: string }
  | { alg?: JwtAlgorithm; jwk: JsonWebKey; kid?: string }
  | { alg?: JwtAlgorithm; pem: string; kid?: string };

/** Keys of the other schemes, for verifyUrl. */
export type SchemeKey =
  | { scheme: 'wmsauth'; secret: string; tolerance?: number; ipBound?: boolean }
  | { scheme: 'edgeauth'; key: string; algorithm?: 'sha256' | 'sha1' | 'md5'; salt?: string; leeway?: number }
  | { scheme: 'secure-link'; secret: string; expression?: string; leeway?: number };

export type Jwks = { keys: JsonWebKey[] };

/** One key, a key set (array), or a JWKS. */
export type KeySet = PlaybackKey | Jwks | Array<PlaybackKey | SchemeKey | Jwks>;

/** Ordered access rule, as Cloudflare Stream's accessRules. */
export type AccessRule =
  | { type: 'ip.src'; action: 'allow' | 'block'; ip: string[] }
  | { type: 'ip.geoip.country'; action: 'allow' | 'block'; country: string[] }
  | { type: 'any'; action: 'allow' | 'block' };

/** Playback token claims. */
export interface PlaybackClaims {
  sub?: string;
  iss?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  /** Stream globs: `live/match-*`, `vod/**`. */
  streams?: string[];
  /** IP address or CIDR range the token is bound to. */
  ip?: string;
  purpose?: 'play' | 'publish';
  max_sessions?: number;
  referrers?: string[];
  allow_no_referrer?: boolean;
  user_agents?: string[];
  access_rules?: AccessRule[];
  [claim: string]: unknown;
}

/** The request being checked. `now` (unix seconds) defaults to the clock. */
export interface RequestContext {
  path?: string;
  ip?: string;
  forwardedFor?: string;
  referer?: string;
  userAgent?: string;
  country?: string;
  asn?: number;
  purpose?: 'play' | 'publish';
  /** The HTTP method: GET and HEAD play, POST and PUT publish, others are `method_not_allowed`. Wins over `purpose`. */
  method?: string;
  sessionId?: string;
  /** Sessions already active for this token; makes the call a session start checked against max_sessions. */
  activeSessions?: number;
  now?: number;
}

export interface Policy {
  trustedProxies?: string[];
  ipBypass?: string[];
  ipv4BindingPrefix?: number;
  ipv6BindingPrefix?: number;
  referrers?: { allow?: string[]; deny?: string[]; allowMissing?: boolean };
  userAgents?: { allow?: string[]; deny?: string[] };
  accessRules?: AccessRule[];
  defaultMaxSessions?: number;
}

export interface VerifyOptions {
  /** Clock leeway for exp/nbf in seconds (default 30). */
  leeway?: number;
  issuer?: string;
  audience?: string;
  /** Refuse tokens without exp (default true). */
  requireExp?: boolean;
  policy?: Policy;
  /** Token ids (jti, EdgeAuth id, or the token's SHA-256 fingerprint) to treat as revoked. */
  revoked?: string[];
  /** Client IPs or CIDR ranges to refuse. */
  blockedIps?: string[];
}

export interface Verified {
  scheme: SchemeName;
  claims: Record<string, unknown>;
}

export interface Verifier {
  verify(token: string, context?: RequestContext, scheme?: SchemeName): Verified;
  verifyUrl(url: string, context?: RequestContext): Verified;
}

/**
 * The configuration document `streamgate serve --config`, `streamgate verify --config` and the
 * edge gate (`KEYS` + `GATE_CONFIG`) read: one file everywhere.
 */
export interface ConfigDocument {
  /** Key entries: `{ alg, secret }`, `{ jwk }`, `{ pem }`, `{ keys: JWKS }`, `{ scheme: "wmsauth" | "edgeauth" | "secure-link", … }`. */
  keys: Array<Record<string, unknown>>;
  jwt?: { leeway?: number; issuer?: string; audience?: string; requireExp?: boolean };
  policy?: Policy;
  sessions?: {
    secret?: string;
    ttl?: number;
    grace?: number;
    maxAge?: number;
    binding?: 'none' | 'network';
    urlTokenScope?: 'exact' | 'directory';
    idle?: number;
    atLimit?: 'reject-new' | 'evict-oldest';
    onStoreError?: 'open' | 'closed';
    cookie?: boolean;
  };
  clientIpHeader?: string;
}

/** Parse keys once, verify many times (the fast path). */
export declare function createVerifier(keys: KeySet, options?: VerifyOptions): Verifier;
/** A verifier for the configuration document (an object, or the file's JSON text). */
export declare function createVerifier(
  config: ConfigDocument | string,
  options?: Pick<VerifyOptions, 'revoked' | 'blockedIps'>,
): Verifier;

/** Signs a playback JWT. Throws StreamgateError (`invalid_key`, `invalid_input`). */
export declare function signPlaybackToken(
  claims: PlaybackClaims,
  key: PlaybackKey,
  options?: { expiresIn?: number; now?: number },
): string;

/** Verifies a playback JWT, or throws a StreamgateError whose code is a ReasonCode. */
export declare function verifyPlaybackToken(
  token: string,
  keys: KeySet,
  context?: RequestContext,
  options?: VerifyOptions,
): { claims: PlaybackClaims };

export type SignUrlOptions =
  | { scheme?: 'jwt'; key: PlaybackKey; claims?: PlaybackClaims; expiresIn?: number; now?: number }
  | ({ scheme: 'wmsauth' } & WmsAuthOptions)
  | ({ scheme: 'edgeauth' } & EdgeAuthOptions)
  | { scheme: 'secure-link'; secret: string; expression?: string; uri?: string; ip?: string; expires?: number; expiresIn?: number; now?: number };

/** Returns `url` with the credential of `options.scheme` in its query. */
export declare function signUrl(url: string, options: SignUrlOptions): string;

/** Verifies a signed URL of any scheme (detected from its parameters). */
export declare function verifyUrl(url: string, keys: KeySet, context?: RequestContext, options?: VerifyOptions): Verified;

export interface WmsAuthOptions {
  key: string;
  /** The viewer's IP as Nimble sees it ('' for tokens not bound to an IP). */
  ip?: string;
  validMinutes: number;
  /** Stream prefix for the stream-based variant, e.g. `live/stream`. */
  stream?: string;
  dateStyle?: 'php' | 'padded';
  now?: number;
}

/** A Nimble Streamer `wmsAuthSign` value. */
export declare function wmsAuthSign(options: WmsAuthOptions): string;

export interface EdgeAuthOptions {
  /** Hex key, as Akamai shows it. */
  key: string;
  algorithm?: 'sha256' | 'sha1' | 'md5';
  acl?: string | string[];
  url?: string;
  ip?: string;
  startTime?: number | 'now';
  endTime?: number;
  windowSeconds?: number;
  sessionId?: string;
  payload?: string;
  salt?: string;
  escapeEarly?: boolean;
  /** Which Akamai generator's escaping to reproduce (default 'node'). */
  escapeStyle?: 'node' | 'python';
  now?: number;
}

/** An Akamai EdgeAuth 2.0 token, byte-identical to akamai-edgeauth for the same inputs. */
export declare function edgeAuthToken(options: EdgeAuthOptions): string;

export interface GeneratedKey {
  alg: JwtAlgorithm;
  kid?: string;
  /** Private JWK (or the secret, for HS*). */
  jwk: JsonWebKey;
  /** What verifiers get (absent for HMAC keys). */
  publicKey?: { alg: JwtAlgorithm; jwk: JsonWebKey; kid?: string };
}

/** A new key (ES256 or EdDSA recommended). */
export declare function generateKey(alg: JwtAlgorithm, options?: { kid?: string }): GeneratedKey;

export type { ReasonCode };
