"""kiseki-meta end to end: the real daemon driven by the ks-meta-cli tool.

- a fresh daemon bootstraps the system shard and serves buckets and
  objects; listing with a delimiter works over the wire;
- crash: a loop of 1,000 PUT_OBJECT deltas (one at a time, each printed
  when acknowledged) is cut by kill -9 of the daemon in the middle; after a
  restart (which discards the state files and rebuilds them from the Raft
  snapshot + log) every acknowledged object is present with exactly the
  composition that was written, and writing continues;
- SIGTERM exits 0, and a clean restart keeps everything;
- /metrics on admin.listen (urllib from this interpreter) is valid
  Prometheus text (every family's HELP and TYPE before its samples, every
  sample `name{labels} value`) and its request, Raft and group-commit
  numbers follow the operations done (the one-voter group reads without
  barriers; snapshots get rarer as the shard grows); /healthz answers 200;
  an admin port already taken fails the start.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from ksharness import bin_path, free_port

N = 1000


def start_meta(daemons, tmp_path, snapshot_threshold=64):
    port = free_port()
    # Every daemon gets its own admin port: the default (7101) may be taken
    # by another test run or a development node on this machine.
    cfg = {"rpc": {"listen": f"127.0.0.1:{port}"},
           "admin": {"listen": f"127.0.0.1:{free_port()}"},
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


# --- metrics ---------------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
_SAMPLE = re.compile(rf"({_NAME})(\{{{_LABEL}(?:,{_LABEL})*\}})? (\S+)")
_SUFFIXES = {"counter": ("",), "gauge": ("",),
             "histogram": ("_bucket", "_sum", "_count")}


def parse_exposition(text):
    """Check text against the Prometheus text format 0.0.4 as the registry
    writes it; return {series: value}, series being `name{labels}`."""
    assert text.endswith("\n")
    series, helped, typed = {}, set(), {}
    family = None
    for line in text.splitlines():
        assert line, "blank line"
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert re.fullmatch(_NAME, name) and name not in helped, line
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name in helped and name not in typed, line
            assert kind in _SUFFIXES, line
            typed[name] = kind
            family = name
            continue
        assert not line.startswith("#"), line
        m = _SAMPLE.fullmatch(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert family is not None, f"sample before any TYPE: {line}"
        assert name in (family + x for x in _SUFFIXES[typed[family]]), \
            f"{name} outside its family {family}"
        v = float(value)  # accepts +Inf and NaN, rejects garbage
        key = name + (labels or "")
        assert key not in series, f"duplicate series {key}"
        series[key] = v
    assert helped == set(typed), "HELP without TYPE"
    return series


def admin_url(d, path):
    return f"http://{d.config['admin']['listen']}{path}"


def scrape(d):
    with urllib.request.urlopen(admin_url(d, "/metrics"), timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse_exposition(r.read().decode())


def test_metrics(ks_build, daemons, tmp_path):
    # Threshold 16 (the least allowed): the writes below take snapshots.
    d = start_meta(daemons, tmp_path, snapshot_threshold=16)
    with urllib.request.urlopen(admin_url(d, "/healthz"), timeout=10) as r:
        assert r.status == 200 and r.read() == b"ok\n"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(admin_url(d, "/nope"), timeout=10)
    assert e.value.code == 404
    before = scrape(d)
    assert before['kiseki_meta_raft_leader{shard="1"}'] == 1
    assert before['kiseki_meta_requests_total{op="write"}'] == 0

    cli(d, "setup", "bk")
    cli(d, "setup", "bk")  # a second time: BucketAlreadyOwnedByYou
    # 100: ~110 entries, snapshots at ~16 and ~44 (the threshold grows
    # with the shard: 2 entries per record), the next one at ~130.
    cli(d, "put-loop", "bk", "100")
    res = check_objects(d, 101)  # 100 present, obj00100 missing
    assert sum(v == "ok" for v in res.values()) == 100
    m = scrape(d)

    writes = m['kiseki_meta_requests_total{op="write"}']
    assert writes >= 100 + 2
    assert m['kiseki_meta_requests_total{op="get_object"}'] == 101
    assert m['kiseki_meta_request_errors_total{op="get_object"}'] == 1
    assert m['kiseki_meta_request_results_total{result="rejected"}'] >= 2
    assert m['kiseki_meta_request_results_total{result="failed"}'] == 0
    answered = sum(v for k, v in m.items()
                   if k.startswith("kiseki_meta_requests_total{"))
    assert answered == sum(v for k, v in m.items() if k.startswith(
        "kiseki_meta_request_results_total{"))
    # Latency: one observation per answer, +Inf bucket == count.
    for op in ("write", "get_object"):
        count = m[f'kiseki_meta_request_seconds_count{{op="{op}"}}']
        assert count == m[f'kiseki_meta_requests_total{{op="{op}"}}']
        assert m[f'kiseki_meta_request_seconds_bucket{{op="{op}",le="+Inf"}}'] \
            == count
        assert 0 < m[f'kiseki_meta_request_seconds_sum{{op="{op}"}}'] < 60
    # A one-voter group reads without barriers (but the term's first read
    # when no write preceded it).
    assert m["kiseki_meta_read_barriers_total"] <= 1
    assert m["kiseki_meta_local_reads_total"] >= 101
    # Raft: every write and every read barrier is a log entry.
    commit = m['kiseki_meta_raft_commit_index{shard="1"}']
    assert commit >= writes + m["kiseki_meta_read_barriers_total"]
    assert m['kiseki_meta_raft_applied_index{shard="1"}'] == commit
    assert m['kiseki_meta_raft_last_index{shard="1"}'] >= commit
    assert m['kiseki_meta_raft_term{shard="1"}'] >= 1
    assert m['kiseki_meta_raft_leader{shard="1"}'] == 1
    assert m["kiseki_meta_raft_snapshots_total"] >= 2
    assert m["kiseki_meta_raft_snapshots_installed_total"] == 0
    # Group commit: every entry was written by some fsync'd commit.
    entries = m["kiseki_meta_raft_entries_written_total"]
    fsyncs = m["kiseki_meta_raft_fsyncs_total"]
    assert entries >= commit - before['kiseki_meta_raft_commit_index{shard="1"}']
    assert 0 < m["kiseki_meta_raft_group_commits_total"] <= fsyncs
    assert m["kiseki_meta_raft_commit_entries_count"] == fsyncs
    assert m["kiseki_meta_raft_commit_entries_sum"] == entries
    assert m["kiseki_meta_raft_commit_seconds_count"] == fsyncs
    assert m['kiseki_meta_raft_commit_seconds_bucket{le="+Inf"}'] == fsyncs
    assert math.isfinite(m["kiseki_meta_raft_commit_seconds_sum"])
    assert d.stop() == 0


def test_admin_port_taken_fails_start(ks_build, daemons, tmp_path):
    first = start_meta(daemons, tmp_path)
    p = subprocess.run([str(bin_path("kiseki-meta")),
                        f"--rpc.listen=127.0.0.1:{free_port()}",
                        f"--admin.listen={first.config['admin']['listen']}",
                        f"--meta.data_dir={tmp_path / 'second.data'}"],
                       capture_output=True, timeout=30)
    assert p.returncode == 1
    assert b"event=admin_listen_failed" in p.stderr
    assert b"err=EADDRINUSE" in p.stderr
    assert first.stop() == 0
