"""kiseki-chunkd end to end: the real daemon driven by the ks-frag tool.

- put/get round trip byte-identical, ranges, stat, delete, device list;
- a fragment corrupted on disk: get fails with KS_ECORRUPT (exit 4), the
  daemon logs event=fragment_corrupt with the file and keeps serving;
- kill -9 in the middle of a batch of puts, restart: every fragment the
  tool saw acknowledged reads back byte-identical, and no temporary file
  survives the restart;
- a device that fails (not a directory at start; removed at run time) is
  reported failed and refuses its operations (-EIO) while the others work;
- SIGTERM exits 0;
- /metrics on admin.listen: the Prometheus text format, with per-operation
  counters that move with the operations done and per-device gauges.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from ksharness import bin_path, free_port

FRAG_HDR = 64
EXIT_NOT_FOUND, EXIT_CORRUPT, EXIT_IO = 3, 4, 6


def start_chunkd(daemons, name, devices, port=None):
    port = port or free_port()
    cfg = {"rpc": {"listen": f"127.0.0.1:{port}"},
           "admin": {"listen": f"127.0.0.1:{free_port()}"},
           "chunkd": {"devices": ",".join(devices), "device_jobs": 2},
           "log": {"level": "info"}}
    return daemons(name, cfg, binary="kiseki-chunkd", ready_port=port,
                   ready_log=r"event=ready")


def scrape(d):
    """GET /metrics of daemon d: {series: value}, and the content type."""
    url = f"http://{d.config['admin']['listen']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        ctype = r.headers["Content-Type"]
        text = r.read().decode()
    series = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            series[name] = float(value)
    return series, ctype


def frag(d, *args, check=None, stdin=None, timeout=60):
    """Run ks-frag against daemon d; returns the CompletedProcess."""
    host, port = d.addr
    p = subprocess.run([str(bin_path("ks-frag")), f"--addr={host}:{port}", *args],
                       capture_output=True, timeout=timeout, input=stdin)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def dev_list(d):
    out = frag(d, "--op=list", check=0).stdout.decode()
    devs = []
    for line in out.splitlines():
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        devs.append(kv)
    return devs


def batch_payload(n: int, seed: int, size: int) -> bytes:
    """What `ks-frag --op=put-batch` writes as fragment n."""
    c = (7 * n + seed) & 0xFF
    period = bytes(((31 * j) + c) & 0xFF for j in range(256))
    return (period * (size // 256 + 1))[:size]


def frag_file(devdir: Path, chunk_hex: str, index: int) -> Path:
    return devdir / "frags" / chunk_hex[:2] / f"{chunk_hex}.{index}"


@pytest.fixture
def devdirs(tmp_path):
    dirs = [tmp_path / f"dev{i}" for i in range(3)]
    for p in dirs:
        p.mkdir()
    return dirs


def test_round_trip_ranges_stat_delete_list(ks_build, daemons, devdirs, tmp_path):
    d = start_chunkd(daemons, "chunkd", [f"{devdirs[0]}=fast-nvme",
                                         f"{devdirs[1]}", f"{devdirs[2]}=hdd"])
    devs = dev_list(d)
    assert [v["class"] for v in devs] == ["fast-nvme", "bulk-nvme", "hdd"]
    assert all(v["state"] == "ok" for v in devs)
    assert [v["path"] for v in devs] == [str(p) for p in devdirs]
    assert all(int(v["capacity"]) > 0 for v in devs)

    data = os.urandom(3 * 1024 * 1024 + 123)
    src = tmp_path / "in"
    src.write_bytes(data)
    chunk = "c0ffee" + "11" * 29
    frag(d, "--op=put", "--dev=2", f"--chunk={chunk}", "--index=5",
         f"--file={src}", check=0)
    # the file is where the layout says, header + payload
    f = frag_file(devdirs[2], chunk, 5)
    assert f.stat().st_size == FRAG_HDR + len(data)

    out = tmp_path / "out"
    frag(d, "--op=get", f"--dev={devs[2]['id']}", f"--chunk={chunk}",
         "--index=5", f"--file={out}", check=0)
    assert out.read_bytes() == data
    frag(d, "--op=get", "--dev=2", f"--chunk={chunk}", "--index=5",
         "--offset=1000000", "--length=4096", f"--file={out}", check=0)
    assert out.read_bytes() == data[1000000:1004096]
    st = frag(d, "--op=stat", "--dev=2", f"--chunk={chunk}", "--index=5",
              check=0).stdout.decode()
    assert f"len={len(data)} " in st and "k=4 m=2" in st
    # another device, another index: not there
    frag(d, "--op=get", "--dev=0", f"--chunk={chunk}", "--index=5",
         f"--file={out}", check=EXIT_NOT_FOUND)
    frag(d, "--op=get", "--dev=2", f"--chunk={chunk}", "--index=4",
         f"--file={out}", check=EXIT_NOT_FOUND)
    assert dev_list(d)[2]["fragments"] == "1"

    frag(d, "--op=delete", "--dev=2", f"--chunk={chunk}", "--index=5", check=0)
    assert not f.exists()
    frag(d, "--op=delete", "--dev=2", f"--chunk={chunk}", "--index=5",
         check=EXIT_NOT_FOUND)
    assert dev_list(d)[2]["fragments"] == "0"
    assert d.stop() == 0


def test_corrupt_fragment_reported_and_daemon_serves(ks_build, daemons, devdirs,
                                                     tmp_path):
    d = start_chunkd(daemons, "chunkd", [str(p) for p in devdirs])
    data = os.urandom(200000)
    src, out = tmp_path / "in", tmp_path / "out"
    src.write_bytes(data)
    chunk = "ab" * 32
    frag(d, "--op=put", "--dev=1", f"--chunk={chunk}", f"--file={src}", check=0)
    f = frag_file(devdirs[1], chunk, 0)
    raw = bytearray(f.read_bytes())
    raw[FRAG_HDR + 150000] ^= 0x01
    f.write_bytes(bytes(raw))

    p = frag(d, "--op=get", "--dev=1", f"--chunk={chunk}", f"--file={out}",
             check=EXIT_CORRUPT)
    assert b"err=KS_ECORRUPT" in p.stdout
    assert not out.exists() or out.read_bytes() != data
    d.wait_log(rf"event=fragment_corrupt .*file=frags/ab/{chunk}\.0 "
               r"reason=\"payload crc mismatch\"", timeout=5)

    # a truncated one too
    chunk2 = "cd" * 32
    frag(d, "--op=put", "--dev=0", f"--chunk={chunk2}", f"--file={src}", check=0)
    f2 = frag_file(devdirs[0], chunk2, 0)
    os.truncate(f2, FRAG_HDR + 1000)
    frag(d, "--op=get", "--dev=0", f"--chunk={chunk2}", f"--file={out}",
         check=EXIT_CORRUPT)
    frag(d, "--op=stat", "--dev=0", f"--chunk={chunk2}", check=EXIT_CORRUPT)

    # still serving; re-putting the content repairs the fragment
    frag(d, "--op=put", "--dev=1", f"--chunk={chunk}", f"--file={src}", check=0)
    frag(d, "--op=get", "--dev=1", f"--chunk={chunk}", f"--file={out}", check=0)
    assert out.read_bytes() == data
    assert d.running
    assert d.stop() == 0


def test_kill9_during_puts_keeps_every_ack(ks_build, daemons, devdirs, tmp_path):
    port = free_port()
    d = start_chunkd(daemons, "chunkd", [str(p) for p in devdirs], port=port)
    size, seed = 20000, 7
    batch = subprocess.Popen(
        [str(bin_path("ks-frag")), f"--addr=127.0.0.1:{port}", "--op=put-batch",
         "--count=1000000", f"--size={size}", f"--seed={seed}", "--timeout=5s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    acks = []
    deadline = time.monotonic() + 60
    while len(acks) < 150 and time.monotonic() < deadline:
        line = batch.stdout.readline().decode()
        if not line:
            break
        if line.startswith("ack "):
            acks.append(line)
    assert len(acks) >= 150, batch.stderr.read()
    d.kill9()
    rest, err = batch.communicate(timeout=30)
    assert batch.returncode != 0  # the tool saw the daemon die
    acks += [l for l in rest.decode().splitlines() if l.startswith("ack ")]

    d.start()
    d.wait_log(r"event=device_opened", timeout=10)
    for p in devdirs:
        assert not list(p.glob("frags/*/*.tmp.*")), "temporary files survived"
    out = tmp_path / "out"
    for line in acks:
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        n = int(kv["n"])
        frag(d, "--op=get", f"--dev={kv['dev']}", f"--chunk={kv['chunk']}",
             "--index=0", f"--file={out}", check=0)
        assert out.read_bytes() == batch_payload(n, seed, size), f"fragment {n}"
    assert d.stop() == 0


def test_failed_devices(ks_build, daemons, devdirs, tmp_path):
    notdir = tmp_path / "plainfile"
    notdir.write_bytes(b"x")
    d = start_chunkd(daemons, "chunkd",
                     [str(devdirs[0]), str(notdir), str(devdirs[1])])
    d.wait_log(r"event=device_failed path=\S*plainfile .*err=ENOTDIR", timeout=5)
    assert re.search(r"event=ready .*devices=3 failed=1", d.log_text())
    devs = dev_list(d)
    assert [v["state"] for v in devs] == ["ok", "failed", "ok"]
    src, out = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"hello" * 1000)
    chunk = "ee" * 32
    # a device that failed before its id was read has no id to address:
    # "unknown device" (ENODEV, not "no such fragment": the caller's device
    # list is what is wrong); ks-frag has no exit status of its own for it
    p = frag(d, "--op=put", "--dev=1", f"--chunk={chunk}", f"--file={src}",
             check=1)
    assert b"err=ENODEV" in p.stdout, p.stdout
    frag(d, "--op=put", "--dev=2", f"--chunk={chunk}", f"--file={src}", check=0)

    # a device whose directory disappears while serving fails: -EIO
    shutil.rmtree(devdirs[1])
    frag(d, "--op=get", "--dev=2", f"--chunk={chunk}", f"--file={out}",
         check=EXIT_IO)
    frag(d, "--op=put", "--dev=2", f"--chunk={chunk}", f"--file={src}",
         check=EXIT_IO)
    d.wait_log(r"event=device_failed .*reason=\"directory removed\"", timeout=5)
    assert [v["state"] for v in dev_list(d)] == ["ok", "failed", "failed"]
    frag(d, "--op=put", "--dev=0", f"--chunk={chunk}", f"--file={src}", check=0)
    frag(d, "--op=get", "--dev=0", f"--chunk={chunk}", f"--file={out}", check=0)
    assert out.read_bytes() == src.read_bytes()
    assert d.stop() == 0


def test_default_devices_under_data_dir_and_restart(ks_build, daemons, tmp_path):
    port = free_port()
    data = tmp_path / "var" / "chunkd"
    cfg = {"rpc": {"listen": f"127.0.0.1:{port}"},
           "admin": {"listen": f"127.0.0.1:{free_port()}"},
           "chunkd": {"data_dir": str(data)}}
    d = daemons("chunkd", cfg, binary="kiseki-chunkd", ready_port=port,
                ready_log=r"event=ready")
    devs = dev_list(d)
    assert len(devs) == 6
    assert all(v["class"] == "bulk-nvme" and v["state"] == "ok" for v in devs)
    ids = [v["id"] for v in devs]
    assert d.stop() == 0
    d.start()
    assert [v["id"] for v in dev_list(d)] == ids  # ids persist
    assert d.stop() == 0


def test_metrics(ks_build, daemons, devdirs, tmp_path):
    d = start_chunkd(daemons, "chunkd", [str(p) for p in devdirs])
    before, ctype = scrape(d)
    assert ctype.startswith("text/plain; version=0.0.4")
    assert before['kiseki_chunkd_requests_total{op="put"}'] == 0
    for p in devdirs:
        assert before[f'kiseki_chunkd_device_up{{device="{p}"}}'] == 1
        assert before[f'kiseki_chunkd_device_free_bytes{{device="{p}"}}'] > 0

    src = tmp_path / "in"
    src.write_bytes(os.urandom(10000))
    chunk = "ab" * 32
    frag(d, "--op=put", "--dev=1", f"--chunk={chunk}", f"--file={src}", check=0)
    frag(d, "--op=get", "--dev=1", f"--chunk={chunk}", f"--file={tmp_path / 'out'}",
         check=0)
    frag(d, "--op=get", "--dev=0", f"--chunk={chunk}", f"--file={tmp_path / 'out'}",
         check=EXIT_NOT_FOUND)
    after, _ = scrape(d)
    assert after['kiseki_chunkd_requests_total{op="put"}'] == 1
    assert after['kiseki_chunkd_requests_total{op="get"}'] == 2
    assert after['kiseki_chunkd_errors_total{op="get"}'] == 1
    assert after['kiseki_chunkd_errors_total{op="put"}'] == 0
    assert after["kiseki_chunkd_put_bytes_total"] == 10000
    assert after["kiseki_chunkd_get_bytes_total"] == 10000
    assert after["kiseki_rpc_requests_total"] >= 3
    assert after["kiseki_rpc_connections_accepted_total"] >= 3
    with urllib.request.urlopen(
            f"http://{d.config['admin']['listen']}/healthz", timeout=10) as r:
        assert r.status == 200 and r.read() == b"ok\n"
    assert d.stop() == 0


def test_admin_port_taken_fails_start(ks_build, daemons, devdirs):
    first = start_chunkd(daemons, "chunkd1", [str(devdirs[0])])
    p = subprocess.run([str(bin_path("kiseki-chunkd")),
                        f"--rpc.listen=127.0.0.1:{free_port()}",
                        f"--admin.listen={first.config['admin']['listen']}",
                        f"--chunkd.devices={devdirs[1]}"],
                       capture_output=True, timeout=30)
    assert p.returncode == 1
    assert b"event=admin_listen_failed" in p.stderr
    assert b"err=EADDRINUSE" in p.stderr
    assert first.stop() == 0
