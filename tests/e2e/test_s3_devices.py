"""Device loss under the single-node S3 service (s3cluster.py: chunkd with 6
device directories dev0..dev5, s3d writing every chunk as 4 data + 2
parity fragments, one per device): "remove or corrupt up to 2 of the 6
device directories: every object still reads correctly".

Objects of every shape are put through S3 (1 KiB inline in meta, 100 KiB
in one chunk, 5 MiB spanning 2 chunks, 13 MiB in 4), their content derived
from their size so a check needs no copy of the data.  Then:

- corrupt: every fragment file on 2 devices gets bytes flipped in its
  payload, and some are truncated as well; every object reads back
  byte-identical, whole and in ranges, and chunkd logs the corruption;
- remove: 2 device directories are deleted (rm -rf) under a running
  chunkd; everything reads; chunkd restarted without them (it re-creates
  an empty directory, or, where a plain file is in the way, starts with
  that device failed) still serves the 4 left;
- replaced: a device re-created empty (new device id) under a running s3d;
  a chunked PUT works at once (chunkd answers "unknown device" for the old
  id, the chunk is stored 5 of 6 and s3d lists the devices again), and the
  next one places a fragment on the new device;
- degraded writes: with 1 of 6 devices failed under a running chunkd,
  PUTs succeed (5 of 6 fragments, the write quorum) and read back; with 2
  failed a PUT answers a 5xx and nothing of it is visible;
- a 3rd device lost: a GET of a chunked object answers a clean 5xx (no
  hang, no 200 with wrong bytes) and the daemons keep serving the rest
  (inline objects, listings, new small objects).

Each test destroys devices, so each has its own small cluster (a few
seconds to start).  Failed GETs are fetched through presigned URLs with
curl, so no SDK retries hide or stretch them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import textwrap

import pytest

from s3cluster import s3_cluster

SIZES = (1024, 100 << 10, 5 << 20, 13 << 20)
INLINE = 1024
NDEV = 6
HDR = 64  # fragment header (ks/chunk_store.h)

# Defined in the boto prelude of each check: the content of key "o/<n>",
# and `s3n`, a client that does not retry (the SDK's retries would hide a
# first attempt's 5xx).
CONTENT = """
def content(n):
    seed = hashlib.sha256(b"dev%d" % n).digest()
    return (seed * (n // 32 + 1))[:n]
s3n = boto3.client("s3", endpoint_url=url,
                   config=Config(s3={"addressing_style": "path"},
                                 signature_version="s3v4",
                                 retries={"max_attempts": 1,
                                          "mode": "standard"}))
"""


@pytest.fixture
def cluster(ks_build, tmp_path):
    with s3_cluster(tmp_path) as c:
        boto(c, f"""
            s3.create_bucket(Bucket="dev")
            for n in {SIZES!r}:
                s3.put_object(Bucket="dev", Key=f"o/{{n}}", Body=content(n))
        """)
        yield c


def bytes_of(n):
    """content(n) of CONTENT, here."""
    seed = hashlib.sha256(b"dev%d" % n).digest()
    return (seed * (n // 32 + 1))[:n]


def boto(c, body, timeout=60):
    """Cluster.boto with content(n) defined."""
    return c.boto(CONTENT + textwrap.dedent(body), timeout=timeout)


def dev_dir(c, i):
    return c.root / "chunkd.data" / f"dev{i}"


def fragments(c, i):
    """The fragment files of device i."""
    frags = dev_dir(c, i) / "frags"
    return sorted(p for p in frags.rglob("*") if p.is_file()
                  and not p.name.startswith("."))


def check_all(c, sizes=SIZES):
    """Every object reads back whole and in ranges, byte-identical."""
    boto(c, f"""
        for n in {sizes!r}:
            want = content(n)
            got = s3.get_object(Bucket="dev", Key=f"o/{{n}}")["Body"].read()
            assert got == want, ("whole", n, len(got))
            # ranges: the start, one across the 4 MiB chunk boundary where
            # there is one, the tail
            rngs = [(0, 99), (n // 2, n // 2 + 999), (n - 10, n - 1)]
            if n > (4 << 20):
                rngs.append(((4 << 20) - 500, (4 << 20) + 500))
            for a, b in rngs:
                b = min(b, n - 1)
                got = s3.get_object(Bucket="dev", Key=f"o/{{n}}",
                                    Range=f"bytes={{a}}-{{b}}")["Body"].read()
                assert got == want[a:b + 1], ("range", n, a, b)
    """, timeout=120)


def presign_all(c, sizes=SIZES):
    """{size: presigned GET url} of the objects."""
    out = c.boto(f"""
        for n in {sizes!r}:
            print(n, s3.generate_presigned_url(
                "get_object", Params={{"Bucket": "dev", "Key": f"o/{{n}}"}},
                ExpiresIn=600))
    """)
    return {int(n): u for n, u in (ln.split(" ", 1) for ln in out.splitlines())}


def curl(url, dst):
    """GET url with curl into dst, with a deadline (a hang fails the test);
    returns (curl's exit status, HTTP status, curl's stderr).  Exit status
    18 is a body cut short."""
    p = subprocess.run(["curl", "-sS", "--max-time", "30", "-o", str(dst),
                        "-w", "%{http_code}", url],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 28, ("curl timed out", url)
    return p.returncode, int(p.stdout or 0), p.stderr.strip()


def test_layout(cluster):
    # Every chunk has one fragment on each of the 6 devices: the 3 chunked
    # objects hold 1 + 2 + 4 chunks (the inline one none).
    for i in range(NDEV):
        frags = fragments(cluster, i)
        assert len(frags) == 7, (i, frags)
        for p in frags:
            assert p.stat().st_size > HDR, p
    check_all(cluster)


def test_corrupt_two_devices(cluster):
    n = 0
    for i in (1, 4):
        for j, p in enumerate(fragments(cluster, i)):
            size = p.stat().st_size
            with open(p, "r+b") as f:
                for off in (HDR, HDR + (size - HDR) // 2, size - 1):
                    f.seek(off)
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ 0x5A]))
                if j % 2:
                    f.truncate(HDR + (size - HDR) // 3)
            n += 1
    assert n == 14
    check_all(cluster)
    assert "event=fragment_corrupt" in cluster.chunkd.log_text()
    # still true after chunkd restarts over the damaged devices
    cluster.chunkd.restart()
    check_all(cluster)


def test_remove_two_devices(cluster):
    for i in (0, 5):
        shutil.rmtree(dev_dir(cluster, i))
    check_all(cluster)
    assert cluster.chunkd.log_text().count("event=device_failed") == 2
    # a restart with the directories gone: chunkd must start and serve the
    # other 4 (it makes dev0 and dev5 again, empty, with new device ids)
    cluster.chunkd.restart()
    assert "devices=6 failed=0" in cluster.chunkd.log_text(since_start=True)
    check_all(cluster)


def test_put_after_device_replaced(cluster):
    # A device replaced by an empty one (new id) while s3d runs: chunkd
    # has 6 healthy devices again, so a chunked PUT must work at its first
    # attempt and never answer NoSuchKey: s3d still names the old id for
    # one fragment, chunkd answers "unknown device", the chunk is stored 5
    # of 6 and s3d lists the devices again.
    shutil.rmtree(dev_dir(cluster, 5))
    cluster.chunkd.restart()
    assert fragments(cluster, 5) == []
    put = """
        try:
            s3n.put_object(Bucket="dev", Key="o/{n}", Body=content({n}))
            print("ok")
        except botocore.exceptions.ClientError as e:
            print(e.response["Error"]["Code"])
    """
    out = boto(cluster, put.format(n=777777))
    assert out.strip() == "ok", f"PUT after device replacement: {out.strip()}"
    # the next PUT (one chunk: 6 fragments) uses the new device
    out = boto(cluster, put.format(n=666666))
    assert out.strip() == "ok", f"second PUT: {out.strip()}"
    assert len(fragments(cluster, 5)) == 1
    check_all(cluster, SIZES + (666666, 777777))


def test_put_with_failed_devices(cluster):
    # One device lost under a running chunkd: PUTs of every shape succeed
    # at their first attempt (5 of 6 fragments: the write quorum), and read
    # back, also once a 2nd device is lost (4 fragments left of 5).
    shutil.rmtree(dev_dir(cluster, 3))
    new = (100 << 10, 5 << 20, 13 << 20 | 5, 200)
    boto(cluster, f"""
        for n in {new!r}:
            s3n.put_object(Bucket="dev", Key=f"o/{{n}}", Body=content(n))
    """)
    assert "event=device_failed" in cluster.chunkd.log_text()
    check_all(cluster, SIZES + new)
    # A 2nd device lost: 4 of 6 is short of the quorum.  A PUT answers a
    # 5xx (503: retryable), never NoSuchKey, and leaves nothing visible;
    # the first one finds the failure, the next ones know it.
    shutil.rmtree(dev_dir(cluster, 0))
    out = boto(cluster, f"""
        for i, n in enumerate((100 << 10, 5 << 20, 100 << 10)):
            try:
                s3n.put_object(Bucket="dev", Key=f"x/{{i}}", Body=content(n))
                print("ok", i)
            except botocore.exceptions.ClientError as e:
                print(e.response["ResponseMetadata"]["HTTPStatusCode"],
                      e.response["Error"]["Code"])
            assert err(s3.head_object, Bucket="dev", Key=f"x/{{i}}") == "404"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dev")["Contents"]]
        assert not [k for k in keys if k.startswith("x/")], keys
        # small objects live in meta: still written
        s3n.put_object(Bucket="dev", Key="o/300", Body=content(300))
    """)
    assert out.split("\n")[:3] == ["503 ServiceUnavailable"] * 3, out
    check_all(cluster, SIZES + new + (300,))


def test_unusable_device_at_start(cluster):
    # A device path that cannot be made a directory (a file is in the way)
    # and one removed: chunkd starts with one failed device and serves.
    cluster.chunkd.stop()
    shutil.rmtree(dev_dir(cluster, 2))
    dev_dir(cluster, 2).write_bytes(b"not a directory")
    shutil.rmtree(dev_dir(cluster, 3))
    cluster.chunkd.start()
    assert "event=device_failed" in cluster.chunkd.log_text(since_start=True)
    check_all(cluster)


def test_third_device_lost(cluster):
    urls = presign_all(cluster)
    for i in (0, 2, 3):
        shutil.rmtree(dev_dir(cluster, i))
    dst = cluster.root / "got"
    bad = []
    for n in SIZES:
        rc, code, why = curl(urls[n], dst)
        body = dst.read_bytes() if dst.exists() else b""
        if n <= INLINE:
            if (rc, code) != (0, 200) or body != bytes_of(n):
                bad.append((n, "inline object not served", rc, code, why))
        elif not (rc == 0 and 500 <= code < 600 and b"<Code>" in body):
            # e.g. "200 and the connection closed": headers went out before
            # the first chunk was read
            bad.append((n, rc, code, why, body[:200]))
        dst.unlink(missing_ok=True)
    # the rest is still served: inline objects, listings, new small objects
    boto(cluster, f"""
        got = s3.get_object(Bucket="dev", Key="o/{INLINE}")["Body"].read()
        assert got == content({INLINE})
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dev")["Contents"]]
        assert keys == sorted(f"o/{{n}}" for n in {SIZES!r}), keys
        s3.put_object(Bucket="dev", Key="small", Body=b"still here")
        assert s3.get_object(Bucket="dev", Key="small")["Body"].read() == \\
            b"still here"
    """)
    assert cluster.chunkd.running and cluster.s3d.running
    assert not bad, f"GETs with 3 devices lost, not a clean 5xx: {bad}"
