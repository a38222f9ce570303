"""What the `streamgate serve` end-to-end tests and benchmark share: free ports, processes
started on 127.0.0.1 with their own configuration and temporary directories (never system
services), the repo's example proxy configurations as they are, signed tokens, and HTTP
requests from a chosen source address.

Standard library only. Every process started here is stopped at exit; on failure,
`Stack.dump()` prints each one's log.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX_INCLUDE = os.path.join(REPO, "deploy", "nginx", "streamgate.conf")
CADDYFILE = os.path.join(REPO, "deploy", "caddy", "Caddyfile")

# The proxies run on 127.0.0.1. Viewers connect from 127.0.0.2, so the proxy is trusted
# (policy.trustedProxies) and the viewer is not: what a viewer puts in X-Forwarded-For is
# never believed, what the proxy puts there is.
PROXY_IP = "127.0.0.1"
VIEWER_IP = "127.0.0.2"

ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef0123456789"
HS256_SECRET = "e2e-signing-secret-0123456789abcdef"


def readme_nginx_http(listen, root, gate, include):
    """The README's nginx example (the `nginx` block under "nginx (`auth_request`"), with
    its listen address, media root, gate address and include path replaced: the tests run
    the snippet operators copy, so it cannot drift from what works."""
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    start = readme.index("```nginx\n", readme.index("nginx (`auth_request`")) + len("```nginx\n")
    block = readme[start:readme.index("```", start)]
    replacements = (("listen 80;", f"listen {listen};"), ("root /srv/media;", f"root {root};"),
                    ("server 127.0.0.1:9090;", f"server {gate};"),
                    ("include /etc/nginx/streamgate.conf;", f"include {include};"))
    for old, new in replacements:
        if block.count(old) != 1:
            raise SystemExit(f"README's nginx example no longer has exactly one {old!r}")
        block = block.replace(old, new)
    return block


class Suite:
    """A suite's checks, counted and printed one a line, and its run: on any failure the
    logs of every process it started, then exit 1."""

    def __init__(self, name, show=lambda want: want):
        self.name, self.show = name, show
        self.passed = self.failed = 0

    def check(self, name, got, want):
        if got == want:
            self.passed += 1
            print(f"ok    {name}: {self.show(want)}")
        else:
            self.failed += 1
            print(f"FAIL  {name}: got {got!r}, want {want!r}")

    def run(self, scenario):
        """Runs `scenario(stack)` on a fresh Stack and exits with the suite's result."""
        stack = Stack(self.name)
        ok = False
        try:
            scenario(stack)
            ok = self.failed == 0
        except Exception as exc:  # report, then the logs
            self.failed += 1
            print(f"FAIL  {type(exc).__name__}: {exc}")
        finally:
            if not ok:
                stack.dump()
            stack.close()
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        sys.exit(0 if ok else 1)


def free_port():
    """A port nothing listens on right now (the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """Processes started for one test run, in one temporary directory."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix=f"streamgate-{name}-")
        # nginx workers drop to an unprivileged user: they must read what they serve.
        os.chmod(self.dir, 0o755)
        self.procs = {}  # label: Popen
        self.logs = []  # (label, log path): every log `dump()` prints

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def start(self, label, args, env=None, ready=None):
        """Starts `args` with its output in `<label>.log`; waits until `ready()` is true."""
        log = self.path(f"{label}.log")
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs[label] = proc
        self.logs.append((label, log))
        deadline = time.monotonic() + 20
        while ready is not None and not ready():
            if proc.poll() is not None:
                raise AssertionError(f"{label} exited with {proc.returncode}:\n{read(log)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{label} did not come up in 20 s:\n{read(log)}")
            time.sleep(0.05)
        return proc

    def stop(self, label):
        """Stops one process (SIGTERM, then SIGKILL after 5 s)."""
        proc = self.procs[label]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self, keep=False):
        for label in reversed(list(self.procs)):
            self.stop(label)
        if keep:
            print(f"(kept {self.dir})")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump(self):
        for label, log in self.logs:
            print(f"----- {label} ({log}) -----")
            print(read(log)[-20000:])

    # --- the pieces -------------------------------------------------------------------

    def media(self, files):
        """A static origin directory with `files` ({relative path: bytes})."""
        root = self.path("media")
        for rel, data in files.items():
            full = os.path.join(root, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
        for base, dirs, names in os.walk(root):
            os.chmod(base, 0o755)
            for n in names:
                os.chmod(os.path.join(base, n), 0o644)
        return root

    def serve(self, binary, config, label="serve", extra=(), env=None):
        """`streamgate serve` on a free port with `config` (a dict); returns its base URL."""
        port = free_port()
        config_path = self.path(f"{label}.json")
        with open(config_path, "w") as f:
            json.dump(config, f)
        full_env = dict(os.environ, STREAMGATE_ADMIN_TOKEN=ADMIN_TOKEN, **(env or {}))
        args = [binary, "serve", "--config", config_path, "--listen", f"127.0.0.1:{port}", *extra]
        self.start(label, args, env=full_env, ready=lambda: answers(port, "/healthz"))
        return f"http://127.0.0.1:{port}"

    def nginx(self, label, auth_address, media_root, extra_servers=""):
        """nginx running the README's own `http` block (readme_nginx_http) with
        deploy/nginx/streamgate.conf included, in front of `media_root`, asking the gate at
        `auth_address`; returns its port."""
        prefix = self.path(label)
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        os.chmod(prefix, 0o755)
        port = free_port()
        conf = os.path.join(prefix, "nginx.conf")
        # Only the process's own files and the addresses differ from what the README shows.
        temp_paths = "".join(f"    {kind}_temp_path {prefix}/tmp/{kind};\n"
                             for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        http = readme_nginx_http(listen=f"127.0.0.1:{port}", root=media_root, gate=auth_address,
                                 include=NGINX_INCLUDE)
        http = http.replace("http {\n", "http {\n    access_log off;\n" + temp_paths + extra_servers, 1)
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
{http}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.start(label, [nginx, "-p", prefix, "-c", conf, "-e", f"{prefix}/error.log"],
                   ready=lambda: listening(port))
        self.logs.append((f"{label} error log", f"{prefix}/error.log"))
        return port

    def caddy(self, label, auth_address, media_root):
        """Caddy running deploy/caddy/Caddyfile as it is, the environment naming the site,
        the gate and the media root; returns its port."""
        home = self.path(label)
        os.makedirs(home, exist_ok=True)
        port = free_port()
        env = dict(os.environ, HOME=home, XDG_DATA_HOME=home, XDG_CONFIG_HOME=home,
                   CADDY_ADMIN=f"127.0.0.1:{free_port()}",
                   STREAMGATE_SITE=f"http://127.0.0.1:{port}", STREAMGATE_AUTH=auth_address,
                   STREAMGATE_MEDIA=media_root)
        self.start(label, ["caddy", "run", "--config", CADDYFILE, "--adapter", "caddyfile"], env=env,
                   ready=lambda: listening(port))
        return port

    def redis(self):
        """A redis-server on a free port, nothing saved to disk; returns its URL."""
        port = free_port()
        self.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", self.dir], ready=lambda: listening(port))
        return f"redis://127.0.0.1:{port}/"


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError as e:
        return f"({e})"


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def answers(port, path):
    try:
        return request(f"http://127.0.0.1:{port}", path, source=PROXY_IP)[0] == 200
    except OSError:
        return False


def request(base, path, method="GET", headers=None, body=None, source=VIEWER_IP, timeout=10):
    """One HTTP/1.1 request from `source`; returns (status, headers as a dict with
    lower-case names, body bytes). `path` is sent byte for byte."""
    host, port = base.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout, source_address=(source, 0))
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def admin(base, action, payload):
    """POST /admin/<action> with the admin token; returns (status, body)."""
    status, _, body = request(base, f"/admin/{action}", method="POST", source=PROXY_IP,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                       "Content-Type": "application/json"},
                              body=json.dumps(payload).encode())
    return status, body


def sign(binary, *args, key=HS256_SECRET):
    """`streamgate sign jwt` with the test key (or `key`); returns the token."""
    run = subprocess.run([binary, "sign", "jwt", "--key", key, "--alg", "HS256", *args],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise AssertionError(f"streamgate sign jwt {' '.join(args)}: {run.stderr}")
    return run.stdout.strip()


def gate_config(**policy):
    """The configuration document the tests give `streamgate serve`."""
    return {
        "keys": [{"alg": "HS256", "secret": HS256_SECRET}],
        "policy": {"trustedProxies": [PROXY_IP], **policy},
    }
