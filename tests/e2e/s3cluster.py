"""A single-node S3 service for end-to-end tests: kiseki-meta,
kiseki-chunkd (6 devices) and kiseki-s3d on the kiseki backend, with a
tenant and an access key made by the real `kiseki` CLI.  Shared by the
S3 client tests (test_s3_clients.py, test_s3_tools.py) so the setup lives
in one place.

    with s3_cluster(root) as c:       # or the module fixture of a test file
        c.boto("s3.create_bucket(Bucket='b')")
        c.aws("s3", "ls")
        c.meta / c.chunkd / c.s3d     # ksharness.Daemon: kill9(), restart()

Clients get an explicit environment (`env()`): AWS_* set here,
AWS_CA_BUNDLE, AWS_PROFILE and config files unset, because on some machines
the `python3` and `aws` on PATH are not Debian's.  The first request with a
key answers 500 while s3d fetches the key from meta; the SDKs' retries
cover that.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import textwrap

from ksharness import DaemonSet, bin_path, free_port

PY = "/usr/bin/python3"
AWS = "/usr/bin/aws"
REGION = "us-east-1"


def kiseki(*args):
    env = {k: v for k, v in os.environ.items() if k != "KISEKI_META"}
    p = subprocess.run([str(bin_path("kiseki")), *map(str, args)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def parse_kv(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.strip().partition(" ")
        out[k] = v.strip()
    return out


class Cluster:
    def __init__(self, ds: DaemonSet, root):
        self.ds = ds
        self.root = root
        self.meta_addr = f"127.0.0.1:{free_port()}"
        self.chunkd_addr = f"127.0.0.1:{free_port()}"
        self.s3_port = free_port()
        self.url = f"http://127.0.0.1:{self.s3_port}"
        self.creds = root / "credentials"

    def start(self):
        mport = int(self.meta_addr.rsplit(":", 1)[1])
        cport = int(self.chunkd_addr.rsplit(":", 1)[1])
        self.meta = self.ds(
            "meta", {"rpc": {"listen": self.meta_addr},
                     "meta": {"data_dir": str(self.root / "meta.data")},
                     "admin": {"listen": f"127.0.0.1:{free_port()}"}},
            binary="kiseki-meta", ready_port=mport, ready_log=r"event=ready")
        self.chunkd = self.ds(
            "chunkd", {"rpc": {"listen": self.chunkd_addr},
                       "chunkd": {"data_dir": str(self.root / "chunkd.data"),
                                  "device_count": 6},
                       "admin": {"listen": f"127.0.0.1:{free_port()}"}},
            binary="kiseki-chunkd", ready_port=cport, ready_log=r"event=ready")
        self.s3d = self.ds(
            "s3d", {"s3": {"listen": f"127.0.0.1:{self.s3_port}",
                           "meta": self.meta_addr, "chunkd": self.chunkd_addr,
                           "kms_dir": str(self.root / "keys"),
                           "mmap_dir": str(self.root)},
                    "admin": {"listen": f"127.0.0.1:{free_port()}"}},
            binary="kiseki-s3d", ready_port=self.s3_port,
            ready_log=r"event=devices_listed")
        kiseki("tenant", "create", "dev", "--meta", self.meta_addr)
        out = parse_kv(kiseki("key", "create", "--tenant", "dev", "--meta",
                              self.meta_addr, "--credentials", self.creds,
                              "--profile", "kiseki"))
        self.akid = out["access_key_id"]
        self.secret = out["secret_access_key"]
        return self

    def env(self, secret=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": self.akid,
                    "AWS_SECRET_ACCESS_KEY": secret or self.secret,
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_CONFIG_FILE": "/dev/null",
                    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                    "AWS_EC2_METADATA_DISABLED": "true"})
        return env

    def boto(self, body, secret=None, timeout=60):
        """Run body with `s3` (a path-style client), `url`, `rand(n)` and
        `err(fn)` (the error code fn raised) defined; returns stdout."""
        code = BOTO_PRELUDE + textwrap.dedent(body)
        p = subprocess.run([PY, "-c", code, self.url], capture_output=True,
                           text=True, timeout=timeout, env=self.env(secret),
                           cwd=self.root)
        assert p.returncode == 0, p.stderr[-4000:]
        return p.stdout

    def aws(self, *args, timeout=120, ok=(0,), region=REGION):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_SHARED_CREDENTIALS_FILE": str(self.creds),
                    "AWS_CONFIG_FILE": "/dev/null",
                    "AWS_EC2_METADATA_DISABLED": "true"})
        if region:
            env["AWS_DEFAULT_REGION"] = region
        p = subprocess.run([AWS, "--profile", "kiseki", "--endpoint-url",
                            self.url, *map(str, args)], capture_output=True,
                           text=True, timeout=timeout, env=env, cwd=self.root)
        assert p.returncode in ok, (args, p.stdout, p.stderr[-4000:])
        return p.stdout


BOTO_PRELUDE = r"""
import hashlib, os, sys, urllib.request, urllib.error
import boto3, botocore
from botocore.config import Config
url = sys.argv[1]
# s3v4 explicitly: this boto3 presigns with SigV2 otherwise (not served)
s3 = boto3.client("s3", endpoint_url=url,
                  config=Config(s3={"addressing_style": "path"},
                                signature_version="s3v4",
                                retries={"max_attempts": 8}))
def rand(n):
    return os.urandom(n)
def err(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("no error")
"""


@contextlib.contextmanager
def s3_cluster(root):
    """A started Cluster under root; on exit every daemon gets SIGTERM and
    must exit 0 with no handles left open (checked after the body, so a
    module fixture reports it as a teardown error)."""
    ds = DaemonSet(root)
    problems = []
    try:
        yield Cluster(ds, root).start()
    finally:
        problems = ds.stop_all()
        for d in ds:  # SIGTERM: exit 0 (checked by stop_all), nothing left
            if "event=handles_left_open" in d.log_text():
                problems.append(f"{d.name}: handles_left_open")
        if problems:
            print(ds.report())
    assert not problems, problems
