"""kiseki-s3d end to end: the real daemon driven by boto3 and curl.

The daemon runs here with s3.backend=none (no access keys, no operations;
it says so in its log), so what is checked is everything in front of the
backend, as real clients see it (test_s3_clients.py drives the real
backend over meta and chunkd):

- a boto3 request signed with any key: 403 InvalidAccessKeyId in S3 XML
  (boto3 parses it into ClientError), with a request id;
- an anonymous request (curl, and boto3 with signing disabled): 403
  AccessDenied;
- an operation this gateway has no code for (?acl): 501 NotImplemented;
- garbage instead of HTTP: 400, and the daemon keeps serving;
- a connection left idle in keep-alive does not hold up SIGTERM, which
  exits 0; the log says event=backend_missing and event=ready;
- /metrics on admin.listen (urllib from this interpreter): request and
  error counters move with the requests made.  /healthz answers ok.

Clients get an explicit environment: Debian's /usr/bin/python3 and boto3,
AWS_* set here, AWS_CA_BUNDLE and config files unset.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import urllib.request

import pytest

from ksharness import free_port

PY = "/usr/bin/python3"


def start_s3d(daemons, port=None):
    port = port or free_port()
    cfg = {"s3": {"listen": f"127.0.0.1:{port}", "request_timeout": "5s",
                  "backend": "none"},
           "admin": {"listen": f"127.0.0.1:{free_port()}"},
           "log": {"level": "info"}}
    return daemons("s3d", cfg, binary="kiseki-s3d", ready_port=port,
                   ready_log=r"event=ready")


def client_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "AKIDNOSUCHKEY",
                "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


BOTO = r"""
import sys, boto3, botocore
from botocore.config import Config
from botocore import UNSIGNED
url, unsigned = sys.argv[1], sys.argv[2] == "1"
cfg = Config(signature_version=UNSIGNED if unsigned else "s3v4",
             s3={"addressing_style": "path"}, retries={"max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=url, config=cfg)
try:
    s3.list_objects_v2(Bucket="bucket1")
    print("OK")
except botocore.exceptions.ClientError as e:
    r = e.response
    print(r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"],
          r["ResponseMetadata"].get("RequestId", ""))
"""


def boto(url, unsigned=False):
    p = subprocess.run([PY, "-c", BOTO, url, "1" if unsigned else "0"],
                       capture_output=True, text=True, timeout=60,
                       env=client_env())
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def curl(url, *args):
    p = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}",
                        *args, url],
                       capture_output=True, text=True, timeout=30,
                       env=client_env())
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


def test_s3d_errors_as_clients_see_them(ks_build, daemons):
    d = start_s3d(daemons)
    host, port = d.addr
    url = f"http://{host}:{port}"
    assert re.search(r"event=backend_missing", d.log_text())

    status, code, rid = boto(url)
    assert (status, code) == ("403", "InvalidAccessKeyId")
    assert re.fullmatch(r"[0-9A-F]{16}", rid)

    assert boto(url, unsigned=True)[:2] == ["403", "AccessDenied"]

    status, body = curl(f"{url}/bucket1/key")
    assert status == 403
    assert "<Code>AccessDenied</Code>" in body
    assert "<RequestId>" in body

    status, body = curl(f"{url}/bucket1?acl")
    assert status == 501
    assert "<Code>NotImplemented</Code>" in body

    # garbage instead of HTTP: 400, and the daemon keeps serving
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
    assert curl(f"{url}/bucket1/key")[0] == 403
    assert d.running


def test_s3d_sigterm_with_idle_connection(ks_build, daemons):
    d = start_s3d(daemons)
    host, port = d.addr
    # an idle keep-alive connection must not hold the shutdown up
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 403")
    assert d.stop() == 0
    s.close()
    log = d.log_text()
    assert "event=stopped" in log or "event=stopping" in log


def scrape(d, path="/metrics"):
    url = f"http://{d.config['admin']['listen']}{path}"
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.headers["Content-Type"], r.read().decode()


def metric(text, name):
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, (name, text)
    return float(m.group(1))


def test_s3d_metrics(ks_build, daemons):
    d = start_s3d(daemons)
    host, port = d.addr
    ctype, text = scrape(d)
    assert ctype.startswith("text/plain; version=0.0.4")
    assert "# TYPE kiseki_s3_requests_total counter" in text
    assert "# TYPE kiseki_s3_connections_open gauge" in text
    requests = metric(text, "kiseki_s3_requests_total")
    errors = metric(text, "kiseki_s3_errors_total")
    assert metric(text, "kiseki_s3_requests_inflight") == 0

    assert curl(f"http://{host}:{port}/bucket1/key")[0] == 403
    assert curl(f"http://{host}:{port}/bucket1?acl")[0] == 501
    _, text = scrape(d)
    assert metric(text, "kiseki_s3_requests_total") == requests + 2
    assert metric(text, "kiseki_s3_errors_total") == errors + 2
    assert scrape(d, "/healthz")[1] == "ok\n"
    assert d.stop() == 0
