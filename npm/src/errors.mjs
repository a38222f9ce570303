// One error class for everything the package throws. `code` is a streamgate reason code
// for denials (`expired`, `bad_signature`, …) or `invalid_key` / `invalid_input` for
// misuse, so `switch (err.code)` works without parsing messages.

/** The reason codes, in the core's table order. */
export const REASON_CODES = Object.freeze([
  'missing_token', 'malformed', 'bad_signature', 'unknown_key', 'alg_not_allowed', 'expired',
  'not_yet_valid', 'scope_mismatch', 'ip_mismatch', 'referrer_denied', 'user_agent_denied',
  'geo_denied', 'purpose_mismatch', 'revoked', 'ip_blocked', 'too_many_sessions', 'method_not_allowed',
]);

// Each CommonJS bundle (`streamgate`, `streamgate/hmac`, `streamgate/browser`) carries its
// own copy of this class, beside the ES module's. All of them brand their errors with one
// registered symbol, so `instanceof StreamgateError` holds whichever copy threw the error
// and whichever copy is asked (an app that imports the package while a dependency
// requires it, or uses two entries).
const BRAND = Symbol.for('streamgate.StreamgateError');

export class StreamgateError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'StreamgateError';
    this.code = code;
  }

  get [BRAND]() {
    return true;
  }

  static [Symbol.hasInstance](value) {
    return value !== null && typeof value === 'object' && value[BRAND] === true;
  }

  /** Whether this is a denial (a reason code) rather than a usage or key error. */
  get isDenial() {
    return REASON_CODES.includes(this.code);
  }
}

/** Turns what the wasm side threw (JSON `{code, message}`) into a StreamgateError. */
export function fromThrown(thrown) {
  if (thrown instanceof StreamgateError) return thrown;
  if (typeof thrown === 'string') {
    try {
      const { code, message } = JSON.parse(thrown);
      if (typeof code === 'string') return new StreamgateError(code, message);
    } catch { /* not ours: fall through */ }
  }
  // A trap in wasm would be a streamgate bug; never let it pass as a denial or a success.
  return new StreamgateError('internal_error', `streamgate internal error: ${thrown && thrown.message || thrown}`);
}

export function invalidInput(message) {
  return new StreamgateError('invalid_input', message);
}
