"""The `streamgate serve` benchmark, side by side in one run (figures, never a test):
wrk on loopback against a 100 KB static file behind nginx,
  (a) with auth_request to `streamgate serve` /auth (deploy/nginx/streamgate.conf);
  (b) the same nginx and include, with auth_request to a server block that returns 200
      without checking anything: the ceiling of the auth_request design;
  (c) nginx's own secure_link on the same file;
and `streamgate serve` /auth alone against a bare hyper server answering 200 (the
`bare` example). Prints requests/s, p50/p99 latency, the CPU each server process used per
request (utime + stime from /proc over the run, divided by the requests wrk counted), and
the ratios a/b, a/c and serve/bare.

Usage: python3 tests/serve/bench.py PATH/TO/streamgate PATH/TO/bare
Environment: BENCH_SECONDS per case (5), BENCH_ROUNDS (3; each figure is the median),
BENCH_CONNECTIONS (8). scripts/bench-serve.sh builds and runs it.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys

from harness import PROXY_IP, Stack, free_port, gate_config, listening, request, sign

SG, BARE = sys.argv[1], sys.argv[2]
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
FILE = "/hls/seg.ts"
SECURE_LINK_SECRET = "bench-secure-link-secret"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """utime + stime of `pids` (and their threads), seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


def children(pid):
    """The nginx master's workers."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def to_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, headers, watched):
    """One wrk run; returns req/s, p50 ms, p99 ms and the CPU µs per request of each of
    `watched` ({name: [pids]})."""
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    before = {name: cpu_seconds(pids) for name, pids in watched.items()}
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    after = {name: cpu_seconds(pids) for name, pids in watched.items()}
    if "Non-2xx" in out or "Socket errors" in out:
        raise AssertionError(f"wrk saw failures for {url}:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    cpu = {name: (after[name] - before[name]) * 1e6 / max(requests, 1) for name in watched}
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": to_ms(latency["50"]), "p99": to_ms(latency["99"]), "cpu": cpu}


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: scripts/setup.sh --peers installs it")
    stack = Stack("bench")
    try:
        root = stack.media({FILE.lstrip("/"): os.urandom(100 * 1024)})
        gate = stack.serve(SG, gate_config())
        bare_port = free_port()
        stack.start("bare", [BARE, f"127.0.0.1:{bare_port}"], ready=lambda: listening(bare_port))
        ceiling_port, secure_link_port = free_port(), free_port()
        with_gate = stack.nginx("nginx-gate", gate.split("://")[1], root)
        others = stack.nginx("nginx-others", f"127.0.0.1:{ceiling_port}", root, extra_servers=f"""
    server {{
        listen 127.0.0.1:{ceiling_port};
        location / {{ return 200; }}
    }}
    server {{
        listen 127.0.0.1:{secure_link_port};
        root {root};
        location / {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri$remote_addr {SECURE_LINK_SECRET}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
        }}
    }}
""")
        token = sign(SG, "--stream", "hls/*", "--ttl", "86400")
        link = subprocess.run([SG, "sign", "secure-link", "--key", SECURE_LINK_SECRET, "--uri", FILE, "--ip",
                               "127.0.0.1", "--ttl", "86400"], capture_output=True, text=True, check=True)
        md5, expires = link.stdout.strip().split(",")
        serve_pid, bare_pid = stack.procs["serve"].pid, stack.procs["bare"].pid
        gate_nginx = children(stack.procs["nginx-gate"].pid)
        other_nginx = children(stack.procs["nginx-others"].pid)
        auth_headers = {"X-Original-URI": f"{FILE}?token={token}", "X-Original-Method": "GET"}
        cases = [
            ("a", "nginx auth_request -> streamgate serve", f"http://127.0.0.1:{with_gate}{FILE}?token={token}",
             {}, {"nginx": gate_nginx, "serve": [serve_pid]}),
            ("b", "nginx auth_request -> return 200 (ceiling)", f"http://127.0.0.1:{others}{FILE}?token={token}",
             {}, {"nginx": other_nginx}),
            ("c", "nginx secure_link", f"http://127.0.0.1:{secure_link_port}{FILE}?md5={md5}&expires={expires}",
             {}, {"nginx": other_nginx}),
            ("serve", "streamgate serve /auth alone", f"{gate}/auth", auth_headers, {"serve": [serve_pid]}),
            ("bare", "bare hyper server, 200", f"http://127.0.0.1:{bare_port}/auth", auth_headers,
             {"bare": [bare_pid]}),
        ]
        # Every URL must be a 100 KB 200 (or the decision's 200), not a fast denial.
        for key, _, url, headers, _ in cases:
            base, path = url.split("/", 3)[2], "/" + url.split("/", 3)[3]
            status, _, body = request(f"http://{base}", path, headers=headers, source=PROXY_IP)
            size = len(body)
            if status != 200 or (key in "abc" and size != 100 * 1024):
                raise AssertionError(f"case {key}: {url} answered {status} with {size} bytes")

        print(f"{os.cpu_count()} cores; wrk -t1 -c{CONNECTIONS}, {SECONDS} s per case, {ROUNDS} round(s) "
              f"taking turns (medians); 100 KB file; nginx worker_processes 1")
        for _, _, url, headers, watched in cases:  # warm-up, unmeasured
            subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", "-d1s", url,
                            *sum((["-H", f"{n}: {v}"] for n, v in headers.items()), [])],
                           capture_output=True, check=True)
        runs = {key: [] for key, *_ in cases}
        for _ in range(ROUNDS):
            for key, _, url, headers, watched in cases:
                runs[key].append(wrk(url, headers, watched))

        med = lambda key, field: statistics.median(r[field] for r in runs[key])
        cpu = lambda key, proc: statistics.median(r["cpu"][proc] for r in runs[key])
        print(f"{'case':<46} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}  CPU µs/request")
        for key, label, _, _, watched in cases:
            spent = ", ".join(f"{proc} {cpu(key, proc):.1f}" for proc in watched)
            print(f"({key}) {label:<42} {med(key, 'rps'):>8.0f} {med(key, 'p50'):>7.2f} {med(key, 'p99'):>7.2f}  {spent}")
        for name, num, den, goal in (("a/b (auth_request to serve vs ceiling)", "a", "b", 0.9),
                                     ("a/c (auth_request to serve vs secure_link)", "a", "c", None),
                                     ("serve/bare (/auth vs bare hyper)", "serve", "bare", 0.8)):
            ratio = med(num, "rps") / med(den, "rps")
            verdict = "" if goal is None else f"  goal >= {goal}: {'met' if ratio >= goal else 'NOT met'}"
            print(f"ratio {name}: {ratio:.2f}{verdict}")
    except Exception:
        stack.dump()
        raise
    finally:
        stack.close()


if __name__ == "__main__":
    main()
