// The gate's per-request calls into the runtime (see boundary.rs). Each does in one call what
// web-sys would do in one crossing of the JS/wasm boundary per header or property. Plumbing
// only: which headers, which URL and which status are decided in Rust. Name lists arrive
// joined by "\n", which no header name or value contains.

/** The values of the headers `names` names, each followed by "\n"; "\0" for an absent one. */
export function headerValues(headers, names) {
  let values = '';
  for (const name of names.split('\n')) {
    let value = null;
    try {
      value = headers.get(name);
    } catch {
      // Not a valid header name (a misconfigured CLIENT_IP_HEADER): as if absent.
    }
    values += (value ?? '\0') + '\n';
  }
  return values;
}

/** `fetch(url)` with `method`, those of the `forwarded` headers `incoming` has, `body` and `cf`. */
export function fetchOrigin(url, method, incoming, forwarded, body, cf) {
  const headers = new Headers();
  for (const name of forwarded.split('\n')) {
    const value = incoming.get(name);
    if (value !== null) headers.set(name, value);
  }
  return fetch(url, { method, headers, body, cf });
}

/** A response with `response`'s status, headers and body (passed on unread), and `set` (name, value, …) set. */
export function passOn(response, set) {
  const passed = new Response(response.body, { status: response.status, headers: response.headers });
  const pairs = set.split('\n');
  for (let i = 0; i + 1 < pairs.length; i += 2) passed.headers.set(pairs[i], pairs[i + 1]);
  return passed;
}
