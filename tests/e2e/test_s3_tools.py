"""The single-node S3 service (s3cluster.py) driven by the other real S3
clients the issue names, and a crash test:

- s3cmd (Debian's /usr/bin/s3cmd, SigV4, path style, a config file written
  here): mb, put of a small file and of a 20 MB file in 5 MB multipart
  chunks, ls, get byte-identical, del, rb;
- rclone (Debian's /usr/bin/rclone, configured only through RCLONE_CONFIG_KS_*
  environment variables): copy of a directory tree (nested directory, a
  name with a space, a 7 MB file sent as a multipart upload), `rclone
  check`, sync after a local change and a local delete, check again, copy
  back and compare;
- crash: a boto3 uploader writes objects of mixed sizes (1 KiB inline,
  100 KiB to 5 MiB chunked; the content of each key derives from its name)
  and prints each key once its PUT answered 200, retrying through outages;
  meanwhile kiseki-meta, kiseki-chunkd and kiseki-s3d are each killed with
  SIGKILL in turn and restarted; at the end every acknowledged key must
  read back byte-identical.

One cluster for the module, as in test_s3_clients.py; the crash test runs
last because it kills the daemons.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import threading
import time

import pytest

from s3cluster import PY, REGION, s3_cluster

S3CMD = "/usr/bin/s3cmd"
RCLONE = "/usr/bin/rclone"




@pytest.fixture(scope="module")
def cluster(ks_build, tmp_path_factory):
    with s3_cluster(tmp_path_factory.mktemp("s3tools")) as c:
        yield c


def client_env(cluster):
    """The cluster's client environment, with no AWS_* and no RCLONE_* of
    the caller's."""
    return {k: v for k, v in cluster.env().items()
            if not k.startswith("RCLONE_")}


# --- s3cmd -----------------------------------------------------------------


def s3cmd(cluster, *args, timeout=120):
    cfg = cluster.root / "s3cmd.cfg"
    if not cfg.exists():
        cfg.write_text(
            "[default]\n"
            f"access_key = {cluster.akid}\n"
            f"secret_key = {cluster.secret}\n"
            f"host_base = 127.0.0.1:{cluster.s3_port}\n"
            f"host_bucket = 127.0.0.1:{cluster.s3_port}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            f"bucket_location = {REGION}\n")
    env = {k: v for k, v in client_env(cluster).items()
           if not k.startswith("AWS_")}
    p = subprocess.run([S3CMD, "-c", str(cfg), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout,
                       env=env, cwd=cluster.root)
    assert p.returncode == 0, (args, p.stdout, p.stderr[-4000:])
    return p.stdout


def test_s3cmd(cluster):
    root = cluster.root
    small = os.urandom(3000)
    big = os.urandom(20_000_000)
    (root / "small.bin").write_bytes(small)
    (root / "big.bin").write_bytes(big)
    s3cmd(cluster, "mb", "s3://s3cmd")
    assert "s3://s3cmd" in s3cmd(cluster, "ls")
    s3cmd(cluster, "put", root / "small.bin", "s3://s3cmd/d/small.bin")
    s3cmd(cluster, "put", "--multipart-chunk-size-mb=5", root / "big.bin",
          "s3://s3cmd/d/big.bin")
    # 20 MB in 5 MiB parts: a 4-part multipart upload
    cluster.boto("""
        h = s3.head_object(Bucket="s3cmd", Key="d/big.bin")
        assert h["ETag"].endswith('-4"'), h["ETag"]
    """)
    out = s3cmd(cluster, "ls", "s3://s3cmd/d/")
    assert "s3://s3cmd/d/small.bin" in out and "s3://s3cmd/d/big.bin" in out
    assert "20000000" in out and "3000" in out, out
    for name, data in (("small.bin", small), ("big.bin", big)):
        dst = root / (name + ".got")
        s3cmd(cluster, "get", "--force", f"s3://s3cmd/d/{name}", dst)
        assert dst.read_bytes() == data, name
    s3cmd(cluster, "del", "s3://s3cmd/d/small.bin", "s3://s3cmd/d/big.bin")
    assert s3cmd(cluster, "ls", "s3://s3cmd/d/").strip() == ""
    s3cmd(cluster, "rb", "s3://s3cmd")
    assert "s3://s3cmd" not in s3cmd(cluster, "ls")


# --- rclone ----------------------------------------------------------------


def rclone(cluster, *args, timeout=120, ok=(0,)):
    conf = cluster.root / "rclone.conf"
    conf.touch()
    env = client_env(cluster)
    env.update({"RCLONE_CONFIG": str(conf),
                "RCLONE_CONFIG_KS_TYPE": "s3",
                "RCLONE_CONFIG_KS_PROVIDER": "Other",
                "RCLONE_CONFIG_KS_ENDPOINT": cluster.url,
                "RCLONE_CONFIG_KS_ACCESS_KEY_ID": cluster.akid,
                "RCLONE_CONFIG_KS_SECRET_ACCESS_KEY": cluster.secret,
                "RCLONE_CONFIG_KS_REGION": REGION,
                # 7 MB goes as a 2-part multipart upload
                "RCLONE_CONFIG_KS_UPLOAD_CUTOFF": "5M",
                "RCLONE_CONFIG_KS_CHUNK_SIZE": "5M"})
    p = subprocess.run([RCLONE, "--retries", "1", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout,
                       env=env, cwd=cluster.root)
    assert p.returncode in ok, (args, p.stdout, p.stderr[-4000:])
    return p


def test_rclone(cluster):
    src = cluster.root / "tree"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha\n")
    (src / "with space.txt").write_bytes(os.urandom(1000))
    (src / "sub" / "b.bin").write_bytes(os.urandom(100_000))
    (src / "sub" / "deeper" / "c.bin").write_bytes(os.urandom(10))
    (src / "sub" / "big.bin").write_bytes(os.urandom(7_000_000))
    remote = "ks:rcl/prefix"
    rclone(cluster, "mkdir", "ks:rcl")
    rclone(cluster, "copy", src, remote)
    rclone(cluster, "check", src, remote)
    names = rclone(cluster, "lsf", "-R", "--files-only", remote).stdout
    assert sorted(names.split("\n")[:-1]) == [
        "a.txt", "sub/b.bin", "sub/big.bin", "sub/deeper/c.bin",
        "with space.txt"], names

    # A difference must be seen (the check can fail).
    (src / "a.txt").write_bytes(b"alpha, changed\n")
    rclone(cluster, "check", src, remote, ok=(1,))
    (src / "sub" / "b.bin").unlink()
    rclone(cluster, "sync", src, remote)
    rclone(cluster, "check", src, remote)
    names = rclone(cluster, "lsf", "-R", "--files-only", remote).stdout
    assert "sub/b.bin" not in names.split("\n"), names

    back = cluster.root / "back"
    rclone(cluster, "copy", remote, back)
    cmp = filecmp.dircmp(src, back)
    files = ["a.txt", "with space.txt", "sub/big.bin", "sub/deeper/c.bin"]
    for f in files:
        assert (back / f).read_bytes() == (src / f).read_bytes(), f
    assert not (back / "sub" / "b.bin").exists()
    assert not cmp.left_only and not cmp.right_only, cmp.report()


# --- crash -----------------------------------------------------------------

# One object per key; its size and content derive from the key's number so
# the checker regenerates them.  One key in 10 is chunked (100 KiB, 1 MiB,
# 5 MiB in turn), the rest are 1 KiB (inline).
CRASH_COMMON = r"""
import hashlib, sys, time
import boto3, botocore
from botocore.config import Config

def size_of(i):
    if i % 10 != 9:
        return 1024
    return (100 << 10, 1 << 20, 5 << 20)[(i // 10) % 3]

def content(i):
    seed = hashlib.sha256(b"crash-%d" % i).digest()
    n = size_of(i)
    return (seed * (n // 32 + 1))[:n]

def key_of(i):
    return "crash/%05d" % i

def client(attempts):
    return boto3.client("s3", endpoint_url=sys.argv[1], config=Config(
        s3={"addressing_style": "path"}, signature_version="s3v4",
        connect_timeout=2, read_timeout=20,
        retries={"max_attempts": attempts, "mode": "standard"}))
"""

# Prints "ack KEY" after each 200, "err ..." for each failed try; retries a
# key until it is acknowledged (or 60 s pass: then exits 3).
CRASH_UPLOADER = CRASH_COMMON + r"""
s3 = client(1)
count = int(sys.argv[2])
for i in range(count):
    data = content(i)
    deadline = time.monotonic() + 60
    while True:
        try:
            r = s3.put_object(Bucket="crash", Key=key_of(i), Body=data)
            if r["ResponseMetadata"]["HTTPStatusCode"] == 200:
                print("ack", key_of(i), flush=True)
                break
            print("err status", r["ResponseMetadata"]["HTTPStatusCode"],
                  flush=True)
        except Exception as e:
            print("err", key_of(i), type(e).__name__,
                  str(e).replace("\n", " ")[:200], flush=True)
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.2)
"""

CRASH_CHECKER = CRASH_COMMON + r"""
s3 = client(8)
bad = []
for line in sys.stdin:
    i = int(line)
    got = s3.get_object(Bucket="crash", Key=key_of(i))["Body"].read()
    if got != content(i):
        bad.append("%s: %d bytes, want %d" % (key_of(i), len(got), size_of(i)))
print("checked")
for b in bad:
    print("BAD", b)
"""

CRASH_OBJECTS = 1000
CRASH_DOWN_S = 0.5


def test_crash_kill9_each_daemon_during_uploads(cluster):
    cluster.boto('s3.create_bucket(Bucket="crash")')
    t0 = time.monotonic()
    up = subprocess.Popen([PY, "-c", CRASH_UPLOADER, cluster.url,
                           str(CRASH_OBJECTS)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=client_env(cluster), cwd=cluster.root)
    acked: list[int] = []
    errors: list[str] = []
    cond = threading.Condition()

    def read():
        for line in up.stdout:
            with cond:
                if line.startswith("ack "):
                    acked.append(int(line.split()[1].split("/")[1]))
                else:
                    errors.append(line.rstrip())
                cond.notify_all()
        with cond:
            cond.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_acks(n, timeout=60):
        with cond:
            ok = cond.wait_for(
                lambda: len(acked) >= n or up.poll() is not None,
                timeout=timeout)
        assert ok and len(acked) >= n, (n, len(acked), errors[-5:])

    kills = []
    for step, d in enumerate((cluster.meta, cluster.chunkd, cluster.s3d), 1):
        wait_acks(CRASH_OBJECTS * step // 4)
        at = len(acked)
        k0 = time.monotonic()
        d.kill9()
        time.sleep(CRASH_DOWN_S)  # the uploader meets the outage
        d.start()
        kills.append((d.name, at, round(time.monotonic() - k0, 2)))
    try:
        rc = up.wait(timeout=90)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    reader.join(timeout=5)
    stderr = up.stderr.read()
    up_s = time.monotonic() - t0
    assert rc == 0, (rc, stderr[-3000:], errors[-10:])
    assert sorted(acked) == list(range(CRASH_OBJECTS)), len(acked)
    # s3d down means refused connections: proof the outages were met
    assert any("crash/" in e for e in errors), errors[-10:]

    chk = subprocess.run([PY, "-c", CRASH_CHECKER, cluster.url],
                         input="".join(f"{i}\n" for i in acked),
                         capture_output=True, text=True, timeout=120,
                         env=client_env(cluster), cwd=cluster.root)
    assert chk.returncode == 0, chk.stderr[-3000:]
    assert chk.stdout.startswith("checked") and "BAD" not in chk.stdout, \
        chk.stdout[-3000:]
    print(f"crash: {len(acked)} objects acknowledged in {up_s:.1f}s, "
          f"{len(errors)} failed tries, kills (daemon, acked before, "
          f"down s) {kills}, check {time.monotonic() - t0 - up_s:.1f}s")
    for e in errors:
        print("  failed try:", e)
