"""Interop against real peers: PyJWT, Akamai's EdgeAuth generator, and nginx secure_link.

Usage: python peers.py PATH/TO/streamgate
Each check runs our real CLI and a real peer on the same inputs. Ends with the line
'interop: N passed, N failed'.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import jwt as pyjwt
from akamai.edgeauth import EdgeAuth
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

SG = sys.argv[1]
NOW = 1700000000
results = {"passed": 0, "failed": 0}


def sg(*args, check=True):
    run = subprocess.run([SG, *args], capture_output=True, text=True)
    if check and run.returncode != 0:
        raise AssertionError(f"streamgate {' '.join(args)} exited {run.returncode}: {run.stderr}")
    return run


def case(name):
    def wrap(fn):
        try:
            fn()
            results["passed"] += 1
            print(f"ok    {name}")
        except Exception as exc:  # report and go on; the summary decides
            results["failed"] += 1
            print(f"FAIL  {name}: {exc}")
        return fn
    return wrap


workdir = tempfile.mkdtemp(prefix="streamgate-interop-")
# nginx workers drop to an unprivileged user; they must be able to read what they serve.
os.chmod(workdir, 0o755)


@case("PyJWT verifies streamgate HS256/HS384/HS512 tokens")
def _():
    for alg in ("HS256", "HS384", "HS512"):
        secret = ("interop-secret-" + alg).ljust(64, "-")  # RFC 7518 3.2: at least the hash size
        token = sg("sign", "jwt", "--key", secret, "--alg", alg, "--stream", "live/a", "--sub", "u1",
                   "--now", str(NOW), "--ttl", "600").stdout.strip()
        claims = pyjwt.decode(token, secret, algorithms=[alg], options={"verify_exp": False})
        assert claims["sub"] == "u1" and claims["streams"] == ["live/a"], claims
        assert claims["exp"] == NOW + 600, claims


@case("PyJWT verifies streamgate ES256/EdDSA/RS256 tokens (keys from streamgate keygen, PEM)")
def _():
    for alg in ("ES256", "EdDSA", "RS256"):
        path = os.path.join(workdir, f"{alg}.pem")
        sg("keygen", "--alg", alg, "--format", "pem", "--out", path)
        token = sg("sign", "jwt", "--key", "@" + path, "--stream", "vod/**", "--now", str(NOW)).stdout.strip()
        public = open(path + ".pub").read()
        claims = pyjwt.decode(token, public, algorithms=[alg], options={"verify_exp": False})
        assert claims["streams"] == ["vod/**"], claims


@case("streamgate verifies PyJWT HS256 and ES256 tokens")
def _():
    secret = "pyjwt-made-this-secret-0123456789"
    token = pyjwt.encode({"exp": NOW + 60, "streams": ["live/x"], "jti": "p1"}, secret, algorithm="HS256")
    out = json.loads(sg("verify", token, "--key", secret, "--path", "/live/x/i.m3u8", "--now", str(NOW), "--json").stdout)
    assert out["allowed"] and out["claims"]["jti"] == "p1", out
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pub_path = os.path.join(workdir, "pyjwt-es256.pub.pem")
    open(pub_path, "wb").write(pem)
    token = pyjwt.encode({"exp": NOW + 60}, key, algorithm="ES256", headers={"kid": "py"})
    out = json.loads(sg("verify", token, "--key", "@" + pub_path, "--path", "/x", "--now", str(NOW), "--json").stdout)
    assert out["allowed"], out


@case("streamgate refuses PyJWT alg=none and HS256-with-public-key tokens")
def _():
    unsigned = pyjwt.encode({"exp": NOW + 60}, None, algorithm="none")
    run = sg("verify", unsigned, "--key", "whatever-secret-of-thirty-two-bytes", "--path", "/x", "--now", str(NOW), "--json", check=False)
    assert run.returncode == 1 and json.loads(run.stdout)["reason"] == "alg_not_allowed", run.stdout
    pub_path = os.path.join(workdir, "RS256.pem.pub")
    public = open(pub_path).read()
    # PyJWT itself refuses to HMAC with a PEM key, so forge with the stdlib.
    import base64, hashlib, hmac
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps({"exp": NOW + 60}).encode())
    sig = hmac.new(public.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + b64(sig)
    run = sg("verify", forged, "--key", "@" + pub_path, "--path", "/x", "--now", str(NOW), "--json", check=False)
    assert run.returncode == 1 and json.loads(run.stdout)["reason"] == "alg_not_allowed", run.stdout


EDGE_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
EDGE_CASES = [
    dict(acl=["/live/*"], kw={}),
    dict(acl=["/live/*", "/vod/*"], kw=dict(ip="198.51.100.9", session_id="s 1", payload="x:y z")),
    dict(acl=["/hls/*"], kw=dict(start_time=NOW - 10, algorithm="sha1", salt="nacl")),
    dict(url="/vod/film one/index.m3u8", kw=dict(escape_early=True, payload="k=v&w")),
    dict(url="/vod/plain.m3u8", kw=dict(algorithm="md5", session_id="abc")),
    dict(url="/vod/(x)!/a.ts", kw=dict(escape_early=True, ip="2001:db8::7")),
]


def edge_cli_args(c):
    kw = c["kw"]
    args = ["sign", "edgeauth", "--key", EDGE_KEY, "--exp", str(NOW + 300)]
    if "acl" in c:
        for a in c["acl"]:
            args += ["--acl", a]
    else:
        args += ["--url-path", c["url"]]
    for flag, name in (("--ip", "ip"), ("--id", "session_id"), ("--data", "payload"), ("--salt", "salt"),
                       ("--start", "start_time"), ("--alg", "algorithm")):
        if name in kw:
            args += [flag, str(kw[name])]
    if kw.get("escape_early"):
        args += ["--escape-early", "--escape-style", "python"]
    return args


@case("EdgeAuth tokens are byte-identical to akamai-edgeauth (Python) and verify")
def _():
    for c in EDGE_CASES:
        ea = EdgeAuth(key=EDGE_KEY, end_time=NOW + 300, **c["kw"])
        theirs = ea.generate_acl_token(c["acl"]) if "acl" in c else ea.generate_url_token(c["url"])
        ours = sg(*edge_cli_args(c)).stdout.strip()
        assert ours == theirs, f"\n ours   {ours}\n theirs {theirs}"
        path = c["url"].replace(" ", "%20") if "url" in c else c["acl"][0].replace("*", "seg.ts")
        verify = ["verify", theirs, "--scheme", "edgeauth", "--key", EDGE_KEY, "--path", path,
                  "--ip", c["kw"].get("ip", "192.0.2.1"), "--now", str(NOW), "--json"]
        if "algorithm" in c["kw"]:
            verify += ["--alg", c["kw"]["algorithm"]]
        if "salt" in c["kw"]:
            verify += ["--salt", c["kw"]["salt"]]
        out = json.loads(sg(*verify).stdout)
        assert out["allowed"], out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@case("nginx secure_link accepts streamgate links and refuses tampered and expired ones")
def _():
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise AssertionError("nginx is not installed (scripts/setup.sh installs nginx-light)")
    port = free_port()
    prefix = os.path.join(workdir, "nginx")
    os.makedirs(os.path.join(prefix, "logs"))
    os.makedirs(os.path.join(prefix, "html", "s"))
    os.makedirs(os.path.join(prefix, "tmp"))
    open(os.path.join(prefix, "html", "s", "link"), "w").write("segment-bytes\n")
    conf = os.path.join(prefix, "nginx.conf")
    open(conf, "w").write(f"""
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp; fastcgi_temp_path {prefix}/tmp;
  uwsgi_temp_path {prefix}/tmp; scgi_temp_path {prefix}/tmp;
  server {{
    listen 127.0.0.1:{port};
    root {prefix}/html;
    location /s/ {{
      secure_link $arg_md5,$arg_expires;
      secure_link_md5 "$secure_link_expires$uri$remote_addr interop-secret";
      if ($secure_link = "") {{ return 403; }}
      if ($secure_link = "0") {{ return 410; }}
    }}
  }}
}}
""")
    proc = subprocess.Popen([nginx, "-p", prefix, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

        def status(url):
            try:
                return urllib.request.urlopen(url, timeout=5).status
            except urllib.error.HTTPError as e:
                return e.code

        base = f"http://127.0.0.1:{port}/s/link"
        future = int(time.time()) + 600
        good = sg("sign", "secure-link", "--key", "interop-secret", "--ip", "127.0.0.1", "--exp", str(future),
                  "--url", base).stdout.strip()
        got = status(good)
        assert got == 200, f"{got} for {good}"
        assert status(good.replace("expires=", "expires=1")) == 403, "tampered expiry accepted"
        past = sg("sign", "secure-link", "--key", "interop-secret", "--ip", "127.0.0.1", "--exp", "1000",
                  "--url", base).stdout.strip()
        assert status(past) == 410, past
        # And what nginx accepts, streamgate accepts: same canonical string.
        out = json.loads(sg("verify", good, "--key", "interop-secret", "--ip", "127.0.0.1", "--json").stdout)
        assert out["allowed"], out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


shutil.rmtree(workdir, ignore_errors=True)
print(f"interop: {results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
