"""The single-node S3 service end to end with real clients: kiseki-meta,
kiseki-chunkd (6 devices) and kiseki-s3d on the kiseki backend, a tenant
and an access key made with the real `kiseki` CLI, then:

- boto3 (Debian's /usr/bin/python3): buckets (create, list, head); objects
  of 0 B, 1 B, 4 KiB (inline) and 5 MiB (chunked) put, got byte-identical,
  headed, deleted; ranges; list_objects_v2 with prefix and delimiter;
  multipart upload by hand (3 parts) and by upload_file with a small
  threshold; copy_object; NoSuchKey, NoSuchBucket; a wrong secret ->
  SignatureDoesNotMatch; a presigned GET fetched with urllib;
  and an expired one answered AccessDenied, a tampered one
  SignatureDoesNotMatch;
- the aws cli (Debian's /usr/bin/aws) with the credentials file and profile
  `make run` prints: s3 mb, cp up and down of a 20 MB file (multipart), ls,
  rm;
- kill -9 of s3d and a restart: the objects are still there.

All three daemons run for the whole module (one cluster: starting it per
test would cost more than the tests); the cluster and the client
environments come from s3cluster.py.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from s3cluster import s3_cluster


@pytest.fixture(scope="module")
def cluster(ks_build, tmp_path_factory):
    with s3_cluster(tmp_path_factory.mktemp("s3clients")) as c:
        c.boto('s3.create_bucket(Bucket="bkt1")')
        yield c


def test_buckets(cluster):
    cluster.boto("""
        s3.create_bucket(Bucket="bkt2")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert "bkt1" in names and "bkt2" in names, names
        s3.head_bucket(Bucket="bkt2")
        assert err(s3.create_bucket, Bucket="bkt2") == "BucketAlreadyOwnedByYou"
        s3.delete_bucket(Bucket="bkt2")
        assert err(s3.head_bucket, Bucket="bkt2") in ("404", "NoSuchBucket")
    """)


def test_objects_round_trip(cluster):
    cluster.boto("""
        for n in (0, 1, 4096, 5 << 20):
            data = rand(n)
            key = f"obj/{n}"
            r = s3.put_object(Bucket="bkt1", Key=key, Body=data)
            assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest(), r
            got = s3.get_object(Bucket="bkt1", Key=key)
            assert got["Body"].read() == data, n
            h = s3.head_object(Bucket="bkt1", Key=key)
            assert h["ContentLength"] == n and h["ETag"] == r["ETag"]
            s3.delete_object(Bucket="bkt1", Key=key)
            assert err(s3.head_object, Bucket="bkt1", Key=key) in ("404",
                                                                 "NoSuchKey")
    """)


def test_ranges(cluster):
    cluster.boto("""
        data = rand(5 << 20)
        s3.put_object(Bucket="bkt1", Key="ranged", Body=data)
        for rng, want in (("bytes=0-0", data[:1]),
                          ("bytes=100-4195", data[100:4196]),
                          ("bytes=4194300-4194400", data[4194300:4194401]),
                          ("bytes=-10", data[-10:]),
                          ("bytes=5000000-", data[5000000:])):
            r = s3.get_object(Bucket="bkt1", Key="ranged", Range=rng)
            assert r["Body"].read() == want, rng
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert err(s3.get_object, Bucket="bkt1", Key="ranged",
                   Range="bytes=%d-" % (6 << 20)) == "InvalidRange"
    """)


def test_listing(cluster):
    cluster.boto("""
        s3.create_bucket(Bucket="lst")
        for k in ("a/1", "a/2", "a/b/3", "c", "d/4"):
            s3.put_object(Bucket="lst", Key=k, Body=b"x")
        r = s3.list_objects_v2(Bucket="lst")
        assert [o["Key"] for o in r["Contents"]] == \
            ["a/1", "a/2", "a/b/3", "c", "d/4"], r
        r = s3.list_objects_v2(Bucket="lst", Delimiter="/")
        assert [o["Key"] for o in r.get("Contents", [])] == ["c"], r
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "d/"], r
        r = s3.list_objects_v2(Bucket="lst", Prefix="a/", Delimiter="/")
        assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2"], r
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/b/"], r
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket="lst", PaginationConfig={"PageSize": 2})
        keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
        assert keys == ["a/1", "a/2", "a/b/3", "c", "d/4"], keys
    """)


def test_multipart(cluster):
    cluster.boto("""
        parts = [rand(5 << 20), rand(5 << 20), rand(1234)]
        up = s3.create_multipart_upload(Bucket="bkt1", Key="mpu")["UploadId"]
        done = []
        for i, p in enumerate(parts, 1):
            r = s3.upload_part(Bucket="bkt1", Key="mpu", UploadId=up,
                               PartNumber=i, Body=p)
            done.append({"PartNumber": i, "ETag": r["ETag"]})
        r = s3.complete_multipart_upload(Bucket="bkt1", Key="mpu", UploadId=up,
                                         MultipartUpload={"Parts": done})
        md5s = b"".join(hashlib.md5(p).digest() for p in parts)
        assert r["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest(), r
        got = s3.get_object(Bucket="bkt1", Key="mpu")["Body"].read()
        assert got == b"".join(parts)

        from boto3.s3.transfer import TransferConfig
        data = rand(13 << 20)
        with open("up.bin", "wb") as f:
            f.write(data)
        tc = TransferConfig(multipart_threshold=5 << 20,
                            multipart_chunksize=5 << 20)
        s3.upload_file("up.bin", "bkt1", "uploaded", Config=tc)
        h = s3.head_object(Bucket="bkt1", Key="uploaded")
        assert h["ETag"].endswith('-3"'), h["ETag"]
        s3.download_file("bkt1", "uploaded", "down.bin", Config=tc)
        assert open("down.bin", "rb").read() == data
    """)


def test_copy(cluster):
    cluster.boto("""
        for n in (10, 5 << 20):
            data = rand(n)
            s3.put_object(Bucket="bkt1", Key="src", Body=data,
                          ContentType="text/x-src", Metadata={"k": "v"})
            s3.copy_object(Bucket="bkt1", Key="dst",
                           CopySource={"Bucket": "bkt1", "Key": "src"})
            r = s3.get_object(Bucket="bkt1", Key="dst")
            assert r["Body"].read() == data
            assert r["ContentType"] == "text/x-src" and r["Metadata"] == {
                "k": "v"}, r
    """)


def test_errors(cluster):
    cluster.boto("""
        assert err(s3.get_object, Bucket="bkt1", Key="nope") == "NoSuchKey"
        assert err(s3.get_object, Bucket="nobucket", Key="k") == \
            "NoSuchBucket"
        assert err(s3.list_objects_v2, Bucket="nobucket") == "NoSuchBucket"
    """)
    out = cluster.boto("""
        print(err(s3.list_objects_v2, Bucket="bkt1"))
    """, secret="x" * 40)
    assert out.strip() == "SignatureDoesNotMatch"


def test_presigned_get(cluster):
    cluster.boto("""
        data = rand(3000)
        s3.put_object(Bucket="bkt1", Key="pre sign/%x", Body=data)
        u = s3.generate_presigned_url(
            "get_object", Params={"Bucket": "bkt1", "Key": "pre sign/%x"},
            ExpiresIn=300)
        with urllib.request.urlopen(u, timeout=10) as r:
            assert r.read() == data
        i = u.index("X-Amz-Signature=") + len("X-Amz-Signature=")
        bad = u[:i] + ("1" if u[i] == "0" else "0") + u[i + 1:]
        short = s3.generate_presigned_url(
            "get_object", Params={"Bucket": "bkt1", "Key": "pre sign/%x"},
            ExpiresIn=1)
        import time
        time.sleep(2)
        for u, code in ((bad, "SignatureDoesNotMatch"),
                        (short, "AccessDenied")):
            try:
                urllib.request.urlopen(u, timeout=10)
                raise AssertionError("accepted: " + u)
            except urllib.error.HTTPError as e:
                body = e.read().decode()
                assert e.code == 403 and f"<Code>{code}</Code>" in body, body
    """)


def test_aws_cli_without_region(cluster):
    # What a `make run` user types: no region configured anywhere.
    cluster.aws("s3", "mb", "s3://noregion", region=None)
    assert "noregion" in cluster.aws("s3", "ls", region=None)
    cluster.aws("s3", "rb", "s3://noregion", region=None)


def test_aws_cli(cluster):
    root = cluster.root
    data = os.urandom(20_000_000)
    (root / "big.bin").write_bytes(data)
    cluster.aws("s3", "mb", "s3://cli")
    assert "cli" in cluster.aws("s3", "ls")
    cluster.aws("s3", "cp", root / "big.bin", "s3://cli/dir/big.bin")
    out = cluster.aws("s3", "ls", "s3://cli/dir/")
    assert "20000000" in out and "big.bin" in out, out
    cluster.aws("s3", "cp", "s3://cli/dir/big.bin", root / "big.out")
    assert hashlib.sha256((root / "big.out").read_bytes()).digest() == \
        hashlib.sha256(data).digest()
    cluster.aws("s3", "rm", "s3://cli/dir/big.bin")
    # ls of nothing: exit status 1 and no output, as against AWS
    assert cluster.aws("s3", "ls", "s3://cli/dir/", ok=(1,)) == ""
    cluster.aws("s3", "rb", "s3://cli")


def test_kill9_s3d_keeps_objects(cluster):
    cluster.boto("""
        for n in (1, 4096, 5 << 20):
            data = hashlib.sha256(b"seed%d" % n).digest() * (n // 32 + 1)
            s3.put_object(Bucket="bkt1", Key=f"durable/{n}", Body=data[:n])
    """)
    cluster.s3d.kill9()
    cluster.s3d.start()
    cluster.boto("""
        for n in (1, 4096, 5 << 20):
            data = hashlib.sha256(b"seed%d" % n).digest() * (n // 32 + 1)
            got = s3.get_object(Bucket="bkt1", Key=f"durable/{n}")["Body"].read()
            assert got == data[:n], n
    """)


def test_long_keys(cluster):
    """S3 keys up to 1,024 bytes (meta stores names past an LMDB key's
    room under a prefix + hash, shard.c LIMITS): round trip, listing order,
    pagination, markers, a delimiter past byte 490, multipart; 1,025 bytes
    is KeyTooLongError."""
    out = cluster.boto(r'''
s3.create_bucket(Bucket="lkb")
base = "dir/" + "p" * 600
keys = [base + "/" + "z" * (1024 - len(base) - 1),   # 1,024 bytes
        base + "/a",
        base + "b" * 300,
        "é" * 512,                                    # 1,024 bytes UTF-8
        "short"]
for k in keys:
    assert len(k.encode()) <= 1024, len(k.encode())
    s3.put_object(Bucket="lkb", Key=k, Body=k.encode())
for k in keys:
    assert s3.get_object(Bucket="lkb", Key=k)["Body"].read() == k.encode()
    assert s3.head_object(Bucket="lkb", Key=k)["ContentLength"] == len(k.encode())
want = sorted(keys, key=lambda s: s.encode())
got = [o["Key"] for o in s3.list_objects_v2(Bucket="lkb")["Contents"]]
assert got == want, (got, want)
# pages of 2 with continuation tokens, and v1 markers
got, tok = [], None
while True:
    kw = {"ContinuationToken": tok} if tok else {}
    r = s3.list_objects_v2(Bucket="lkb", MaxKeys=2, **kw)
    got += [o["Key"] for o in r.get("Contents", [])]
    if not r["IsTruncated"]:
        break
    tok = r["NextContinuationToken"]
assert got == want
got, marker = [], ""
while True:
    r = s3.list_objects(Bucket="lkb", MaxKeys=1, Marker=marker)
    got += [o["Key"] for o in r.get("Contents", [])]
    if not r["IsTruncated"]:
        break
    marker = got[-1]
assert got == want
r = s3.list_objects_v2(Bucket="lkb", StartAfter=keys[2])
assert [o["Key"] for o in r["Contents"]] == [k for k in want if k.encode() > keys[2].encode()]
# delimiter beyond 490 bytes
r = s3.list_objects_v2(Bucket="lkb", Prefix="dir/", Delimiter="/")
assert [p["Prefix"] for p in r["CommonPrefixes"]] == [base + "/"], r
assert [o["Key"] for o in r.get("Contents", [])] == [base + "b" * 300]
# multipart with a 1,024-byte key
mk = "m/" + "q" * 1022
u = s3.create_multipart_upload(Bucket="lkb", Key=mk)["UploadId"]
ups = s3.list_multipart_uploads(Bucket="lkb")["Uploads"]
assert [x["Key"] for x in ups] == [mk]
p1 = s3.upload_part(Bucket="lkb", Key=mk, UploadId=u, PartNumber=1, Body=b"a" * (5 << 20))
p2 = s3.upload_part(Bucket="lkb", Key=mk, UploadId=u, PartNumber=2, Body=b"b" * 10)
parts = s3.list_parts(Bucket="lkb", Key=mk, UploadId=u)["Parts"]
assert [p["PartNumber"] for p in parts] == [1, 2]
s3.complete_multipart_upload(Bucket="lkb", Key=mk, UploadId=u, MultipartUpload={"Parts": [
    {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
body = s3.get_object(Bucket="lkb", Key=mk)["Body"].read()
assert len(body) == (5 << 20) + 10 and body[-10:] == b"b" * 10
# over the limit: refused
assert err(s3.put_object, Bucket="lkb", Key="x" * 1025, Body=b"x") == "KeyTooLongError"
for k in keys + [mk]:
    s3.delete_object(Bucket="lkb", Key=k)
assert "Contents" not in s3.list_objects_v2(Bucket="lkb")
s3.delete_bucket(Bucket="lkb")
print("OK")
''', timeout=180)
    assert "OK" in out
