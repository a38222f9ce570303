"""`streamgate serve` as the forward-auth backend of real proxies: nginx (auth_request,
deploy/nginx/streamgate.conf) and Caddy (forward_auth, deploy/caddy/Caddyfile), each in
front of a static origin directory. The same requests go through both: allowed, every
denial reason a request can provoke, garbage, and revocations and blocks made through the
admin API while the proxies run.

Usage: python3 tests/serve/proxies.py PATH/TO/streamgate
Prints one line per check and 'proxies: N passed, N failed'; on failure, every log.
"""
import json
import sys
import time

from harness import PROXY_IP, VIEWER_IP, Suite, admin, gate_config, request, sign

SG = sys.argv[1]
SEGMENT = bytes(range(256)) * 40
PLAYLIST = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg1.ts\n#EXT-X-ENDLIST\n"
POSTER = b"\xff\xd8poster"
PREMIUM = b"premium " * 100
INDEX = b"<html>the media root's index</html>"
suite = Suite("proxies", show=lambda want: want[:2] if isinstance(want, tuple) else want)
check = suite.check


def outcome(response, with_body=False):
    """(status, reason) of a response; a denial's JSON body must name the same reason."""
    status, headers, body = response
    reason = headers.get("x-streamgate-reason")
    if status >= 400 and reason is not None:
        try:
            named = json.loads(body).get("error")
        except ValueError:
            named = f"(body is not JSON: {body[:80]!r})"
        if named != reason:
            reason = f"{reason} (body says {named})"
    return (status, reason, body) if with_body else (status, reason)


def run_cases(label, base, gate):
    get = lambda path, **kw: outcome(request(base, path, **kw))
    token = lambda *args: sign(SG, "--stream", "hls/*", *args)
    good = token("--jti", f"good-{label}")
    seg = "/hls/seg1.ts"

    check(f"{label}: allowed, token in the query, the origin's bytes",
          outcome(request(base, f"{seg}?token={good}"), with_body=True), (200, None, SEGMENT))
    check(f"{label}: allowed, Authorization: Bearer", get(seg, headers={"Authorization": f"Bearer {good}"}),
          (200, None))
    check(f"{label}: allowed, HEAD", get(f"{seg}?token={good}", method="HEAD"), (200, None))
    check(f"{label}: public path without a credential", get("/posters/p.jpg"), (200, None))
    check(f"{label}: missing_token", get(seg), (401, "missing_token"))
    check(f"{label}: expired", get(f"{seg}?token={token('--now', str(int(time.time()) - 7200), '--ttl', '60')}"),
          (403, "expired"))
    forged = sign(SG, "--stream", "hls/*").rsplit(".", 1)[0] + "." + "A" * 43
    check(f"{label}: bad_signature (signature replaced)", get(f"{seg}?token={forged}"), (403, "bad_signature"))
    other_key = sign(SG, "--stream", "hls/*", key="another-secret-entirely-0123456789abcdef")
    check(f"{label}: bad_signature (another key)", get(f"{seg}?token={other_key}"), (403, "bad_signature"))
    check(f"{label}: scope_mismatch", get(f"{seg}?token={sign(SG, '--stream', 'vod/*')}"), (403, "scope_mismatch"))
    check(f"{label}: dot segments climb out of a public path", get("/posters/../hls/seg1.ts"), (401, "missing_token"))
    check(f"{label}: encoded dot segments too", get("/posters/%2e%2e/hls/seg1.ts"), (401, "missing_token"))
    # Regression: the proxy decodes the path and resolves dot segments before it serves it,
    # so dot segments encoded in a /~sg/ credential segment served /premium/... while the
    # gate checked the path after the segment (a token's scope, or a public path).
    for path in (f"/~sg/x%2F..%2F..%2Fpremium/hls/seg1.ts?token={good}", "/~sg/x%2F..%2F..%2Fpremium/posters/p.jpg",
                 f"/~sg/%2e%2e/premium/hls/seg1.ts?token={good}"):
        status, _, body = request(base, path)
        check(f"{label}: {path.split('?')[0]} opens nothing ({status})", (status in (401, 403), PREMIUM in body),
              (True, False))
    # Regression (review): nginx ends the path at a raw `#` and served the root for
    # /~sg/..#/posters/p.jpg, which the gate had judged as the public /posters/p.jpg.
    status, _, body = request(base, "/~sg/..#/posters/p.jpg")
    check(f"{label}: /~sg/..#/posters/p.jpg opens nothing ({status})", (status in (401, 403), INDEX in body),
          (True, False))
    # Regression (review): the gate allowed every OPTIONS, and Caddy's file_server answers
    # OPTIONS (and POST) with the file; a publish token's POST read the segment.
    status, headers, body = request(base, "/premium/hls/seg1.ts", method="OPTIONS",
                                    headers={"Origin": "https://player.example", "Access-Control-Request-Method": "GET"})
    preflight = (204, "*")
    check(f"{label}: a preflight is answered by the proxy and opens nothing ({status})",
          (status, headers.get("access-control-allow-origin") if status == 204 else None, PREMIUM in body),
          (*preflight, False))
    status, headers, _ = request(base, f"{seg}?token={good}")
    check(f"{label}: the preflight's headers stay on the preflight", (status, "access-control-allow-methods" in headers),
          (200, False))
    if label == "nginx":
        check("nginx: the operator's own add_header still applies", headers.get("x-operator"), "kept")
    publisher = token("--purpose", "publish")
    for method in ("POST", "PUT"):
        status, _, body = request(base, f"{seg}?token={publisher}", method=method, body=b"")
        check(f"{label}: a publish token's {method} reads nothing ({status})", (status, SEGMENT in body), (405, False))
    check(f"{label}: method_not_allowed", get(f"{seg}?token={good}", method="DELETE"), (405, "method_not_allowed"))
    # Regression (review): the proxy passes a viewer's other headers on to the gate; the
    # headers that name the original request must never be the viewer's.
    for name, value in [("X-Original-URI", "/posters/p.jpg"), ("X-Forwarded-Uri", "/posters/p.jpg"),
                        ("X-Original-Method", "OPTIONS"), ("X-Forwarded-Method", "OPTIONS")]:
        status = get(seg, headers={name: value})[0]
        check(f"{label}: a viewer's own {name} opens nothing ({status})", status in (401, 403), True)

    bound = token("--ip", "198.51.100.7")
    check(f"{label}: ip_mismatch (the proxy's X-Forwarded-For names the viewer)",
          get(f"{seg}?token={bound}"), (403, "ip_mismatch"))
    check(f"{label}: ip_mismatch, a viewer's own X-Forwarded-For is not believed",
          get(f"{seg}?token={bound}", headers={"X-Forwarded-For": "198.51.100.7"}), (403, "ip_mismatch"))
    check(f"{label}: bound to the viewer's address", get(f"{seg}?token={token('--ip', VIEWER_IP)}"), (200, None))

    embed = token("--referrer", "player.example")
    check(f"{label}: referrer_denied (token's list)",
          get(f"{seg}?token={embed}", headers={"Referer": "https://pirate.example/watch"}), (403, "referrer_denied"))
    check(f"{label}: the token's own referrer",
          get(f"{seg}?token={embed}", headers={"Referer": "https://player.example/watch"}), (200, None))
    check(f"{label}: referrer_denied (policy's deny list)",
          get(f"{seg}?token={good}", headers={"Referer": "https://leech.example/"}), (403, "referrer_denied"))
    check(f"{label}: user_agent_denied (policy's deny list)",
          get(f"{seg}?token={good}", headers={"User-Agent": "Lavf/60.3.100"}), (403, "user_agent_denied"))

    limited = token("--jti", f"limit-{label}", "--max-sessions", "1")
    playlist = f"/hls/master.m3u8?token={limited}"
    check(f"{label}: first session", get(playlist, headers={"User-Agent": "player-a"}), (200, None))
    check(f"{label}: too_many_sessions (a second player)", get(playlist, headers={"User-Agent": "player-b"}),
          (429, "too_many_sessions"))
    check(f"{label}: the first player reloads", get(playlist, headers={"User-Agent": "player-a"}), (200, None))

    revoked = token("--jti", f"rev-{label}")
    check(f"{label}: before the revocation", get(f"{seg}?token={revoked}"), (200, None))
    check(f"{label}: admin revoke", admin(gate, "revoke", {"jti": f"rev-{label}"})[0], 200)
    check(f"{label}: revoked", get(f"{seg}?token={revoked}"), (403, "revoked"))
    check(f"{label}: admin unrevoke", admin(gate, "unrevoke", {"jti": f"rev-{label}"})[0], 200)
    check(f"{label}: after the unrevoke", get(f"{seg}?token={revoked}"), (200, None))

    check(f"{label}: admin block", admin(gate, "block", {"ip": "127.0.0.3"})[0], 200)
    check(f"{label}: ip_blocked", get(f"{seg}?token={good}", source="127.0.0.3"), (403, "ip_blocked"))
    check(f"{label}: another viewer is not", get(f"{seg}?token={good}"), (200, None))
    check(f"{label}: admin unblock", admin(gate, "unblock", {"ip": "127.0.0.3"})[0], 200)
    check(f"{label}: unblocked", get(f"{seg}?token={good}", source="127.0.0.3"), (200, None))

    # Garbage never reaches the origin and never breaks the gate: a denial with a reason.
    garbage = ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "%00%ff%fe", "x" * 6000,
               "eyJ" + "A" * 300 + ".eyJ.x", "%E2%98%83.%F0%9F%92%A9.%00"]
    for i, junk in enumerate(garbage):
        status, reason = get(f"{seg}?token={junk}")
        ok = status in (401, 403) and reason is not None and " " not in reason
        check(f"{label}: garbage token #{i} is denied with a reason", ok, True)
        if not ok:
            print(f"      got {status} {reason!r}")
    check(f"{label}: garbage bearer", get(seg, headers={"Authorization": "Bearer ()<>@,;:\\\"/[]?={}"}),
          (401, "malformed"))
    # Control characters in a header: the proxy or serve's HTTP parser refuses the request
    # (400, or 502 from nginx, whose auth_request turns serve's 400 into a failure).
    status, _ = get(seg, headers={"Authorization": "Bearer \x7f\x01"})
    check(f"{label}: control characters in a header are refused before the origin", status in (400, 502), True)
    check(f"{label}: garbage X-Forwarded-For from the viewer",
          get(f"{seg}?token={good}", headers={"X-Forwarded-For": "not-an-ip, ::zz, 300.1.1.1"}), (200, None))


def scenario(stack):
    root = stack.media({"hls/seg1.ts": SEGMENT, "hls/master.m3u8": PLAYLIST, "posters/p.jpg": POSTER,
                        "premium/hls/seg1.ts": PREMIUM, "premium/posters/p.jpg": PREMIUM, "index.html": INDEX})
    config = gate_config(publicPaths=["posters"], referrers={"deny": ["leech.example"]},
                         userAgents={"deny": ["Lavf*"]})
    gate = stack.serve(SG, config)
    auth = gate.split("://")[1]
    # An operator's own header for every response, which the included file must not hide
    # (nginx inherits add_header only into blocks that set none).
    nginx = stack.nginx("nginx", auth, root, extra_servers="    add_header X-Operator kept always;\n")
    caddy = stack.caddy("caddy", auth, root)

    status, headers, _ = request(gate, "/auth", source=PROXY_IP, headers={
        "X-Original-URI": f"/hls/seg1.ts?token={sign(SG, '--stream', 'hls/*', '--sub', 'viewer-9', '--jti', 'j-9')}",
        "X-Original-Method": "GET"})
    check("serve /auth names the verified subject and token id to the proxy",
          (status, headers.get("x-streamgate-subject"), headers.get("x-streamgate-token-id")),
          (200, "viewer-9", "j-9"))
    status, _, _ = request(gate, "/auth", source=VIEWER_IP,
                           headers={"X-Original-URI": "/hls/seg1.ts", "X-Original-Method": "GET"})
    check("serve /auth refuses to decide for a peer that is no trusted proxy", status, 403)

    run_cases("nginx", f"http://127.0.0.1:{nginx}", gate)
    run_cases("caddy", f"http://127.0.0.1:{caddy}", gate)

    # With the gate gone, both proxies fail closed.
    stack.stop("serve")
    good = sign(SG, "--stream", "hls/*")
    for label, port in (("nginx", nginx), ("caddy", caddy)):
        status, _, body = request(f"http://127.0.0.1:{port}", f"/hls/seg1.ts?token={good}")
        check(f"{label}: the gate down, nothing is served", (status, SEGMENT in body), (502, False))


def main():
    suite.run(scenario)


if __name__ == "__main__":
    main()
