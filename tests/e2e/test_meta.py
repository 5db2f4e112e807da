"""kiseki-meta end to end: the real daemon driven by the ks-meta-cli tool.

- a fresh daemon bootstraps the system shard and serves buckets and
  objects; listing with a delimiter works over the wire;
- crash: a loop of 1,000 PUT_OBJECT deltas (one at a time, each printed
  when acknowledged) is cut by kill -9 of the daemon in the middle; after a
  restart (which discards the state files and rebuilds them from the Raft
  snapshot + log) every acknowledged object is present with exactly the
  composition that was written, and writing continues;
- SIGTERM exits 0, and a clean restart keeps everything.
"""

from __future__ import annotations

import subprocess
import time

from ksharness import bin_path, free_port

N = 1000


def start_meta(daemons, tmp_path, snapshot_threshold=64):
    port = free_port()
    cfg = {"rpc": {"listen": f"127.0.0.1:{port}"},
           "meta": {"snapshot_threshold": snapshot_threshold,
                    "data_dir": str(tmp_path / "meta.data")},
           "log": {"level": "info"}}
    return daemons("meta", cfg, binary="kiseki-meta", ready_port=port,
                   ready_log=r"event=ready")


def cli(d, *args, check=0, timeout=120):
    host, port = d.addr
    p = subprocess.run([str(bin_path("ks-meta-cli")), f"{host}:{port}",
                        *args], capture_output=True, text=True,
                       timeout=timeout)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def check_objects(d, n):
    out = cli(d, "check", "bk", str(n)).stdout.split("\n")
    return {line.split()[0]: line.split()[1] for line in out if line}


def test_basic_and_sigterm(ks_build, daemons, tmp_path):
    d = start_meta(daemons, tmp_path)
    cli(d, "setup", "bk")
    cli(d, "setup", "bk")  # idempotent: BucketAlreadyOwnedByYou tolerated
    cli(d, "put-loop", "bk", "20")
    res = check_objects(d, 21)
    assert sum(v == "ok" for v in res.values()) == 20
    assert res["obj00020"] == "missing"
    lines = cli(d, "list", "bk", "obj0001", "").stdout.split("\n")
    assert [x for x in lines if x] == [f"key obj000{i}" for i in range(10, 20)]
    assert d.stop() == 0
    d.start()
    res = check_objects(d, 20)
    assert all(v == "ok" for v in res.values())
    assert d.stop() == 0


def test_kill9_during_put_loop(ks_build, daemons, tmp_path):
    d = start_meta(daemons, tmp_path)
    cli(d, "setup", "bk")
    host, port = d.addr
    loop = subprocess.Popen([str(bin_path("ks-meta-cli")), f"{host}:{port}",
                             "put-loop", "bk", str(N)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    acked = []
    deadline = time.monotonic() + 120
    while len(acked) < N // 3 and time.monotonic() < deadline:
        line = loop.stdout.readline()
        if not line:
            break
        acked.append(line.split()[1])
    assert len(acked) >= N // 3, loop.stderr.read()
    d.kill9()
    rest, err = loop.communicate(timeout=60)
    acked += [line.split()[1] for line in rest.split("\n") if line]
    assert loop.returncode != 0, "the loop should have lost its daemon"
    assert len(acked) < N
    d.start()
    res = check_objects(d, N)
    for key in acked:
        assert res[key] == "ok", (key, res[key])
    # An object the daemon applied but could not acknowledge may be there;
    # nothing is ever "wrong".
    assert "wrong" not in res.values()
    # Writing continues where it stopped, with fresh inode numbers.
    cli(d, "put-loop", "bk", str(N))
    res = check_objects(d, N)
    assert all(v == "ok" for v in res.values())
    assert d.stop() == 0
