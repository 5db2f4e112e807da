"""The boto3 sweep of issue 3: every S3 operation kiseki-s3d serves, driven
by Debian's boto3 (/usr/bin/python3), with its error codes and HTTP
statuses, and the listing edge cases (delimiter, markers, pagination, url
encoding).  test_s3_clients.py has the happy paths of a few operations and
the presigned URLs; this file is the wide one.

One cluster for the module (s3cluster.py).  s3d is restarted once with
`s3.domain` set, so that besides the path-style client `s3` a
virtual-hosted-style client `vs3` (endpoint http://s3.test:PORT, buckets as
BUCKET.s3.test) can run: the client scripts resolve *.s3.test to 127.0.0.1
themselves (an /etc/hosts entry of their own, as `curl --resolve` would),
so nothing on the machine needs changing.  The path-style client's Host is
127.0.0.1, which is not under the domain, so it keeps working.

Where boto3 cannot be made to send a wrong request (a wrong checksum, a
malformed DeleteObjects body), a botocore `before-sign` hook changes the
request before it is signed, so s3d sees a correctly signed request with
the wrong content — what a buggy client would send.
"""

from __future__ import annotations

import textwrap

import pytest

from s3cluster import s3_cluster

DOMAIN = "s3.test"

PRELUDE = r"""
import base64, datetime, json, re, socket, time, zlib
from botocore import UNSIGNED

_gai = socket.getaddrinfo
def _gai_local(host, *a, **kw):
    if isinstance(host, str) and (host == "s3.test" or host.endswith(".s3.test")):
        host = "127.0.0.1"
    return _gai(host, *a, **kw)
socket.getaddrinfo = _gai_local
port = url.rsplit(":", 1)[1]
def client(style="path", endpoint=None, attempts=8, **kw):
    return boto3.client(
        "s3", endpoint_url=endpoint or url,
        config=Config(s3={"addressing_style": style},
                      signature_version=kw.pop("sig", "s3v4"),
                      retries={"max_attempts": attempts}), **kw)
vs3 = client("virtual", "http://s3.test:" + port)
# botocore retries BadDigest (and 5xx) with back-off: for the errors
s3once = client(attempts=1)

def errs(fn, *a, **kw):
    # (code, HTTP status) of the ClientError fn raises
    try:
        fn(*a, **kw)
    except botocore.exceptions.ClientError as e:
        return (e.response["Error"]["Code"],
                e.response["ResponseMetadata"]["HTTPStatusCode"])
    raise AssertionError("no error")

def on_sign(cl, op, fn):
    # fn(request) runs on each request of operation op just before it is
    # signed; returns the handler for unregistering
    def h(request, **kw):
        fn(request)
    cl.meta.events.register("before-sign.s3." + op, h)
    return h

def raw_body(cl, op):
    # the raw XML bodies of op's answers, appended to the list returned
    # (this botocore has no before-parse event; needs-retry sees the
    # response, and answering None asks for no retry)
    got = []
    def h(response=None, **kw):
        if response is not None:
            got.append(response[0].content)
    cl.meta.events.register("needs-retry.s3." + op, h)
    return got

def md5(b):
    return hashlib.md5(b).hexdigest()

def _run(src):
    # the test's body, compiled under its own name so that a traceback
    # shows its lines
    import linecache
    linecache.cache["<test>"] = (len(src), None, src.splitlines(True),
                                 "<test>")
    try:
        exec(compile(src, "<test>", "exec"), globals())
    except BaseException:
        import traceback
        traceback.print_exc()  # the Python version: it reads linecache
        sys.exit(1)
"""


@pytest.fixture(scope="module")
def cluster(ks_build, tmp_path_factory):
    with s3_cluster(tmp_path_factory.mktemp("s3boto3")) as c:
        assert c.s3d.stop() == 0
        c.s3d.config["s3"]["domain"] = DOMAIN
        c.s3d.start()
        c.run = lambda body, **kw: c.boto(
            PRELUDE + "_run(%r)\n" % textwrap.dedent(body), **kw)
        c.run('s3.create_bucket(Bucket="bkt")')
        yield c


def test_buckets(cluster):
    cluster.run("""
        s3.create_bucket(Bucket="bk-one")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert "bk-one" in names and "bkt" in names, names
        assert names == sorted(names), names
        r = s3.list_buckets()
        assert r["Owner"]["ID"], r
        assert errs(s3.create_bucket, Bucket="bk-one") == \
            ("BucketAlreadyOwnedByYou", 409)
        for bad in ("ab", "Upper-case", "a" * 64, "192.168.5.4", "-dash",
                    "dash-", "two..dots", "xn--punycode"):
            assert errs(s3.create_bucket, Bucket=bad) == \
                ("InvalidBucketName", 400), bad
        # a LocationConstraint other than the server's region
        assert errs(s3.create_bucket, Bucket="bk-elsewhere",
                    CreateBucketConfiguration={
                        "LocationConstraint": "eu-west-1"})[0] == \
            "InvalidLocationConstraint"
        s3.head_bucket(Bucket="bk-one")
        assert errs(s3.head_bucket, Bucket="bk-missing") == ("404", 404)
        loc = s3.get_bucket_location(Bucket="bk-one")
        assert loc.get("LocationConstraint") in (None, ""), loc
        assert errs(s3.get_bucket_location, Bucket="bk-missing")[0] == \
            "NoSuchBucket"
        s3.put_object(Bucket="bk-one", Key="k", Body=b"x")
        assert errs(s3.delete_bucket, Bucket="bk-one") == \
            ("BucketNotEmpty", 409)
        s3.delete_object(Bucket="bk-one", Key="k")
        r = s3.delete_bucket(Bucket="bk-one")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
        assert errs(s3.delete_bucket, Bucket="bk-one") == ("NoSuchBucket", 404)
        assert errs(s3.head_bucket, Bucket="bk-one") == ("404", 404)
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert "bk-one" not in names, names
    """)


def test_virtual_hosted_style(cluster):
    cluster.run("""
        vs3.create_bucket(Bucket="vhost")
        vs3.head_bucket(Bucket="vhost")
        data = rand(3000)
        for key in ("plain", "dir/sub dir/ü %2F+?#", "/leading"):
            r = vs3.put_object(Bucket="vhost", Key=key, Body=data,
                               Metadata={"m": "v"})
            assert r["ETag"] == '"%s"' % md5(data)
            got = vs3.get_object(Bucket="vhost", Key=key)
            assert got["Body"].read() == data and got["Metadata"] == \
                {"m": "v"}, key
            # the path-style client sees the same object
            assert s3.get_object(Bucket="vhost", Key=key)["Body"].read() == \
                data, key
        keys = [o["Key"] for o in vs3.list_objects_v2(Bucket="vhost")["Contents"]]
        assert keys == sorted(["plain", "dir/sub dir/ü %2F+?#", "/leading"]), \
            keys
        assert "vhost" in [b["Name"] for b in vs3.list_buckets()["Buckets"]]
        up = vs3.create_multipart_upload(Bucket="vhost", Key="mp")["UploadId"]
        e = vs3.upload_part(Bucket="vhost", Key="mp", UploadId=up,
                            PartNumber=1, Body=b"abc")["ETag"]
        vs3.complete_multipart_upload(
            Bucket="vhost", Key="mp", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
        assert vs3.get_object(Bucket="vhost", Key="mp")["Body"].read() == b"abc"
        vs3.copy_object(Bucket="vhost", Key="cp",
                        CopySource={"Bucket": "vhost", "Key": "plain"})
        r = vs3.delete_objects(Bucket="vhost", Delete={"Objects": [
            {"Key": k} for k in ("plain", "dir/sub dir/ü %2F+?#", "/leading",
                                 "mp", "cp")]})
        assert len(r["Deleted"]) == 5, r
        assert errs(vs3.get_object, Bucket="vhost", Key="plain") == \
            ("NoSuchKey", 404)
        vs3.delete_bucket(Bucket="vhost")
        assert errs(vs3.head_bucket, Bucket="vhost") == ("404", 404)
        assert errs(vs3.list_objects_v2, Bucket="vhost") == \
            ("NoSuchBucket", 404)
    """)


def test_object_attributes(cluster):
    cluster.run("""
        data = rand(10000)
        exp = datetime.datetime(2030, 1, 2, 3, 4, 5,
                                tzinfo=datetime.timezone.utc)
        attrs = dict(ContentType="text/x-kiseki; charset=utf-8",
                     ContentEncoding="gzip",
                     ContentLanguage="de-CH",
                     ContentDisposition='attachment; filename="a b.txt"',
                     CacheControl="max-age=60, private",
                     Expires=exp,
                     Metadata={"color": "blue", "two-words": "x y",
                               "empty": ""})
        r = s3.put_object(Bucket="bkt", Key="attrs", Body=data, **attrs)
        assert r["ETag"] == '"%s"' % md5(data), r
        for fn in (s3.get_object, s3.head_object):
            g = fn(Bucket="bkt", Key="attrs")
            for k, v in attrs.items():
                assert g[k] == v, (fn, k, g[k], v)
            assert g["ContentLength"] == len(data)
            assert g["ETag"] == r["ETag"]
            assert g["AcceptRanges"] == "bytes"
            age = datetime.datetime.now(datetime.timezone.utc) - \
                g["LastModified"]
            assert abs(age.total_seconds()) < 120, g["LastModified"]
        # no Content-Type: AWS's default
        s3.put_object(Bucket="bkt", Key="plain", Body=b"x")
        g = s3.head_object(Bucket="bkt", Key="plain")
        assert g["ContentType"] == "binary/octet-stream", g
        assert g["Metadata"] == {} and "CacheControl" not in g, g
        # overwrite replaces data and attributes
        s3.put_object(Bucket="bkt", Key="attrs", Body=b"new")
        g = s3.get_object(Bucket="bkt", Key="attrs")
        assert g["Body"].read() == b"new" and g["Metadata"] == {}, g
        assert "ContentEncoding" not in g, g
        # response-* overrides (GET only)
        g = s3.get_object(Bucket="bkt", Key="plain",
                          ResponseContentType="image/png",
                          ResponseContentDisposition="inline",
                          ResponseContentEncoding="br",
                          ResponseContentLanguage="fr",
                          ResponseCacheControl="no-cache",
                          ResponseExpires=exp)
        assert (g["ContentType"], g["ContentDisposition"],
                g["ContentEncoding"], g["ContentLanguage"],
                g["CacheControl"], g["Expires"]) == \
            ("image/png", "inline", "br", "fr", "no-cache", exp), g
        # user metadata over 2 KiB
        assert errs(s3.put_object, Bucket="bkt", Key="big-meta", Body=b"",
                    Metadata={"a": "x" * 2100}) == ("MetadataTooLarge", 400)
    """)


def test_digests_and_checksums(cluster):
    cluster.run("""
        data = rand(7000)
        good = base64.b64encode(hashlib.md5(data).digest()).decode()
        wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        s3.put_object(Bucket="bkt", Key="md5", Body=data, ContentMD5=good)
        assert errs(s3once.put_object, Bucket="bkt", Key="md5-bad", Body=data,
                    ContentMD5=wrong) == ("BadDigest", 400)
        assert errs(s3once.put_object, Bucket="bkt", Key="md5-bad", Body=data,
                    ContentMD5="bm90LWEtZGlnZXN0") == ("InvalidDigest", 400)
        assert errs(s3.head_object, Bucket="bkt", Key="md5-bad") == ("404", 404)
        for alg in ("CRC32", "CRC32C", "SHA1", "SHA256"):
            r = s3.put_object(Bucket="bkt", Key="ck-" + alg, Body=data,
                              ChecksumAlgorithm=alg)
            assert r["ETag"] == '"%s"' % md5(data), r
            assert s3.get_object(Bucket="bkt", Key="ck-" + alg)["Body"].read() \
                == data
        # wrong checksums, correctly signed
        bad = {"x-amz-checksum-crc32c": base64.b64encode(b"\\0\\0\\0\\0"),
               "x-amz-checksum-crc32": base64.b64encode(b"\\0\\0\\0\\0"),
               "x-amz-checksum-sha1": base64.b64encode(b"\\0" * 20),
               "x-amz-checksum-sha256": base64.b64encode(b"\\0" * 32)}
        for alg, hdr in (("CRC32C", "x-amz-checksum-crc32c"),
                         ("CRC32", "x-amz-checksum-crc32"),
                         ("SHA1", "x-amz-checksum-sha1"),
                         ("SHA256", "x-amz-checksum-sha256")):
            def tamper(req, hdr=hdr):
                assert hdr in req.headers, dict(req.headers)
                req.headers.replace_header(hdr, bad[hdr].decode())
            h = on_sign(s3once, "PutObject", tamper)
            assert errs(s3once.put_object, Bucket="bkt", Key="ck-bad", Body=data,
                        ChecksumAlgorithm=alg) == ("BadDigest", 400), alg
            s3once.meta.events.unregister("before-sign.s3.PutObject", h)
        assert errs(s3.head_object, Bucket="bkt", Key="ck-bad") == ("404", 404)
        # checksums s3d does not verify (CRC64NVME) are refused, not ignored
        def crc64(req):
            req.headers["x-amz-checksum-crc64nvme"] = "AAAAAAAAAAA="
        h = on_sign(s3once, "PutObject", crc64)
        assert errs(s3once.put_object, Bucket="bkt", Key="ck-crc64",
                    Body=data) == ("NotImplemented", 501)
        s3once.meta.events.unregister("before-sign.s3.PutObject", h)
        # multipart parts are verified too
        up = s3.create_multipart_upload(Bucket="bkt", Key="ck-mp")["UploadId"]
        assert errs(s3once.upload_part, Bucket="bkt", Key="ck-mp", UploadId=up,
                    PartNumber=1, Body=data, ContentMD5=wrong) == \
            ("BadDigest", 400)
        s3.abort_multipart_upload(Bucket="bkt", Key="ck-mp", UploadId=up)
    """)


def test_get_ranges_and_conditions(cluster):
    cluster.run("""
        data = rand(10000)
        etag = s3.put_object(Bucket="bkt", Key="cond", Body=data)["ETag"]
        def get(**kw):
            r = s3.get_object(Bucket="bkt", Key="cond", **kw)
            return r["ResponseMetadata"]["HTTPStatusCode"], r["Body"].read(), r
        for rng, want in (("bytes=0-9", data[:10]), ("bytes=9990-", data[9990:]),
                          ("bytes=-7", data[-7:]),
                          ("bytes=-20000", data),
                          ("bytes=9999-20000", data[9999:]),
                          ("bytes=0-0", data[:1])):
            st, body, r = get(Range=rng)
            assert st == 206 and body == want, rng
            first = 10000 - len(want) if rng.startswith("bytes=-") or \
                rng.endswith("-") and not rng.startswith("bytes=0") else \
                int(rng[6:].split("-")[0])
            assert r["ContentRange"] == "bytes %d-%d/10000" % (
                first, first + len(want) - 1), (rng, r["ContentRange"])
            assert r["ContentLength"] == len(want)
        # unparsable or multi-range: the whole object, as AWS does
        for rng in ("bytes=5-2", "items=0-1", "bytes=0-1,5-6"):
            st, body, r = get(Range=rng)
            assert st == 200 and body == data, rng
        for rng in ("bytes=10000-", "bytes=10000-10005", "bytes=-0"):
            assert errs(s3.get_object, Bucket="bkt", Key="cond", Range=rng) \
                == ("InvalidRange", 416), rng
        s3.put_object(Bucket="bkt", Key="empty", Body=b"")
        assert errs(s3.get_object, Bucket="bkt", Key="empty",
                    Range="bytes=0-") == ("InvalidRange", 416)

        now = datetime.datetime.now(datetime.timezone.utc)
        past = now - datetime.timedelta(days=1)
        future = now + datetime.timedelta(days=1)
        assert get(IfMatch=etag)[1] == data
        assert get(IfMatch="*")[1] == data
        assert get(IfMatch='"x", ' + etag)[1] == data
        assert get(IfNoneMatch='"abc"')[1] == data
        assert get(IfModifiedSince=past)[1] == data
        assert get(IfUnmodifiedSince=future)[1] == data
        for fn in (s3.get_object, s3.head_object):
            pf = "PreconditionFailed" if fn == s3.get_object else "412"
            assert errs(fn, Bucket="bkt", Key="cond", IfMatch='"nope"') == \
                (pf, 412)
            assert errs(fn, Bucket="bkt", Key="cond",
                        IfUnmodifiedSince=past) == (pf, 412)
            assert errs(fn, Bucket="bkt", Key="cond", IfNoneMatch=etag) == \
                ("304", 304)
            assert errs(fn, Bucket="bkt", Key="cond", IfNoneMatch="*") == \
                ("304", 304)
            assert errs(fn, Bucket="bkt", Key="cond",
                        IfModifiedSince=future) == ("304", 304)
        # If-Match true beats If-Unmodified-Since false; If-None-Match false
        # beats If-Modified-Since true (RFC 7232 section 6, as AWS)
        assert get(IfMatch=etag, IfUnmodifiedSince=past)[1] == data
        assert errs(s3.get_object, Bucket="bkt", Key="cond",
                    IfNoneMatch=etag, IfModifiedSince=past) == ("304", 304)
        st, body, r = get(IfMatch=etag, Range="bytes=1-2")
        assert st == 206 and body == data[1:3]
        # a 304 still carries the ETag
        try:
            s3.get_object(Bucket="bkt", Key="cond", IfNoneMatch=etag)
        except botocore.exceptions.ClientError as e:
            h = e.response["ResponseMetadata"]["HTTPHeaders"]
            assert h.get("etag") == etag, h
    """)


def test_odd_keys(cluster):
    cluster.run("""
        keys = ["sp ace", "pct%41%", "plus+sign", "q?mark", "hash#tag",
                "amp&eq=", "dbl//slash", "/leading", "//two", "trail/",
                "üñïçødé/日本語/😀", "tab\\tand\\nnewline", "~tilde.dots..",
                "semi;colon,comma:!*'()[]{}$@^`|\\\\"]
        for i, k in enumerate(keys):
            body = ("%d:%s" % (i, k)).encode()
            s3.put_object(Bucket="bkt", Key="odd/" + k, Body=body)
        for i, k in enumerate(keys):
            body = ("%d:%s" % (i, k)).encode()
            g = s3.get_object(Bucket="bkt", Key="odd/" + k)
            assert g["Body"].read() == body, k
            s3.head_object(Bucket="bkt", Key="odd/" + k)
        listed = [o["Key"] for o in s3.get_paginator("list_objects_v2")
                  .paginate(Bucket="bkt", Prefix="odd/",
                            PaginationConfig={"PageSize": 4})
                  .build_full_result()["Contents"]]
        want = sorted(("odd/" + k for k in keys),
                      key=lambda s: s.encode())
        assert listed == want, (listed, want)
        # v1 too (botocore asks for and decodes encoding-type=url itself)
        listed = [o["Key"] for o in s3.get_paginator("list_objects")
                  .paginate(Bucket="bkt", Prefix="odd/",
                            PaginationConfig={"PageSize": 3})
                  .build_full_result()["Contents"]]
        assert listed == want, listed
        for k in keys:
            s3.delete_object(Bucket="bkt", Key="odd/" + k)
        assert "Contents" not in s3.list_objects_v2(Bucket="bkt", Prefix="odd/")
        # S3's limit is 1,024 bytes of key
        assert errs(s3.put_object, Bucket="bkt", Key="k" * 1025, Body=b"") == \
            ("KeyTooLongError", 400)
        assert errs(s3.get_object, Bucket="bkt", Key="k" * 1025)[1] == 400
    """)


def test_delete(cluster):
    cluster.run("""
        r = s3.delete_object(Bucket="bkt", Key="never-was")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
        assert errs(s3.delete_object, Bucket="nobucket", Key="k") == \
            ("NoSuchBucket", 404)
        for i in range(5):
            s3.put_object(Bucket="bkt", Key="del/%d" % i, Body=b"x")
        objs = [{"Key": "del/%d" % i} for i in (0, 1, 2)] + \
            [{"Key": "del/missing"}, {"Key": "del/sp ace&<>"}]
        r = s3.delete_objects(Bucket="bkt", Delete={"Objects": objs})
        assert sorted(d["Key"] for d in r["Deleted"]) == \
            sorted(o["Key"] for o in objs), r
        assert "Errors" not in r, r
        r = s3.delete_objects(Bucket="bkt", Delete={
            "Objects": [{"Key": "del/3"}, {"Key": "del/nope"}], "Quiet": True})
        assert "Deleted" not in r and "Errors" not in r, r
        keys = [o["Key"] for o in
                s3.list_objects_v2(Bucket="bkt", Prefix="del/")["Contents"]]
        assert keys == ["del/4"], keys
        assert errs(s3.delete_objects, Bucket="nobucket",
                    Delete={"Objects": [{"Key": "a"}]}) == ("NoSuchBucket", 404)

        # bodies boto3 would not write, signed correctly
        def body(xml):
            def f(req):
                req.data = xml
                req.headers.replace_header(
                    "Content-MD5",
                    base64.b64encode(hashlib.md5(xml).digest()).decode())
                if "Content-Length" in req.headers:
                    req.headers.replace_header("Content-Length", str(len(xml)))
            return f
        for xml in (b"<Delete><Object><Key>a</Key></Object>",
                    b"not xml at all", b"<Delete></Delete>",
                    b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 +
                    b"</Delete>"):
            h = on_sign(s3, "DeleteObjects", body(xml))
            assert errs(s3.delete_objects, Bucket="bkt",
                        Delete={"Objects": [{"Key": "del/4"}]}) == \
                ("MalformedXML", 400), xml[:40]
            s3.meta.events.unregister("before-sign.s3.DeleteObjects", h)
        s3.head_object(Bucket="bkt", Key="del/4")
    """)


def test_copy(cluster):
    cluster.run("""
        data = rand(6000)
        src = s3.put_object(Bucket="bkt", Key="c/src", Body=data,
                            ContentType="text/x-src", CacheControl="no-store",
                            Metadata={"a": "1"})
        src_etag = src["ETag"]
        cs = {"Bucket": "bkt", "Key": "c/src"}
        r = s3.copy_object(Bucket="bkt", Key="c/copy", CopySource=cs)
        assert r["CopyObjectResult"]["ETag"] == src_etag, r
        g = s3.get_object(Bucket="bkt", Key="c/copy")
        assert g["Body"].read() == data and g["Metadata"] == {"a": "1"}
        assert g["ContentType"] == "text/x-src" and \
            g["CacheControl"] == "no-store", g
        # COPY ignores the request's attributes
        s3.copy_object(Bucket="bkt", Key="c/copy2", CopySource=cs,
                       MetadataDirective="COPY", Metadata={"b": "2"},
                       ContentType="text/plain")
        g = s3.head_object(Bucket="bkt", Key="c/copy2")
        assert g["Metadata"] == {"a": "1"} and g["ContentType"] == \
            "text/x-src", g
        # REPLACE takes them, and only them
        s3.copy_object(Bucket="bkt", Key="c/copy3", CopySource=cs,
                       MetadataDirective="REPLACE", Metadata={"b": "2"},
                       ContentType="text/plain")
        g = s3.get_object(Bucket="bkt", Key="c/copy3")
        assert g["Body"].read() == data
        assert g["Metadata"] == {"b": "2"} and g["ContentType"] == \
            "text/plain" and "CacheControl" not in g, g
        # across buckets; keys needing encoding
        s3.create_bucket(Bucket="bb-copy")
        s3.put_object(Bucket="bkt", Key="c/ü sp%+?#", Body=data)
        s3.copy_object(Bucket="bb-copy", Key="to/ü sp%+?#",
                       CopySource={"Bucket": "bkt", "Key": "c/ü sp%+?#"})
        assert s3.get_object(Bucket="bb-copy", Key="to/ü sp%+?#")["Body"] \
            .read() == data
        # onto itself: only with REPLACE
        assert errs(s3.copy_object, Bucket="bkt", Key="c/src",
                    CopySource=cs) == ("InvalidRequest", 400)
        s3.copy_object(Bucket="bkt", Key="c/src", CopySource=cs,
                       MetadataDirective="REPLACE", Metadata={"new": "yes"})
        g = s3.get_object(Bucket="bkt", Key="c/src")
        assert g["Body"].read() == data and g["Metadata"] == {"new": "yes"}
        assert g["ETag"] == src_etag, g
        # missing source, missing buckets
        assert errs(s3.copy_object, Bucket="bkt", Key="c/x",
                    CopySource={"Bucket": "bkt", "Key": "c/none"}) == \
            ("NoSuchKey", 404)
        assert errs(s3.copy_object, Bucket="bkt", Key="c/x",
                    CopySource={"Bucket": "nobucket", "Key": "k"}) == \
            ("NoSuchBucket", 404)
        assert errs(s3.copy_object, Bucket="nobucket", Key="c/x",
                    CopySource=cs) == ("NoSuchBucket", 404)
        assert errs(s3.copy_object, Bucket="bkt", Key="c/x", CopySource=cs,
                    MetadataDirective="MOVE")[0] in (
            "InvalidArgument", "ValidationError")
        # copy-source conditions
        now = datetime.datetime.now(datetime.timezone.utc)
        past = now - datetime.timedelta(days=1)
        future = now + datetime.timedelta(days=1)
        ok = [dict(CopySourceIfMatch=src_etag),
              dict(CopySourceIfNoneMatch='"zzz"'),
              dict(CopySourceIfModifiedSince=past),
              dict(CopySourceIfUnmodifiedSince=future)]
        bad = [dict(CopySourceIfMatch='"zzz"'),
               dict(CopySourceIfNoneMatch=src_etag),
               dict(CopySourceIfModifiedSince=future),
               dict(CopySourceIfUnmodifiedSince=past)]
        for kw in ok:
            s3.copy_object(Bucket="bkt", Key="c/cond", CopySource=cs, **kw)
        for kw in bad:
            assert errs(s3.copy_object, Bucket="bkt", Key="c/cond2",
                        CopySource=cs, **kw) == ("PreconditionFailed", 412), kw
        assert errs(s3.head_object, Bucket="bkt", Key="c/cond2") == ("404", 404)
        # a multipart source keeps its ETag
        up = s3.create_multipart_upload(Bucket="bkt", Key="c/mp")["UploadId"]
        e = s3.upload_part(Bucket="bkt", Key="c/mp", UploadId=up, PartNumber=1,
                           Body=data)["ETag"]
        mp = s3.complete_multipart_upload(
            Bucket="bkt", Key="c/mp", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
        r = s3.copy_object(Bucket="bkt", Key="c/mp-copy",
                           CopySource={"Bucket": "bkt", "Key": "c/mp"})
        assert s3.get_object(Bucket="bkt", Key="c/mp-copy")["Body"].read() == \
            data
    """)


def test_list_v1(cluster):
    cluster.run("""
        s3.create_bucket(Bucket="lst1")
        keys = ["a", "b/1", "b/2", "b/3", "c/x/1", "c/y", "d", "e/"]
        for k in keys:
            s3.put_object(Bucket="lst1", Key=k, Body=b"12345")
        r = s3.list_objects(Bucket="lst1")
        assert [o["Key"] for o in r["Contents"]] == keys and \
            not r["IsTruncated"], r
        o = r["Contents"][0]
        assert o["Size"] == 5 and o["ETag"] == '"%s"' % md5(b"12345") and \
            o["StorageClass"] == "STANDARD" and o["Owner"]["ID"], o
        r = s3.list_objects(Bucket="lst1", MaxKeys=3)
        assert [o["Key"] for o in r["Contents"]] == keys[:3] and \
            r["IsTruncated"] and r["MaxKeys"] == 3, r
        assert "NextMarker" not in r, r    # only with a delimiter, as AWS
        r = s3.list_objects(Bucket="lst1", Marker="b/3")
        assert [o["Key"] for o in r["Contents"]] == keys[4:], r
        assert r["Marker"] == "b/3", r
        # delimiter: a common prefix counts as one key; NextMarker is the
        # last key or prefix of the page
        r = s3.list_objects(Bucket="lst1", Delimiter="/", MaxKeys=2)
        assert [o["Key"] for o in r["Contents"]] == ["a"], r
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/"], r
        assert r["IsTruncated"] and r["NextMarker"] == "b/", r
        r = s3.list_objects(Bucket="lst1", Delimiter="/", MaxKeys=2,
                            Marker=r["NextMarker"])
        assert [o["Key"] for o in r["Contents"]] == ["d"], r
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/"], r
        assert r["IsTruncated"] and r["NextMarker"] == "d", r
        r = s3.list_objects(Bucket="lst1", Delimiter="/")
        assert [o["Key"] for o in r["Contents"]] == ["a", "d"], r
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == \
            ["b/", "c/", "e/"], r
        assert not r["IsTruncated"], r
        pages = list(s3.get_paginator("list_objects").paginate(
            Bucket="lst1", Delimiter="/", PaginationConfig={"PageSize": 1}))
        seen = [o["Key"] for p in pages for o in p.get("Contents", [])] + \
            [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
        assert sorted(seen) == ["a", "b/", "c/", "d", "e/"], seen
        assert len(pages) == 5, len(pages)
        r = s3.list_objects(Bucket="lst1", Prefix="c/", Delimiter="/")
        assert [o["Key"] for o in r["Contents"]] == ["c/y"] and \
            [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/x/"], r
        r = s3.list_objects(Bucket="lst1", Prefix="zzz")
        assert "Contents" not in r and not r["IsTruncated"], r
        # a delimiter other than "/"
        r = s3.list_objects(Bucket="lst1", Delimiter="1")
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/1", "c/x/1"]
        assert errs(s3.list_objects, Bucket="nobucket") == ("NoSuchBucket", 404)
        assert errs(s3.list_objects, Bucket="lst1", MaxKeys=-1)[0] == \
            "InvalidArgument"
    """)


def test_list_v2(cluster):
    cluster.run("""
        s3.create_bucket(Bucket="lst2")
        keys = ["a", "b/1", "b/2", "b/3", "c/x/1", "c/y", "d", "e/"]
        for k in keys:
            s3.put_object(Bucket="lst2", Key=k, Body=b"12345")
        r = s3.list_objects_v2(Bucket="lst2")
        assert [o["Key"] for o in r["Contents"]] == keys and \
            r["KeyCount"] == len(keys) and not r["IsTruncated"], r
        assert "Owner" not in r["Contents"][0], r    # only with FetchOwner
        r = s3.list_objects_v2(Bucket="lst2", FetchOwner=True)
        assert r["Contents"][0]["Owner"]["ID"], r
        r = s3.list_objects_v2(Bucket="lst2", MaxKeys=0)
        assert "Contents" not in r and r["KeyCount"] == 0 and \
            r["MaxKeys"] == 0, r
        r = s3.list_objects_v2(Bucket="lst2", MaxKeys=3)
        assert [o["Key"] for o in r["Contents"]] == keys[:3] and \
            r["IsTruncated"] and r["KeyCount"] == 3, r
        tok = r["NextContinuationToken"]
        r = s3.list_objects_v2(Bucket="lst2", MaxKeys=3, ContinuationToken=tok)
        assert [o["Key"] for o in r["Contents"]] == keys[3:6], r
        assert r["ContinuationToken"] == tok, r
        r = s3.list_objects_v2(Bucket="lst2", StartAfter="c/")
        assert [o["Key"] for o in r["Contents"]] == keys[4:] and \
            r["StartAfter"] == "c/", r
        # the token wins over start-after
        r = s3.list_objects_v2(Bucket="lst2", StartAfter="a", MaxKeys=3,
                               ContinuationToken=tok)
        assert [o["Key"] for o in r["Contents"]] == keys[3:6], r
        r = s3.list_objects_v2(Bucket="lst2", Delimiter="/", MaxKeys=2)
        assert [o["Key"] for o in r["Contents"]] == ["a"], r
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/"], r
        assert r["KeyCount"] == 2 and r["IsTruncated"], r
        r = s3.list_objects_v2(Bucket="lst2", Delimiter="/", MaxKeys=2,
                               ContinuationToken=r["NextContinuationToken"])
        assert [o["Key"] for o in r["Contents"]] == ["d"] and \
            [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/"], r
        pages = list(s3.get_paginator("list_objects_v2").paginate(
            Bucket="lst2", Delimiter="/", PaginationConfig={"PageSize": 2}))
        seen = [o["Key"] for p in pages for o in p.get("Contents", [])] + \
            [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
        assert sorted(seen) == ["a", "b/", "c/", "d", "e/"], seen
        r = s3.list_objects_v2(Bucket="lst2", Prefix="b/", StartAfter="b/1")
        assert [o["Key"] for o in r["Contents"]] == ["b/2", "b/3"], r
        assert r["Prefix"] == "b/", r
        assert errs(s3.list_objects_v2, Bucket="lst2",
                    ContinuationToken="garbage!")[0] == "InvalidArgument"
        assert errs(s3.list_objects_v2, Bucket="lst2",
                    EncodingType="base64")[0] in ("InvalidArgument",
                                                  "ValidationError")
    """)


def test_list_url_encoding(cluster):
    cluster.run("""
        from urllib.parse import unquote_plus
        s3.create_bucket(Bucket="lenc")
        keys = ["sp ace/1", "sp ace/2", "ü/x", "a+b", "a%b", "a&b<c>",
                "ctl\\x01char"]
        for k in keys:
            s3.put_object(Bucket="lenc", Key=k, Body=b"x")
        want = sorted(keys, key=lambda s: s.encode())
        for op, fn in (("ListObjectsV2", s3.list_objects_v2),
                       ("ListObjects", s3.list_objects)):
            raw = raw_body(s3, op)
            # asked for explicitly, botocore leaves the decoding to us
            r = fn(Bucket="lenc", EncodingType="url")
            assert [unquote_plus(o["Key"]) for o in r["Contents"]] == want, r
            xml = raw[-1].decode()
            assert "<EncodingType>url</EncodingType>" in xml, xml
            assert "<Key>sp+ace/1</Key>" in xml, xml   # as AWS writes it
            assert "ctl%01char" in xml and "%C3%BC" in xml, xml
            r = fn(Bucket="lenc", Delimiter="/", Prefix="", EncodingType="url")
            assert [unquote_plus(p["Prefix"]) for p in r["CommonPrefixes"]] \
                == ["sp ace/", "ü/"], r
            xml = raw[-1].decode()
            assert "<Prefix>sp" in xml and "sp ace/" not in xml, xml
            r = fn(Bucket="lenc", Prefix="sp ace/", Delimiter="/",
                   EncodingType="url")
            assert unquote_plus(r["Prefix"]) == "sp ace/" and \
                [unquote_plus(o["Key"]) for o in r["Contents"]] == \
                ["sp ace/1", "sp ace/2"], r
        # one key a page: every continuation token passes a key with a
        # character XML 1.0 cannot carry (so tokens must not be raw keys)
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket="lenc", PaginationConfig={"PageSize": 1})
        assert [o["Key"] for p in pages for o in p["Contents"]] == want
        pages = s3.get_paginator("list_objects").paginate(
            Bucket="lenc", PaginationConfig={"PageSize": 1})
        assert [o["Key"] for p in pages for o in p["Contents"]] == want
        # without encoding-type (botocore adds it unless its handler is
        # removed): XML escaping alone
        from botocore.handlers import set_list_objects_encoding_type_url as h
        for op, fn in (("ListObjectsV2", s3.list_objects_v2),
                       ("ListObjects", s3.list_objects)):
            s3.meta.events.unregister("before-parameter-build.s3." + op, h)
            raw = raw_body(s3, op)
            r = fn(Bucket="lenc", Prefix="a")
            assert [o["Key"] for o in r["Contents"]] == \
                ["a%b", "a&b<c>", "a+b"], r
            xml = raw[-1].decode()
            assert "<Key>a&amp;b&lt;c&gt;</Key>" in xml and \
                "EncodingType" not in xml, xml
            r = fn(Bucket="lenc", Delimiter="/", Prefix="sp")
            assert [p["Prefix"] for p in r["CommonPrefixes"]] == \
                ["sp ace/"], r
    """)


def test_list_pagination_2500(cluster):
    cluster.run("""
        from concurrent.futures import ThreadPoolExecutor
        s3.create_bucket(Bucket="many")
        keys = ["p%d/k%04d" % (i % 3, i) for i in range(2500)]
        def put(k):
            s3.put_object(Bucket="many", Key=k, Body=k.encode())
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(put, keys))
        want = sorted(keys)
        pages = list(s3.get_paginator("list_objects_v2").paginate(
            Bucket="many"))
        assert [len(p.get("Contents", [])) for p in pages] == \
            [1000, 1000, 500], [len(p.get("Contents", [])) for p in pages]
        got = [o["Key"] for p in pages for o in p["Contents"]]
        assert got == want
        pages = list(s3.get_paginator("list_objects").paginate(
            Bucket="many"))
        assert [o["Key"] for p in pages for o in p["Contents"]] == want
        assert len(pages) == 3
        pages = list(s3.get_paginator("list_objects_v2").paginate(
            Bucket="many", Prefix="p1/", PaginationConfig={"PageSize": 300}))
        got = [o["Key"] for p in pages for o in p["Contents"]]
        assert got == [k for k in want if k.startswith("p1/")], len(got)
        assert len(pages) == 3, len(pages)
        # more than 1000 asked: 1000 given
        r = s3.list_objects_v2(Bucket="many", MaxKeys=5000)
        assert r["KeyCount"] == 1000 and r["IsTruncated"], r["KeyCount"]
        r = s3.list_objects_v2(Bucket="many", Delimiter="/")
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == \
            ["p0/", "p1/", "p2/"] and not r["IsTruncated"], r
        r = s3.list_objects_v2(Bucket="many", StartAfter=want[-2])
        assert [o["Key"] for o in r["Contents"]] == want[-1:], r
        # DeleteObjects in batches of 1000
        for i in range(0, 2500, 1000):
            r = s3.delete_objects(Bucket="many", Delete={"Objects": [
                {"Key": k} for k in want[i:i + 1000]], "Quiet": True})
            assert not r.get("Errors"), r
        assert s3.list_objects_v2(Bucket="many")["KeyCount"] == 0
        s3.delete_bucket(Bucket="many")
    """, timeout=120)


def test_multipart(cluster):
    cluster.run("""
        MB = 1 << 20
        parts = [rand(5 * MB), rand(5 * MB), rand(100)]
        up = s3.create_multipart_upload(
            Bucket="bkt", Key="m/obj", ContentType="text/x-mp",
            Metadata={"mp": "yes"})["UploadId"]
        done = []
        for i, p in enumerate(parts, 1):
            r = s3.upload_part(Bucket="bkt", Key="m/obj", UploadId=up,
                               PartNumber=i, Body=p)
            assert r["ETag"] == '"%s"' % md5(p), r
            done.append({"PartNumber": i, "ETag": r["ETag"]})
        # re-uploading a part replaces it
        r = s3.upload_part(Bucket="bkt", Key="m/obj", UploadId=up,
                           PartNumber=3, Body=parts[2][::-1])
        parts[2] = parts[2][::-1]
        done[2]["ETag"] = r["ETag"]
        # ListParts with pagination
        r = s3.list_parts(Bucket="bkt", Key="m/obj", UploadId=up)
        assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in r["Parts"]] \
            == [(d["PartNumber"], d["ETag"], len(p))
                for d, p in zip(done, parts)], r
        assert not r["IsTruncated"] and r["UploadId"] == up, r
        r = s3.list_parts(Bucket="bkt", Key="m/obj", UploadId=up, MaxParts=2)
        assert [p["PartNumber"] for p in r["Parts"]] == [1, 2] and \
            r["IsTruncated"] and r["NextPartNumberMarker"] == 2 and \
            r["MaxParts"] == 2, r
        r = s3.list_parts(Bucket="bkt", Key="m/obj", UploadId=up, MaxParts=2,
                          PartNumberMarker=2)
        assert [p["PartNumber"] for p in r["Parts"]] == [3] and \
            not r["IsTruncated"] and r["PartNumberMarker"] == 2, r
        pages = s3.get_paginator("list_parts").paginate(
            Bucket="bkt", Key="m/obj", UploadId=up,
            PaginationConfig={"PageSize": 1})
        assert [p["PartNumber"] for pg in pages for p in pg["Parts"]] == \
            [1, 2, 3]
        # completion errors leave the upload in place
        assert errs(s3.complete_multipart_upload, Bucket="bkt", Key="m/obj",
                    UploadId=up, MultipartUpload={"Parts": [
                        done[1], done[0], done[2]]}) == \
            ("InvalidPartOrder", 400)
        assert errs(s3.complete_multipart_upload, Bucket="bkt", Key="m/obj",
                    UploadId=up, MultipartUpload={"Parts": [
                        done[0], {"PartNumber": 2, "ETag": '"%s"' % ("0" * 32)},
                        done[2]]}) == ("InvalidPart", 400)
        assert errs(s3.complete_multipart_upload, Bucket="bkt", Key="m/obj",
                    UploadId=up, MultipartUpload={"Parts": [
                        done[0], {"PartNumber": 7, "ETag": done[1]["ETag"]}]}) \
            == ("InvalidPart", 400)
        assert errs(s3.complete_multipart_upload, Bucket="bkt", Key="m/obj",
                    UploadId=up, MultipartUpload={"Parts": []})[0] in (
            "MalformedXML", "InvalidRequest")
        assert errs(s3.complete_multipart_upload, Bucket="bkt", Key="m/obj",
                    UploadId="no-such-upload", MultipartUpload={"Parts": done}) \
            == ("NoSuchUpload", 404)
        r = s3.complete_multipart_upload(Bucket="bkt", Key="m/obj", UploadId=up,
                                         MultipartUpload={"Parts": done})
        md5s = b"".join(hashlib.md5(p).digest() for p in parts)
        etag = '"%s-3"' % hashlib.md5(md5s).hexdigest()
        assert r["ETag"] == etag and r["Key"] == "m/obj" and \
            r["Bucket"] == "bkt", r
        g = s3.get_object(Bucket="bkt", Key="m/obj")
        assert g["Body"].read() == b"".join(parts) and g["ETag"] == etag
        assert g["ContentType"] == "text/x-mp" and g["Metadata"] == \
            {"mp": "yes"}, g
        g = s3.get_object(Bucket="bkt", Key="m/obj",
                          Range="bytes=%d-%d" % (5 * MB - 2, 5 * MB + 1))
        assert g["Body"].read() == parts[0][-2:] + parts[1][:2]
        # the upload is gone once completed
        assert errs(s3.list_parts, Bucket="bkt", Key="m/obj", UploadId=up) == \
            ("NoSuchUpload", 404)
        assert errs(s3.upload_part, Bucket="bkt", Key="m/obj", UploadId=up,
                    PartNumber=1, Body=b"x") == ("NoSuchUpload", 404)

        # EntityTooSmall: a part under 5 MiB that is not the last
        up = s3.create_multipart_upload(Bucket="bkt", Key="m/small")["UploadId"]
        small = [s3.upload_part(Bucket="bkt", Key="m/small", UploadId=up,
                                PartNumber=i, Body=b"tiny%d" % i)["ETag"]
                 for i in (1, 2)]
        assert errs(s3.complete_multipart_upload, Bucket="bkt", Key="m/small",
                    UploadId=up, MultipartUpload={"Parts": [
                        {"PartNumber": i + 1, "ETag": e}
                        for i, e in enumerate(small)]}) == \
            ("EntityTooSmall", 400)
        # a subset of the parts is fine (the single small one is last)
        r = s3.complete_multipart_upload(
            Bucket="bkt", Key="m/small", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": small[1]}]})
        assert s3.get_object(Bucket="bkt", Key="m/small")["Body"].read() == \
            b"tiny2"
        assert r["ETag"] == '"%s-1"' % hashlib.md5(
            hashlib.md5(b"tiny2").digest()).hexdigest(), r

        # part number bounds
        up = s3.create_multipart_upload(Bucket="bkt", Key="m/ab")["UploadId"]
        for pn in (0, 10001):
            assert errs(s3.upload_part, Bucket="bkt", Key="m/ab", UploadId=up,
                        PartNumber=pn, Body=b"x")[0] in (
                "InvalidArgument", "ParamValidation"), pn
        s3.upload_part(Bucket="bkt", Key="m/ab", UploadId=up, PartNumber=1,
                       Body=b"x")
        r = s3.abort_multipart_upload(Bucket="bkt", Key="m/ab", UploadId=up)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
        assert errs(s3.abort_multipart_upload, Bucket="bkt", Key="m/ab",
                    UploadId=up) == ("NoSuchUpload", 404)
        assert errs(s3.list_parts, Bucket="bkt", Key="m/ab", UploadId=up) == \
            ("NoSuchUpload", 404)
        assert errs(s3.head_object, Bucket="bkt", Key="m/ab") == ("404", 404)
        assert errs(s3.create_multipart_upload, Bucket="nobucket",
                    Key="k") == ("NoSuchBucket", 404)
    """)


def test_list_multipart_uploads(cluster):
    cluster.run("""
        s3.create_bucket(Bucket="lmu")
        ups = {}
        for k in ("a/1", "a/2", "b/1", "b/1", "c"):
            ups.setdefault(k, []).append(s3.create_multipart_upload(
                Bucket="lmu", Key=k)["UploadId"])
        r = s3.list_multipart_uploads(Bucket="lmu")
        got = [(u["Key"], u["UploadId"]) for u in r["Uploads"]]
        assert [k for k, _ in got] == ["a/1", "a/2", "b/1", "b/1", "c"], got
        assert sorted(u for k, u in got if k == "b/1") == sorted(ups["b/1"])
        assert not r["IsTruncated"] and r["Uploads"][0]["Initiated"], r
        r = s3.list_multipart_uploads(Bucket="lmu", Prefix="a/")
        assert [u["Key"] for u in r["Uploads"]] == ["a/1", "a/2"], r
        r = s3.list_multipart_uploads(Bucket="lmu", MaxUploads=3)
        assert len(r["Uploads"]) == 3 and r["IsTruncated"], r
        nk, nu = r["NextKeyMarker"], r["NextUploadIdMarker"]
        assert (nk, nu) == (r["Uploads"][-1]["Key"],
                            r["Uploads"][-1]["UploadId"]), r
        r = s3.list_multipart_uploads(Bucket="lmu", MaxUploads=3,
                                      KeyMarker=nk, UploadIdMarker=nu)
        assert [u["Key"] for u in r["Uploads"]] == ["b/1", "c"], r
        # key-marker alone: uploads of keys after it
        r = s3.list_multipart_uploads(Bucket="lmu", KeyMarker="b/1")
        assert [u["Key"] for u in r["Uploads"]] == ["c"], r
        pages = s3.get_paginator("list_multipart_uploads").paginate(
            Bucket="lmu", PaginationConfig={"PageSize": 2})
        got2 = [(u["Key"], u["UploadId"]) for p in pages
                for u in p.get("Uploads", [])]
        assert got2 == got, (got2, got)
        for k, us in ups.items():
            for u in us:
                s3.abort_multipart_upload(Bucket="lmu", Key=k, UploadId=u)
        r = s3.list_multipart_uploads(Bucket="lmu")
        assert not r.get("Uploads"), r
        assert errs(s3.list_multipart_uploads, Bucket="nobucket") == \
            ("NoSuchBucket", 404)
    """)


def test_upload_part_copy(cluster):
    cluster.run("""
        MB = 1 << 20
        src = rand(5 * MB + 10)
        s3.put_object(Bucket="bkt", Key="upc/src", Body=src)
        small = rand(3000)
        s3.put_object(Bucket="bkt", Key="upc/small", Body=small)
        up = s3.create_multipart_upload(Bucket="bkt", Key="upc/dst")["UploadId"]
        r = s3.upload_part_copy(Bucket="bkt", Key="upc/dst", UploadId=up,
                                PartNumber=1,
                                CopySource={"Bucket": "bkt", "Key": "upc/src"})
        e1 = r["CopyPartResult"]["ETag"]
        assert e1 == '"%s"' % md5(src), r
        e2 = s3.upload_part(Bucket="bkt", Key="upc/dst", UploadId=up,
                            PartNumber=2, Body=b"tail")["ETag"]
        ps = s3.list_parts(Bucket="bkt", Key="upc/dst", UploadId=up)["Parts"]
        assert [(p["PartNumber"], p["Size"]) for p in ps] == \
            [(1, len(src)), (2, 4)], ps
        assert errs(s3.upload_part_copy, Bucket="bkt", Key="upc/dst",
                    UploadId=up, PartNumber=3,
                    CopySource={"Bucket": "bkt", "Key": "upc/none"}) == \
            ("NoSuchKey", 404)
        assert errs(s3.upload_part_copy, Bucket="bkt", Key="upc/dst",
                    UploadId="nope", PartNumber=3,
                    CopySource={"Bucket": "bkt", "Key": "upc/src"}) == \
            ("NoSuchUpload", 404)
        assert errs(s3.upload_part_copy, Bucket="bkt", Key="upc/dst",
                    UploadId=up, PartNumber=3,
                    CopySource={"Bucket": "bkt", "Key": "upc/src"},
                    CopySourceIfMatch='"zzz"') == ("PreconditionFailed", 412)
        s3.complete_multipart_upload(
            Bucket="bkt", Key="upc/dst", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                       {"PartNumber": 2, "ETag": e2}]})
        assert s3.get_object(Bucket="bkt", Key="upc/dst")["Body"].read() == \
            src + b"tail"

        # ranges (inside a chunk, across chunk boundaries, cut chunks and
        # whole ones), inline (small) sources and multipart sources: each
        # part's ETag is the MD5 of its bytes; each completed alone (a
        # single part may be small) reads back byte for byte
        C = 4 * MB
        mp = src + b"tail"
        cases = [("upc/small", None, small),
                 ("upc/small", "bytes=10-109", small[10:110]),
                 ("upc/src", "bytes=10-5242889", src[10:5242890]),
                 ("upc/src", "bytes=100-1099", src[100:1100]),
                 ("upc/src", "bytes=%d-%d" % (C - 10, C + 19),
                  src[C - 10:C + 20]),
                 ("upc/src", "bytes=0-%d" % (C - 1), src[:C]),
                 ("upc/src", "bytes=%d-%d" % (len(src) - 1, len(src) - 1),
                  src[-1:]),
                 ("upc/dst", None, mp),
                 ("upc/dst", "bytes=%d-%d" % (len(src) - 2, len(src) + 1),
                  mp[len(src) - 2:len(src) + 2])]
        for i, (key, rng, want) in enumerate(cases, 1):
            dst = "upc/r%d" % i
            up = s3.create_multipart_upload(Bucket="bkt", Key=dst)["UploadId"]
            kw = dict(CopySourceRange=rng) if rng else {}
            r = s3.upload_part_copy(Bucket="bkt", Key=dst, UploadId=up,
                                    PartNumber=1,
                                    CopySource={"Bucket": "bkt", "Key": key},
                                    **kw)
            e = r["CopyPartResult"]["ETag"]
            assert e == '"%s"' % md5(want), (key, rng, r)
            ps = s3.list_parts(Bucket="bkt", Key=dst, UploadId=up)["Parts"]
            assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in ps] == \
                [(1, len(want), e)], (key, rng, ps)
            s3.complete_multipart_upload(
                Bucket="bkt", Key=dst, UploadId=up,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
            got = s3.get_object(Bucket="bkt", Key=dst)["Body"].read()
            assert got == want, (key, rng, len(got), len(want))

        # two ranged copies as the parts of one object (aws s3 cp's way of
        # copying a big object)
        up = s3.create_multipart_upload(Bucket="bkt", Key="upc/two")["UploadId"]
        half = 5 * MB
        es = []
        for n, rng in ((1, "bytes=0-%d" % (half - 1)),
                       (2, "bytes=%d-%d" % (half, len(src) - 1))):
            r = s3.upload_part_copy(Bucket="bkt", Key="upc/two", UploadId=up,
                                    PartNumber=n, CopySourceRange=rng,
                                    CopySource={"Bucket": "bkt",
                                                "Key": "upc/src"})
            es.append(r["CopyPartResult"]["ETag"])
        s3.complete_multipart_upload(
            Bucket="bkt", Key="upc/two", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e}
                                       for n, e in enumerate(es)]})
        assert s3.get_object(Bucket="bkt", Key="upc/two")["Body"].read() == \
            src

        # bad ranges, as AWS answers them: past the source's end (400 with
        # the source's size), and not of the form bytes=first-last
        up = s3.create_multipart_upload(Bucket="bkt", Key="upc/r")["UploadId"]
        for rng in ("bytes=0-%d" % len(src), "bytes=%d-%d" % (len(src),
                                                              len(src))):
            try:
                s3.upload_part_copy(Bucket="bkt", Key="upc/r", UploadId=up,
                                    PartNumber=9, CopySourceRange=rng,
                                    CopySource={"Bucket": "bkt",
                                                "Key": "upc/src"})
                assert False, rng
            except botocore.exceptions.ClientError as e:
                err = e.response["Error"]
                st = e.response["ResponseMetadata"]["HTTPStatusCode"]
                assert (err["Code"], st) == ("InvalidArgument", 400), (rng, e)
                assert err["Message"] == ("Range specified is not valid for "
                                          "source object of size: %d"
                                          % len(src)), err
        for rng in ("bytes=5-1", "bytes=0-", "bytes=-5", "0-5"):
            assert errs(s3.upload_part_copy, Bucket="bkt", Key="upc/r",
                        UploadId=up, PartNumber=9, CopySourceRange=rng,
                        CopySource={"Bucket": "bkt", "Key": "upc/src"}) == \
                ("InvalidArgument", 400), rng
        s3.abort_multipart_upload(Bucket="bkt", Key="upc/r", UploadId=up)
    """)


def test_auth_errors(cluster):
    out = cluster.run("""
        print(errs(s3.list_buckets))
        print(errs(s3.put_object, Bucket="bkt", Key="x", Body=b"x"))
    """, secret="w" * 40)
    assert out.split("\n")[:2] == ["('SignatureDoesNotMatch', 403)"] * 2, out
    cluster.run("""
        s3.put_object(Bucket="bkt", Key="auth", Body=b"x")
        unknown = client(aws_access_key_id="AKIAUNKNOWNUNKNOWN12",
                         aws_secret_access_key="s" * 40)
        assert errs(unknown.list_objects_v2, Bucket="bkt") == \
            ("InvalidAccessKeyId", 403)
        assert errs(unknown.get_object, Bucket="bkt", Key="auth") == \
            ("InvalidAccessKeyId", 403)
        anon = client(sig=UNSIGNED)
        for fn, kw in ((anon.list_buckets, {}),
                       (anon.list_objects_v2, {"Bucket": "bkt"}),
                       (anon.get_object, {"Bucket": "bkt", "Key": "auth"}),
                       (anon.put_object, {"Bucket": "bkt", "Key": "anon",
                                          "Body": b"x"})):
            assert errs(fn, **kw) == ("AccessDenied", 403), fn
        assert errs(anon.head_object, Bucket="bkt", Key="auth") == ("403", 403)
        assert errs(s3.head_object, Bucket="bkt", Key="anon") == ("404", 404)

        # operations s3d does not implement: NotImplemented, 501, S3 XML
        raw = []
        def keep(http_response, **kw):
            raw.append(http_response)
        s3.meta.events.register("after-call.s3", lambda **kw: None)
        for fn, kw in (
                (s3.get_bucket_versioning, {"Bucket": "bkt"}),
                (s3.put_bucket_policy, {"Bucket": "bkt", "Policy": "{}"}),
                (s3.get_bucket_acl, {"Bucket": "bkt"}),
                (s3.get_object_tagging, {"Bucket": "bkt", "Key": "auth"}),
                (s3.put_bucket_lifecycle_configuration, {
                    "Bucket": "bkt", "LifecycleConfiguration": {"Rules": []}}),
                (s3.get_bucket_cors, {"Bucket": "bkt"}),
                (s3.list_object_versions, {"Bucket": "bkt"}),
                (s3.restore_object, {"Bucket": "bkt", "Key": "auth"})):
            try:
                fn(**kw)
                raise AssertionError("accepted: %s" % fn)
            except botocore.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "NotImplemented", \
                    (fn, e.response)
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == \
                    501, (fn, e.response)
                assert e.response["ResponseMetadata"]["RequestId"], e.response
        # the unimplemented answer comes before authentication, and is XML
        req = urllib.request.Request(url + "/bkt?versioning")
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("accepted")
        except urllib.error.HTTPError as e:
            body = e.read().decode()
            assert e.code == 501 and "<Code>NotImplemented</Code>" in body, \
                body
            assert e.headers["Content-Type"] == "application/xml", e.headers
        # the object is untouched by the refused requests
        assert s3.get_object(Bucket="bkt", Key="auth")["Body"].read() == b"x"
    """)
