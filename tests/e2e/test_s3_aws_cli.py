"""The single-node S3 service (s3cluster.py) driven by Debian's aws cli
(/usr/bin/aws, through Cluster.aws) beyond the 20 MB cp of
test_s3_clients.py:

- cp of a 200 MB file up (multipart in the cli's default 8 MiB parts, 24
  of them) and down, compared by the sha256 of the files; head-object
  reports the length and a multipart ETag ("...-24");
- sync of a local tree with nested directories, names with a space, a `%`
  and UTF-8 (`ß/日本.txt`), an empty file, a few KB and a 10 MB file: a
  second sync uploads nothing, a local change and a local delete are
  exactly what `sync --delete` applies, a sync down into an empty
  directory gives the same tree;
- ls (buckets, a prefix, --recursive --summarize), rm --recursive, mv (local
  to remote, remote to remote);
- presign fetched with curl: 200 and the same bytes, a tampered signature
  403 SignatureDoesNotMatch, an expired URL 403 AccessDenied;
- s3api get-bucket-location and list-objects (v1) with --marker.

One cluster for the module (starting one costs more than most tests here).
The 200 MB file never sits in memory whole: it is written and hashed in
pieces.  Every aws call goes through Cluster.aws, which fails the test on a
non-zero exit status.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time

import pytest

from s3cluster import s3_cluster

MB = 1_000_000
PIECE = 8 << 20


@pytest.fixture(scope="module")
def cluster(ks_build, tmp_path_factory):
    with s3_cluster(tmp_path_factory.mktemp("s3awscli")) as c:
        yield c


def write_random(path, size):
    """Write size random bytes to path a piece at a time; returns their
    sha256 hex."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(PIECE, left))
            h.update(piece)
            f.write(piece)
            left -= len(piece)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(PIECE), b""):
            h.update(piece)
    return h.hexdigest()


def tree_digest(root):
    """{relative path: sha256} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            out[os.path.relpath(p, root)] = sha256_file(p)
    return out


def curl(url, dst):
    """GET url with curl into dst; returns the HTTP status."""
    p = subprocess.run(["curl", "-sS", "--max-time", "60", "-o", str(dst),
                        "-w", "%{http_code}", url],
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr
    return int(p.stdout)


def test_cp_200mb_multipart(cluster):
    root = cluster.root
    src, dst = root / "200mb.bin", root / "200mb.out"
    digest = write_random(src, 200 * MB)
    cluster.aws("s3", "mb", "s3://big")
    t0 = time.monotonic()
    cluster.aws("s3", "cp", "--no-progress", src, "s3://big/200mb.bin",
                timeout=600)
    t1 = time.monotonic()
    head = json.loads(cluster.aws("s3api", "head-object", "--bucket", "big",
                                  "--key", "200mb.bin"))
    assert head["ContentLength"] == 200 * MB, head
    # 200 MB in the cli's default 8 MiB parts: 24 parts
    assert re.fullmatch(r'"[0-9a-f]{32}-24"', head["ETag"]), head["ETag"]
    cluster.aws("s3", "cp", "--no-progress", "s3://big/200mb.bin", dst,
                timeout=600)
    t2 = time.monotonic()
    assert dst.stat().st_size == 200 * MB
    assert sha256_file(dst) == digest
    print(f"200 MB: up {t1 - t0:.1f}s, down {t2 - t1:.1f}s")
    cluster.aws("s3", "rm", "s3://big/200mb.bin")
    cluster.aws("s3", "rb", "s3://big")
    src.unlink()
    dst.unlink()


def sync_lines(out, verb):
    """The targets of the `verb:` lines of aws s3 sync's output."""
    return sorted(line.split(" to ", 1)[1] if verb != "delete"
                  else line.split(": ", 1)[1]
                  for line in out.splitlines() if line.startswith(verb + ": "))


def test_sync(cluster):
    root = cluster.root
    src = root / "synctree"
    (src / "a" / "b" / "c").mkdir(parents=True)
    (src / "ß").mkdir()
    (src / "top.txt").write_bytes(b"top\n")
    (src / "with space.txt").write_bytes(os.urandom(2000))
    (src / "100% sure.txt").write_bytes(os.urandom(3000))
    (src / "ß" / "日本.txt").write_bytes("こんにちは\n".encode())
    (src / "a" / "empty").write_bytes(b"")
    (src / "a" / "b" / "kb.bin").write_bytes(os.urandom(5000))
    (src / "a" / "b" / "c" / "big.bin").write_bytes(os.urandom(10 * MB))
    names = sorted(tree_digest(src))
    cluster.aws("s3", "mb", "s3://sync")
    dest = "s3://sync/t"
    out = cluster.aws("s3", "sync", "--no-progress", src, dest)
    assert sync_lines(out, "upload") == sorted(f"{dest}/{n}" for n in names), out
    listed = cluster.aws("s3", "ls", "--recursive", "s3://sync/t/")
    for n in names:
        assert f" t/{n}\n" in listed, (n, listed)

    # nothing changed: nothing to do
    out = cluster.aws("s3", "sync", "--no-progress", src, dest)
    assert out.strip() == "", out

    # one change (another size, so sync must see it), one delete
    (src / "a" / "b" / "kb.bin").write_bytes(os.urandom(6000))
    (src / "with space.txt").unlink()
    out = cluster.aws("s3", "sync", "--no-progress", "--delete", src, dest)
    assert sync_lines(out, "upload") == [f"{dest}/a/b/kb.bin"], out
    assert sync_lines(out, "delete") == [f"{dest}/with space.txt"], out
    assert len(out.strip().splitlines()) == 2, out

    down = root / "syncdown"
    down.mkdir()
    cluster.aws("s3", "sync", "--no-progress", dest, down)
    assert tree_digest(down) == tree_digest(src)
    assert (down / "a" / "empty").stat().st_size == 0


def test_ls_rm_mv(cluster):
    root = cluster.root
    cluster.aws("s3", "mb", "s3://lsb")
    sizes = {"d/x1": 10, "d/x2": 2000, "d/sub/y": 30, "d/sub/z/w": 4,
             "e/f": 5}
    tree = root / "lstree"
    for key, n in sizes.items():
        (tree / key).parent.mkdir(parents=True, exist_ok=True)
        (tree / key).write_bytes(os.urandom(n))
    cluster.aws("s3", "cp", "--no-progress", "--recursive", tree, "s3://lsb/")

    buckets = cluster.aws("s3", "ls")
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d lsb$", buckets, re.M), \
        buckets

    out = cluster.aws("s3", "ls", "s3://lsb/d/")
    lines = sorted(line.split() for line in out.splitlines())
    assert ["PRE", "sub/"] in lines, out
    files = {w[-1]: int(w[-2]) for w in lines if w[0] != "PRE"}
    assert files == {"x1": 10, "x2": 2000}, out

    out = cluster.aws("s3", "ls", "--recursive", "--summarize", "s3://lsb/d/")
    keys = [line.split()[-1] for line in out.splitlines()
            if re.match(r"\d{4}-", line)]
    assert sorted(keys) == sorted(k for k in sizes if k.startswith("d/")), out
    assert re.search(r"Total Objects: 4\s", out), out
    assert re.search(r"Total Size: 2044\b", out), out

    # mv local -> remote removes the local file; remote -> remote moves
    mv = root / "mvsrc"
    data = os.urandom(1234)
    mv.write_bytes(data)
    cluster.aws("s3", "mv", "--no-progress", mv, "s3://lsb/m/one")
    assert not mv.exists()
    cluster.aws("s3", "mv", "--no-progress", "s3://lsb/m/one", "s3://lsb/m/two")
    out = cluster.aws("s3", "ls", "s3://lsb/m/")
    assert "two" in out and "one" not in out, out
    cluster.aws("s3", "cp", "--no-progress", "s3://lsb/m/two", root / "mvback")
    assert (root / "mvback").read_bytes() == data

    out = cluster.aws("s3", "rm", "--recursive", "s3://lsb/d/")
    assert len([ln for ln in out.splitlines() if ln.startswith("delete: ")]) == 4, out
    assert cluster.aws("s3", "ls", "s3://lsb/d/", ok=(1,)) == ""
    out = cluster.aws("s3", "ls", "--recursive", "s3://lsb/")
    assert sorted(ln.split()[-1] for ln in out.splitlines()) == ["e/f", "m/two"], out
    cluster.aws("s3", "rm", "--recursive", "s3://lsb/")
    cluster.aws("s3", "rb", "s3://lsb")
    assert not re.search(r" lsb$", cluster.aws("s3", "ls"), re.M)


def test_presign_curl(cluster):
    root = cluster.root
    cluster.aws("s3", "mb", "s3://pre")
    data = os.urandom(300_000)
    (root / "pre.bin").write_bytes(data)
    key = "p q/r%s.bin"
    cluster.aws("s3", "cp", "--no-progress", root / "pre.bin", f"s3://pre/{key}")

    url = cluster.aws("s3", "presign", f"s3://pre/{key}", "--expires-in", "60").strip()
    assert "X-Amz-Signature=" in url, url
    got = root / "pre.got"
    assert curl(url, got) == 200
    assert got.read_bytes() == data

    i = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    bad = url[:i] + ("1" if url[i] == "0" else "0") + url[i + 1:]
    assert curl(bad, got) == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in got.read_text()

    short = cluster.aws("s3", "presign", f"s3://pre/{key}",
                        "--expires-in", "1").strip()
    time.sleep(2)
    assert curl(short, got) == 403
    assert "<Code>AccessDenied</Code>" in got.read_text()


def test_s3api_location_and_list_v1(cluster):
    cluster.aws("s3", "mb", "s3://api")
    loc = json.loads(cluster.aws("s3api", "get-bucket-location",
                                 "--bucket", "api"))
    # us-east-1 is the empty (null) location constraint
    assert loc.get("LocationConstraint") in (None, ""), loc
    tree = cluster.root / "apitree"
    tree.mkdir()
    for k in ("k1", "k2", "k3", "k4"):
        (tree / k).write_bytes(b"x")
    cluster.aws("s3", "cp", "--no-progress", "--recursive", tree, "s3://api/")
    out = json.loads(cluster.aws("s3api", "list-objects", "--bucket", "api",
                                 "--marker", "k1", "--max-keys", "2",
                                 "--no-paginate"))
    assert [o["Key"] for o in out["Contents"]] == ["k2", "k3"], out
    assert out["IsTruncated"] is True, out
    assert out.get("Marker") == "k1", out
    out = json.loads(cluster.aws("s3api", "list-objects", "--bucket", "api",
                                 "--marker", "k3", "--no-paginate"))
    assert [o["Key"] for o in out["Contents"]] == ["k4"], out
    assert out["IsTruncated"] is False, out
    # the cli's own pagination over v1 (NextMarker or last key) sees all
    out = json.loads(cluster.aws("s3api", "list-objects", "--bucket", "api",
                                 "--page-size", "1"))
    assert [o["Key"] for o in out["Contents"]] == ["k1", "k2", "k3", "k4"], out
