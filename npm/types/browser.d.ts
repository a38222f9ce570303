/** Every reason code streamgate denies with. */
export type ReasonCode =
  | 'missing_token' | 'malformed' | 'bad_signature' | 'unknown_key' | 'alg_not_allowed' | 'expired'
  | 'not_yet_valid' | 'scope_mismatch' | 'ip_mismatch' | 'referrer_denied' | 'user_agent_denied'
  | 'geo_denied' | 'purpose_mismatch' | 'revoked' | 'ip_blocked' | 'too_many_sessions' | 'method_not_allowed';

/** Codes for misuse rather than denial. */
export type UsageErrorCode = 'invalid_key' | 'invalid_input' | 'not_ready' | 'internal_error';

export type ErrorCode = ReasonCode | UsageErrorCode;

/** The one error class streamgate throws; `switch (err.code)` narrows. */
export declare class StreamgateError extends Error {
  readonly name: 'StreamgateError';
  readonly code: ErrorCode;
  /** True for reason codes (a denial), false for usage and key errors. */
  readonly isDenial: boolean;
  constructor(code: ErrorCode, message: string);
}

export declare const REASON_CODES: readonly ReasonCode[];

export type SchemeName = 'jwt' | 'wmsauth' | 'edgeauth' | 'secure-link';

/** An UNVERIFIED decode: never base access decisions on it. */
export interface DecodedToken {
  scheme: Exclude<SchemeName, 'secure-link'>;
  header?: Record<string, unknown>;
  claims: Record<string, unknown> & { exp?: number };
  verified: false;
}

/** Decodes a JWT, wmsAuthSign or EdgeAuth token WITHOUT verifying it. */
export declare function decodeToken(token: string): DecodedToken;

/** `url` with `param=token` added (or replaced), before any fragment. */
export declare function withToken(url: string, token: string, options?: { param?: string }): string;

export interface TokenRefresherOptions {
  /** Your server call; returns a token, or `{ token, expiresAt }` (unix seconds). */
  fetchToken: () => Promise<string | { token: string; expiresAt?: number }>;
  /** Refresh this many seconds before expiry (default 30). */
  refreshBeforeSeconds?: number;
  /** Retry interval after a failure, and refresh interval for opaque tokens (default 5). */
  retrySeconds?: number;
  onError?: (error: unknown) => void;
  onRefresh?: (token: string) => void;
  /** Clock in unix seconds (default Date.now() / 1000). */
  clock?: () => number;
}

/** Keeps a fresh token by calling `fetchToken` before the current one expires. */
export declare class TokenRefresher {
  constructor(options: TokenRefresherOptions);
  readonly token: string | null;
  readonly expiresAt: number | null;
  start(): Promise<string>;
  stop(): void;
  refresh(): Promise<string>;
}

/** The hls.js config members that attach the current token to every request. */
export interface HlsTokenConfig {
  xhrSetup(xhr: XMLHttpRequest, url: string): void;
  fetchSetup(context: { url: string }, init: RequestInit): Request;
}

/**
 * hls.js config: `new Hls({ ...hlsTokenConfig(refresher) })`. The token is attached only to
 * URLs on `origins` (default: the origin of the first request, the manifest).
 */
export declare function hlsTokenConfig(
  source: string | TokenRefresher | (() => string | null),
  options?: { param?: string; origins?: string[] },
): HlsTokenConfig;
