"""Several `streamgate serve` nodes sharing one real redis-server (--redis): one session
limit across nodes under parallel starts, revocations and blocks seen by the other node
within a second, usage records from every node in one export, and what a Redis failure
does (revocation lookups fail closed; new sessions follow sessions.onStoreError).

Usage: python3 tests/serve/nodes.py PATH/TO/streamgate
Prints one line per check and 'nodes: N passed, N failed'; on failure, every log.
"""
import json
import subprocess
import sys
import threading
import time

from harness import ADMIN_TOKEN, PROXY_IP, Suite, admin, gate_config, listening, request, sign

SG = sys.argv[1]
ROUNDS = 3
PARALLEL = 20
LIMIT = 3
suite = Suite("nodes")
check = suite.check


def auth(node, uri, agent="player"):
    """What `node` answers a trusted proxy asking about `uri`: (status, reason)."""
    status, headers, _ = request(node, "/auth", source=PROXY_IP,
                                 headers={"X-Original-URI": uri, "X-Original-Method": "GET", "User-Agent": agent})
    return status, headers.get("x-streamgate-reason")


def parallel_starts(nodes, token):
    """PARALLEL players start at once, alternating nodes; returns the statuses, sorted."""
    barrier = threading.Barrier(PARALLEL)
    statuses = [None] * PARALLEL

    def player(i):
        barrier.wait()
        statuses[i] = auth(nodes[i % len(nodes)], f"/hls/master.m3u8?token={token}", f"player-{i}")[0]

    threads = [threading.Thread(target=player, args=(i,)) for i in range(PARALLEL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(statuses)


def until(node, uri, want, within=1.0):
    """Polls `node` until it answers `want`; returns the seconds it took, or None."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if auth(node, uri) == want:
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout


def scenario(stack):
    url = stack.redis()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    config = gate_config()
    a = stack.serve(SG, config, label="node-a", extra=["--redis", url])
    # The URL as the flag, and as the environment variable (a flag shows in `ps`).
    b = stack.serve(SG, config, label="node-b", env={"STREAMGATE_REDIS_URL": url})
    token = lambda *args: sign(SG, "--stream", "hls/*", *args)

    for round_ in range(ROUNDS):
        jti = f"shared-{round_}"
        got = parallel_starts([a, b], token("--jti", jti, "--max-sessions", str(LIMIT)))
        check(f"round {round_ + 1}: {PARALLEL} parallel starts through two nodes, limit {LIMIT}",
              got, [200] * LIMIT + [429] * (PARALLEL - LIMIT))
    status, _, body = request(b, "/admin/usage?window=1h", source=PROXY_IP,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    records = [json.loads(line) for line in body.decode().splitlines() if line.startswith("{")]
    per_token = sorted(sum(1 for r in records if r.get("token") == f"shared-{i}") for i in range(ROUNDS))
    check("one usage export from node b holds every admitted session of both nodes",
          (status, per_token), (200, [LIMIT] * ROUNDS))

    revoked = token("--jti", "cross-node")
    segment = f"/hls/seg1.ts?token={revoked}"
    check("both nodes allow before the revocation", (auth(a, segment), auth(b, segment)),
          ((200, None), (200, None)))
    check("revoke through node a", admin(a, "revoke", {"jti": "cross-node"})[0], 200)
    took = until(b, segment, (403, "revoked"))
    check("node b refuses the token within a second", took is not None, True)
    print(f"      (node b saw the revocation after {took * 1000 if took is not None else -1:.0f} ms)")
    check("unrevoke through node b", admin(b, "unrevoke", {"jti": "cross-node"})[0], 200)
    check("node a allows it again within a second", until(a, segment, (200, None)) is not None, True)
    check("block through node b", admin(b, "block", {"ip": "198.51.100.0/24"})[0], 200)
    blocked = lambda node: request(node, "/auth", source=PROXY_IP, headers={
        "X-Original-URI": segment, "X-Original-Method": "GET", "X-Forwarded-For": "198.51.100.9"})[1].get(
        "x-streamgate-reason")
    check("node a refuses the blocked range at once", blocked(a), "ip_blocked")

    # A Redis that answers reads but refuses the session update (scripts not allowed for
    # this user): segments still play; a new session follows onStoreError.
    redis_cli(port, "ACL", "SETUSER", "noscripts", "on", ">noscripts-pass", "~*", "&*", "+@all", "-@scripting")
    limited = url.replace("redis://", "redis://noscripts:noscripts-pass@")
    open_node = stack.serve(SG, {**config, "sessions": {"onStoreError": "open"}}, label="node-open",
                            extra=["--redis", limited])
    closed_node = stack.serve(SG, {**config, "sessions": {"onStoreError": "closed"}}, label="node-closed",
                              extra=["--redis", limited])
    playlist = f"/hls/master.m3u8?token={token('--max-sessions', '1')}"
    check("session store failing, onStoreError open: the new session plays", auth(open_node, playlist),
          (200, None))
    check("session store failing, onStoreError closed: refused", auth(closed_node, playlist)[0], 503)
    check("session store failing: segments still play", auth(closed_node, segment), (200, None))

    # Redis down: revocation lookups cannot be made, so every node refuses (503).
    stack.stop("redis")
    check("redis down: node a fails closed", auth(a, segment)[0], 503)
    check("redis down: node b fails closed", auth(b, segment)[0], 503)
    stack.start("redis-again", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", stack.dir],
                ready=lambda: listening(port))
    check("redis back: node a serves again", until(a, segment, (200, None), within=5) is not None, True)


def main():
    suite.run(scenario)


if __name__ == "__main__":
    main()
