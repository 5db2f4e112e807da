"""End-to-end tests of the RPC layer as a real process: ks-echod (the daemon
that serves only PING/SINK/SOURCE) driven by ks-rpc-ping (the C client) and
by ksproto (an independent Python implementation of the frame format).

What the unit tests (tests/unit/common/test_rpc.c) cannot show and these do:
the daemon's life cycle (config file, flags, --help, SIGTERM), the exact
bytes on the wire as a second implementation reads and writes them, the log
line that names why a connection was dropped, TLS with the real certificate
files, and a client's behaviour when the daemon process dies.

Every daemon runs with log.level=debug on a free port in the test's
tmp_path; the `daemons` fixture stops it and prints its log on failure.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

import ksproto as kp
from ksharness import Daemon, bin_path, free_port

# Every key of ks-echod's schema (tests/tools/ks-echod.c): --help must list
# them all.
ECHOD_KEYS = ["rpc.listen", "rpc.tls.enabled", "rpc.tls.ca", "rpc.tls.cert",
              "rpc.tls.key", "rpc.max_inflight", "rpc.max_bulk", "log.level",
              "log.file"]

PING_TIMEOUT_S = 60  # a ks-rpc-ping still running after this is a hang


# --- helpers ----------------------------------------------------------------


def echod(daemons, name: str = "echod", rpc: dict | None = None,
          level: str = "debug", **kw) -> Daemon:
    """Start a ks-echod on a free port (config file: rpc.*, log.level)."""
    port = free_port()
    cfg = {"rpc": {"listen": f"127.0.0.1:{port}", **(rpc or {})},
           "log": {"level": level}}
    return daemons(name, cfg, binary="ks-echod", ready_port=port,
                   ready_log=r"event=ready", **kw)


def ping(port: int, *args: str, timeout: float = PING_TIMEOUT_S):
    """Run ks-rpc-ping against 127.0.0.1:port; returns (exit status, the
    summary line's fields as a dict, the completed process)."""
    argv = [str(bin_path("ks-rpc-ping")), f"--addr=127.0.0.1:{port}", *args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return p.returncode, parse_summary(p.stdout), p


def parse_summary(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.startswith("ok=")]
    if not lines:
        return {}
    return dict(kv.split("=", 1) for kv in lines[-1].split())


def certs(ks_build: Path) -> Path:
    d = ks_build / "tests" / "certs"
    if not (d / "ca.pem").is_file():
        pytest.fail(f"{d}/ca.pem missing: the build generates the test certs "
                    "(target ks-test-certs)", pytrace=False)
    return d


def tls_args(c: Path, ca: str = "ca", who: str = "client") -> list[str]:
    return [f"--tls.ca={c / (ca + '.pem')}", f"--tls.cert={c / (who + '.pem')}",
            f"--tls.key={c / (who + '.key')}"]


def count(d: Daemon, pattern: str) -> int:
    return len(re.findall(pattern, d.log_text(since_start=True)))


def pattern_bytes(n: int, seed: int) -> bytes:
    return bytes((i * 31 + seed) & 0xFF for i in range(n))


def assert_serving(d: Daemon, *conns: kp.Conn) -> None:
    """The daemon answers a PING on each given (older) connection and on a
    new one."""
    for c in conns:
        r = c.call(kp.OP_PING, b"still", b"there")
        assert (r.status, r.body, r.bulk) == (0, b"still", b"there")
    with kp.Conn(d.addr) as c:
        r = c.call(kp.OP_PING, b"new", b"conn")
        assert (r.status, r.body, r.bulk) == (0, b"new", b"conn")


def assert_clean_stop(d: Daemon, log_file: Path | None = None) -> None:
    """SIGTERM: exit 0 in time, event=stopping then event=stopped logged
    (to stderr, or to log_file when the daemon has one)."""
    assert d.running, f"{d.name} died during the test"
    assert d.stop() == 0
    assert not d.stop_forced
    log = log_file.read_text() if log_file else d.log_text(since_start=True)
    i = log.find("event=stopping signal=Terminated")
    assert i >= 0, "no event=stopping after SIGTERM"
    assert re.search(r"event=stopped\b", log[i:]), "no event=stopped after stopping"


# --- the wire format itself (no daemon) ---------------------------------------


def test_ksproto_golden_bytes():
    # Pins ksproto to rpc.h's layout, so that a change there and here at the
    # same time cannot slip through unnoticed.
    assert kp.crc32c(b"123456789") == 0xE3069283
    assert kp.crc32c(b"6789", kp.crc32c(b"12345")) == 0xE3069283
    assert kp.crc32c(b"") == 0
    h = kp.encode_header(kind=kp.REQUEST, opcode=0x0201, id=0x1122334455667788,
                         status=-1009, body_len=3, bulk_len=0x0102030405,
                         body_crc=0xAABBCCDD, bulk_crc=0x01020304,
                         timeout_ms=30000)
    assert len(h) == kp.HDR_SIZE == 48
    assert h[:44] == bytes.fromhex(
        "4b535250" "01" "01" "0102" "8877665544332211" "0ffcffff" "03000000"
        "0504030201000000" "ddccbbaa" "04030201" "30750000")
    assert h[:4] == b"KSRP"
    assert struct.unpack("<I", h[44:])[0] == kp.crc32c(h[:44])
    d = kp.decode_header(h, max_bulk=1 << 40)
    assert (d.opcode, d.id, d.status, d.bulk_len) == (0x201, 0x1122334455667788,
                                                      -1009, 0x0102030405)
    for i in range(48):  # any corrupted byte is caught
        bad = bytearray(h)
        bad[i] ^= 0x10
        with pytest.raises(kp.FrameError):
            kp.decode_header(bytes(bad))
    assert kp.ERR["KS_ENOHANDLER"] == -1009


# --- daemon life cycle and configuration --------------------------------------


def test_config_file_ping_and_sigterm(ks_build, daemons, tmp_path):
    """Start from a hand-written config file (comments, nested sections,
    dotted keys, units), serve ks-rpc-ping, enforce the file's limits, and
    stop cleanly on SIGTERM with a client still connected."""
    port = free_port()
    conf = tmp_path / "echod.conf"
    conf.write_text(f"""\
// ks-echod for the end-to-end tests
{{
  /* the RPC section, nested */
  "rpc": {{
    "listen": "127.0.0.1:{port}",   // a free port
    "max_inflight": 64,
    "max_bulk": "1MiB",
    "tls": {{ "enabled": false }}
  }},
  "log.level": "debug"   /* dotted key at the top level */
}}
""")
    d = daemons("echod", None, ["--config", str(conf)], binary="ks-echod",
                ready_port=port, ready_log=r"event=ready")
    log = d.log_text(since_start=True)
    assert re.search(rf"level=info comp=ks-echod event=ready listen=127\.0\.0\.1:{port} tls=no", log)
    # log.level from the file: the readiness probe's connection is logged
    # at debug.
    d.wait_log(r"level=debug comp=rpc event=conn_accepted", timeout=10)

    rc, s, p = ping(port, "--count=2000", "--concurrency=32", "--size=64KiB")
    assert rc == 0, p.stdout + p.stderr
    assert (s["ok"], s["failed"], s["mismatched"], s["first_error"]) == \
        ("2000", "0", "0", "OK")

    # rpc.max_bulk from the file is enforced: a 2 MiB bulk is refused
    # (the server drops the connection, so the call fails).
    rc, s, p = ping(port, "--count=1", "--size=2MiB")
    assert rc == 1, p.stdout + p.stderr
    assert s["ok"] == "0" and s["failed"] == "1"
    d.wait_log(r"event=conn_dropped role=server peer=\S+ err=KS_ETOOBIG", timeout=10)

    # SIGTERM with an idle client connected: the daemon closes it and exits 0.
    idle = kp.Conn(d.addr)
    assert idle.call(kp.OP_PING).status == 0
    assert_clean_stop(d)
    assert kp.wait_closed(idle.sock, timeout=5) == b""
    idle.close()


def test_help_lists_every_key(ks_build):
    for flag in ("--help", "-h"):
        p = subprocess.run([str(bin_path("ks-echod")), flag], capture_output=True,
                           text=True, timeout=10)
        assert p.returncode == 0, p.stderr
        for key in ECHOD_KEYS:
            assert f"--{key}" in p.stdout, f"{flag} does not list {key}"
        assert "--config" in p.stdout
        assert "event=ready" not in p.stdout + p.stderr  # it did not start


BAD_CONFIGS = {
    # id: (file text, line, expected fragments of the message)
    "wrong_type": ('{\n  "rpc": {\n    "max_inflight": "lots"\n  }\n}\n', 3,
                   ["rpc.max_inflight", "expected integer", '"lots"']),
    "out_of_range": ('{\n  "rpc": {\n    "max_inflight": 0\n  }\n}\n', 3,
                     ["rpc.max_inflight", "1..65536"]),
    "unknown_key": ('{\n  "rpc": {\n    "listen": "127.0.0.1:1",\n'
                    '    "lisen": "127.0.0.1:2"\n  }\n}\n', 4,
                    ["rpc.lisen", "unknown key"]),
    "unknown_section": ('{\n  "log": {"level": "info"},\n  "rcp": {"listen": "x"}\n}\n', 3,
                        ["rcp", "unknown key"]),
    "bad_enum": ('{\n  "log": {\n    "level": "verbose"\n  }\n}\n', 3,
                 ["log.level", '"verbose"']),
    "bool_as_string": ('{\n  "rpc": {\n    "tls": {"enabled": "yes"}\n  }\n}\n', 3,
                       ["rpc.tls.enabled", '"yes"']),
    "set_twice": ('{\n  "rpc": {"listen": "127.0.0.1:1"},\n'
                  '  "rpc.listen": "127.0.0.1:2"\n}\n', 3,
                  ["rpc.listen", "twice"]),
    "bad_json_missing_comma": ('{\n  "rpc": {\n    "listen": "127.0.0.1:1"\n'
                               '    "max_inflight": 3\n  }\n}\n', 4,
                               ["parse error"]),
    "bad_json_trailing_comma": ('{\n  // comment\n  "log": {"level": "info"},\n}\n', 4,
                                ["parse error"]),
    "bad_json_truncated": ('{\n  "rpc": {\n    "listen": "127.0', None,
                           ["parse error"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_invalid_config_exits_2(ks_build, tmp_path, case):
    text, line, fragments = BAD_CONFIGS[case]
    path = tmp_path / f"{case}.json"
    path.write_text(text)
    p = subprocess.run([str(bin_path("ks-echod")), "--config", str(path)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, p.stdout + p.stderr
    msg = p.stderr.strip()
    assert msg.startswith("ks-echod: "), msg
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    assert where in msg, f"{msg!r} does not say {where!r}"
    for frag in fragments:
        assert frag in msg, f"{msg!r} lacks {frag!r}"
    assert len(msg.splitlines()) == 1
    assert "event=ready" not in p.stdout + p.stderr


@pytest.mark.parametrize("args,fragments", [
    (["--rpc.max_inflight=abc"], ["command line", "rpc.max_inflight", '"abc"']),
    (["--rpc.bogus=1"], ["command line", "--rpc.bogus", "unknown"]),
    (["stray"], ["command line", '"stray"']),
    (["--config", "/nonexistent/echod.json"], ["/nonexistent/echod.json", "cannot open"]),
], ids=["bad_value", "unknown_flag", "stray_arg", "missing_file"])
def test_invalid_flags_exit_2(ks_build, args, fragments):
    p = subprocess.run([str(bin_path("ks-echod")), *args], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2, p.stdout + p.stderr
    for frag in fragments:
        assert frag in p.stderr, f"{p.stderr!r} lacks {frag!r}"
    assert "event=ready" not in p.stdout + p.stderr


def test_flags_override_file(ks_build, daemons):
    file_port, flag_port = free_port(), free_port()
    cfg = {"rpc": {"listen": f"127.0.0.1:{file_port}", "max_bulk": "4KiB"},
           "log": {"level": "warn"}}
    d = daemons("echod", cfg,
                [f"--rpc.listen=127.0.0.1:{flag_port}", "--log.level", "debug"],
                binary="ks-echod", ready_port=flag_port, ready_log=r"event=ready")
    assert f"event=ready listen=127.0.0.1:{flag_port} tls=no" in d.log_text()
    with pytest.raises(OSError):  # nothing listens on the file's port
        socket.create_connection(("127.0.0.1", file_port), timeout=2).close()
    d.wait_log(r"level=debug comp=rpc event=conn_accepted", timeout=10)  # flag's level
    # A key only in the file still applies: max_bulk 4KiB refuses 8 KiB.
    rc, s, p = ping(flag_port, "--count=1", "--size=8KiB")
    assert rc == 1 and s["failed"] == "1", p.stdout + p.stderr
    d.wait_log(r"event=conn_dropped role=server peer=\S+ err=KS_ETOOBIG", timeout=10)
    rc, s, p = ping(flag_port, "--count=10", "--size=4KiB")
    assert rc == 0, p.stdout + p.stderr
    assert_clean_stop(d)


def test_log_file_and_sighup_reopen(ks_build, daemons, tmp_path):
    """log.file: events go to the file, not stderr; after the file is
    renamed (rotation), SIGHUP makes the daemon write to a new one."""
    logf = tmp_path / "echod-events.log"
    port = free_port()
    d = daemons("echod", {"rpc": {"listen": f"127.0.0.1:{port}"},
                          "log": {"level": "debug", "file": str(logf)}},
                binary="ks-echod", ready_port=port)
    deadline = time.monotonic() + 10
    while "event=ready" not in (logf.read_text() if logf.exists() else ""):
        assert time.monotonic() < deadline, "no event=ready in log.file"
        time.sleep(0.05)
    assert "event=ready" not in d.log_text(since_start=True)  # not on stderr
    rotated = tmp_path / "echod-events.log.1"
    logf.rename(rotated)
    d.proc.send_signal(signal.SIGHUP)
    while not (logf.exists() and "event=log_reopened ok=yes" in logf.read_text()):
        assert time.monotonic() < deadline, "log.file not reopened after SIGHUP"
        time.sleep(0.05)
    with kp.Conn(d.addr) as c:
        peer = c.local_addr
        assert c.call(kp.OP_PING, b"x").body == b"x"
    assert_clean_stop(d, log_file=logf)
    assert f"event=conn_accepted peer={peer}" in logf.read_text()
    assert "event=stopped" not in rotated.read_text()
    assert "event=ready" in rotated.read_text()


def test_port_in_use_fails_fast(ks_build, daemons):
    d = echod(daemons)
    port = d.ready_port
    p = subprocess.run([str(bin_path("ks-echod")), f"--rpc.listen=127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert re.search(rf"event=listen_failed addr=127\.0\.0\.1:{port} err=EADDRINUSE",
                     p.stderr), p.stderr
    assert "event=ready" not in p.stderr
    assert_serving(d)
    assert_clean_stop(d)


# --- the Python client (ksproto) ------------------------------------------------


def test_ksproto_ping_source_sink_unknown(ks_build, daemons):
    d = echod(daemons)
    with kp.Conn(d.addr) as c:
        # PING echoes body and bulk exactly (bulk > 64 KiB: direct reads).
        body = b"body \x00\xff" + bytes(range(256))
        bulk = pattern_bytes(200_000, 5)
        r = c.call(kp.OP_PING, body, bulk, timeout_ms=1234)
        assert (r.kind, r.opcode, r.status) == (kp.RESPONSE, kp.OP_PING, 0)
        assert r.body == body and r.bulk == bulk
        # Empty, body only, bulk only.
        assert (c.call(kp.OP_PING).body, c.call(kp.OP_PING).bulk) == (b"", b"")
        r = c.call(kp.OP_PING, b"only body")
        assert (r.body, r.bulk) == (b"only body", b"")
        r = c.call(kp.OP_PING, b"", b"only bulk")
        assert (r.body, r.bulk) == (b"", b"only bulk")

        # SOURCE returns n zero bytes; a malformed argument is -EINVAL.
        for n in (0, 1, 4096, 100_000):
            r = c.call(kp.OP_SOURCE, struct.pack("<Q", n))
            assert r.status == 0 and r.body == b""
            assert r.bulk == bytes(n)
        r = c.call(kp.OP_SOURCE, b"\x01\x02\x03")
        assert r.status == -22 and r.bulk == b""  # -EINVAL
        r = c.call(kp.OP_SOURCE, struct.pack("<Q", 1 << 40))
        assert r.status_name == "KS_ETOOBIG"

        # SINK consumes the bulk and replies empty.
        r = c.call(kp.OP_SINK, b"", pattern_bytes(70_000, 9))
        assert (r.status, r.body, r.bulk) == (0, b"", b"")

        # An unknown opcode is answered (the frame was valid), not dropped.
        for op in (0, 0x7777, 0xFFFF):
            r = c.call(op, b"args", b"data")
            assert r.status == kp.ERR["KS_ENOHANDLER"] == -1009
            assert (r.body, r.bulk, r.opcode) == (b"", b"", op)
        # ... and the connection stays usable.
        assert c.call(kp.OP_PING, b"after").body == b"after"

        # A frame dribbled in one byte at a time is reassembled.
        frame = kp.encode_request(kp.OP_PING, 77, b"slow", b"bytes")
        for i in range(len(frame)):
            c.send_raw(frame[i:i + 1])
        r = c.recv()
        assert (r.id, r.body, r.bulk) == (77, b"slow", b"bytes")
    assert "conn_dropped" not in d.log_text(since_start=True)
    assert_clean_stop(d)


def test_ksproto_pipelined_matched_by_id(ks_build, daemons):
    # max_inflight 4: the server stops reading while 4 are unanswered, so
    # this also drives its backpressure path.
    d = echod(daemons, rpc={"max_inflight": 4})
    rng = random.Random(1)
    ids = [0, 1, 2**64 - 1, 2**63] + rng.sample(range(3, 2**62), 196)
    rng.shuffle(ids)
    sent = {}
    batch = bytearray()
    for i, rid in enumerate(ids):
        body = f"req-{i}-{rid}".encode()
        bulk = pattern_bytes(rng.choice([0, 1, 100, 5000, 70_000]) if i % 10 == 0
                             else rng.choice([0, 1, 17, 300]), i)
        op = kp.OP_PING if i % 7 else 0x4242  # some unknown opcodes mixed in
        sent[rid] = (op, body, bulk)
        batch += kp.encode_request(op, rid, body, bulk)
    # A stalled connection (half a header) must not hold up anyone else.
    stalled = socket.create_connection(d.addr, timeout=5)
    stalled.sendall(kp.encode_request(kp.OP_PING, 1)[:20])
    with kp.Conn(d.addr, timeout=20) as c:
        c.send_raw(bytes(batch))  # all of them in one write
        got = {}
        for _ in ids:
            r = c.recv()
            assert r.kind == kp.RESPONSE
            assert r.id in sent, f"response for unknown id {r.id}"
            assert r.id not in got, f"two responses for id {r.id}"
            got[r.id] = r
        assert set(got) == set(sent)
        for rid, (op, body, bulk) in sent.items():
            r = got[rid]
            assert r.opcode == op
            if op == kp.OP_PING:
                assert (r.status, r.body, r.bulk) == (0, body, bulk), rid
            else:
                assert (r.status, r.body, r.bulk) == (-1009, b"", b""), rid
    stalled.close()
    assert_clean_stop(d)


# --- malformed frames -----------------------------------------------------------

_GOOD_HDR = dict(kind=kp.REQUEST, opcode=kp.OP_PING, id=9)


def _bad_hdr_crc() -> bytes:
    h = bytearray(kp.encode_header(**_GOOD_HDR))
    h[44] ^= 0x01
    return bytes(h)


def _hdr_bit_flip() -> bytes:
    h = bytearray(kp.encode_header(**_GOOD_HDR))
    h[10] ^= 0x01  # the id changed, the crc did not
    return bytes(h)


# id: (bytes to send, err name logged or None for a plain close,
#      whether the client closes after sending, responses expected first)
MALFORMED = {
    "garbage": (bytes(random.Random(7).randrange(256) for _ in range(200)),
                "KS_EBADMAGIC", False, 0),
    "http_request": (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl\r\n\r\n",
                     "KS_EBADMAGIC", False, 0),
    # Foreign traffic is refused as soon as the 4 magic bytes are in.
    "magic_only": (b"SSH-", "KS_EBADMAGIC", False, 0),
    "bad_header_crc": (_bad_hdr_crc(), "KS_EBADCRC", False, 0),
    "header_bit_flip": (_hdr_bit_flip(), "KS_EBADCRC", False, 0),
    "bad_version": (kp.encode_header(**_GOOD_HDR, version=2), "KS_EBADVERSION", False, 0),
    "bad_kind": (kp.encode_header(**dict(_GOOD_HDR, kind=3)), "KS_EPROTO", False, 0),
    "body_too_big": (kp.encode_header(**_GOOD_HDR, body_len=(1 << 20) + 1),
                     "KS_ETOOBIG", False, 0),
    "bulk_too_big": (kp.encode_header(**_GOOD_HDR, bulk_len=(1 << 20) + 1),
                     "KS_ETOOBIG", False, 0),
    "bulk_len_2e64": (kp.encode_header(**_GOOD_HDR, bulk_len=2**64 - 1),
                      "KS_ETOOBIG", False, 0),
    "bad_body_crc": (kp.encode_frame(kp.OP_PING, 9, b"hello", b"",
                                     body_crc=kp.crc32c(b"hellp")),
                     "KS_EBADCRC", False, 0),
    "bad_bulk_crc": (kp.encode_frame(kp.OP_PING, 9, b"", pattern_bytes(70_000, 1),
                                     bulk_crc=0xDEADBEEF),
                     "KS_EBADCRC", False, 0),
    "response_to_server": (kp.encode_frame(kp.OP_PING, 9, b"x", kind=kp.RESPONSE),
                           "KS_EPROTO", False, 0),
    # A good frame, then junk in the same write: the good one is answered,
    # then the connection is dropped.
    "good_then_garbage": (kp.encode_request(kp.OP_PING, 5, b"ok") + b"JUNKJUNK" * 8,
                          "KS_EBADMAGIC", False, 1),
    # Truncated then closed by the client: an ordinary close (EOF), logged
    # at debug as conn_closed, not as a dropped malformed connection.
    "truncated_header_then_close": (kp.encode_header(**_GOOD_HDR)[:30], None, True, 0),
    "truncated_body_then_close": (kp.encode_frame(kp.OP_PING, 9, b"x" * 100)[:60],
                                  None, True, 0),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_frame_drops_only_that_connection(ks_build, daemons, case):
    data, err, client_closes, nresp = MALFORMED[case]
    d = echod(daemons, rpc={"max_bulk": "1MiB"})
    good = kp.Conn(d.addr)
    assert good.call(kp.OP_PING, b"before").body == b"before"

    bad = kp.Conn(d.addr)
    peer = bad.local_addr
    bad.send_raw(data)
    for _ in range(nresp):
        r = bad.recv()
        assert (r.kind, r.status) == (kp.RESPONSE, 0)
    if client_closes:
        bad.close()
        d.wait_log(rf"event=conn_closed role=server peer={re.escape(peer)} "
                   r"reason=KS_ECLOSED\b", timeout=10)
    else:
        # The server closes it, without a reply.
        extra = kp.wait_closed(bad.sock, timeout=10)
        assert extra == b"", f"server sent {extra[:64]!r} before closing"
        bad.close()
        m = d.wait_log(rf"level=warn comp=rpc event=conn_dropped role=server "
                       rf"peer={re.escape(peer)} err=(\S+)", timeout=10)
        assert m.group(1) == err, m.group(0)

    log = d.log_text(since_start=True)
    if err is None:
        assert f"conn_dropped role=server peer={peer}" not in log
    assert_serving(d, good)
    good.close()
    assert count(d, r"event=conn_dropped") == (0 if err is None else 1)
    assert_clean_stop(d)


def test_many_malformed_connections_one_daemon(ks_build, daemons):
    """All the malformed inputs in a row against one daemon, interleaved
    with good traffic: it survives them all and counts each drop once."""
    d = echod(daemons, rpc={"max_bulk": "1MiB"})
    good = kp.Conn(d.addr)
    expected = 0
    for _round in range(3):
        for case, (data, err, client_closes, nresp) in MALFORMED.items():
            bad = kp.Conn(d.addr)
            bad.send_raw(data)
            for _ in range(nresp):
                assert bad.recv().status == 0
            if not client_closes:
                assert kp.wait_closed(bad.sock, timeout=10) == b"", case
                expected += 1
            bad.close()
            assert good.call(kp.OP_PING, case.encode()).body == case.encode()
    deadline = time.monotonic() + 10
    while count(d, r"event=conn_dropped") < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(d, r"event=conn_dropped") == expected
    assert_serving(d, good)
    rc, s, p = ping(d.ready_port, "--count=500", "--concurrency=16", "--size=1KiB")
    assert rc == 0, p.stdout + p.stderr
    good.close()
    assert_clean_stop(d)


# --- TLS ------------------------------------------------------------------------


@pytest.fixture
def tls_echod(ks_build, daemons):
    c = certs(ks_build)
    d = echod(daemons, rpc={"tls": {"enabled": True, "ca": str(c / "ca.pem"),
                                    "cert": str(c / "server.pem"),
                                    "key": str(c / "server.key")}})
    assert "tls=yes" in d.log_text(since_start=True)
    d.certs = c
    return d


def test_tls_good_client(tls_echod):
    d, c = tls_echod, tls_echod.certs
    for extra in ([], ["--tls.server_name=127.0.0.1"], ["--tls.server_name=localhost"]):
        rc, s, p = ping(d.ready_port, "--count=300", "--concurrency=16",
                        "--size=64KiB", *tls_args(c), *extra)
        assert rc == 0, p.stdout + p.stderr
        assert s["ok"] == "300" and s["mismatched"] == "0"
    d.wait_log(r"event=tls_established peer=\S+ version=TLSv1\.3", timeout=10)
    assert count(d, r"event=tls_(peer_refused|failed)") == 0
    assert_clean_stop(d)


def test_tls_rogue_client_cert_refused(tls_echod):
    d, c = tls_echod, tls_echod.certs
    before = count(d, r"event=(tls_peer_refused|tls_failed)")
    rc, s, p = ping(d.ready_port, "--count=3", "--timeout=30s",
                    *tls_args(c, ca="ca", who="rogue"))
    assert rc == 1, p.stdout + p.stderr
    assert (s["ok"], s["failed"], s["first_error"]) == ("0", "3", "KS_ETLS")
    d.wait_log(r"event=tls_peer_refused peer=\S+ reason=", timeout=10)
    assert count(d, r"event=(tls_peer_refused|tls_failed)") > before
    d.wait_log(r"event=conn_dropped role=server peer=\S+ err=KS_ETLS", timeout=10)
    rc, s, p = ping(d.ready_port, "--count=50", *tls_args(c))
    assert rc == 0, p.stdout + p.stderr
    assert_clean_stop(d)


def test_tls_client_refuses_unknown_server(tls_echod):
    d, c = tls_echod, tls_echod.certs
    # Our client certificate is fine, but we trust only the rogue CA.
    rc, s, p = ping(d.ready_port, "--count=3", "--timeout=30s",
                    *tls_args(c, ca="rogue-ca", who="client"))
    assert rc == 1, p.stdout + p.stderr
    assert (s["ok"], s["first_error"]) == ("0", "KS_ETLS")
    # The client logs why (ks-rpc-ping logs warnings to stderr).
    assert "tls_peer_refused" in p.stderr, p.stderr
    # A wrong expected server name is refused too.
    rc, s, p = ping(d.ready_port, "--count=2", "--tls.server_name=node9.example",
                    *tls_args(c))
    assert rc == 1 and s["first_error"] == "KS_ETLS", p.stdout + p.stderr
    assert "hostname mismatch" in p.stderr
    rc, s, p = ping(d.ready_port, "--count=50", *tls_args(c))
    assert rc == 0, p.stdout + p.stderr
    assert_clean_stop(d)


def test_tls_plaintext_client_dropped(tls_echod):
    d, c = tls_echod, tls_echod.certs
    with kp.Conn(d.addr) as plain:
        peer = plain.local_addr
        plain.send_raw(kp.encode_request(kp.OP_PING, 1, b"clear", b"text"))
        assert kp.wait_closed(plain.sock, timeout=10) == b""
    d.wait_log(rf"event=tls_failed peer={re.escape(peer)} ", timeout=10)
    d.wait_log(rf"event=conn_dropped role=server peer={re.escape(peer)} err=KS_ETLS",
               timeout=10)
    # The C client without TLS fails too, and does not hang.
    rc, s, p = ping(d.ready_port, "--count=3", "--timeout=30s")
    assert rc == 1 and s["ok"] == "0", p.stdout + p.stderr
    rc, s, p = ping(d.ready_port, "--count=200", "--concurrency=8", "--size=4KiB",
                    *tls_args(c))
    assert rc == 0, p.stdout + p.stderr
    assert_clean_stop(d)


# --- peer crash -----------------------------------------------------------------


def _rchar(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/PID/io")


def test_peer_crash_mid_series_then_restart(ks_build, daemons):
    d = echod(daemons)
    port = d.ready_port
    total = 2_000_000  # far more than can finish before the kill
    argv = [str(bin_path("ks-rpc-ping")), f"--addr=127.0.0.1:{port}",
            f"--count={total}", "--concurrency=16", "--size=4KiB", "--timeout=60s"]
    base = _rchar(d.pid)
    # Default signal dispositions (restore_signals): the RPC layer itself
    # must keep a vanished peer from killing the client with SIGPIPE.
    pinger = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        # Wait for real progress: the daemon has read >= 2 MiB of requests.
        # With 16 in flight that means hundreds of calls already succeeded.
        deadline = time.monotonic() + 20
        while _rchar(d.pid) - base < (2 << 20):
            assert pinger.poll() is None, "ks-rpc-ping ended before the crash"
            assert time.monotonic() < deadline, "ks-rpc-ping made no progress"
            time.sleep(0.01)
        assert d.kill9() == -signal.SIGKILL
        out, err = pinger.communicate(timeout=PING_TIMEOUT_S)
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait()
    s = parse_summary(out)
    assert pinger.returncode == 1, out + err
    ok, failed = int(s["ok"]), int(s["failed"])
    assert s["mismatched"] == "0"
    assert ok + failed == total
    assert ok > 0 and failed > 0
    # The calls on the wire fail as "connection closed", the rest fast as
    # refused connects: no timeouts.
    assert s["first_error"] in ("KS_ECLOSED", "ECONNRESET", "EPIPE"), out
    assert "KS_ETIMEDOUT" not in err

    # Dead peer: a new client fails fast too.
    rc, s, p = ping(port, "--count=100", "--concurrency=10", "--timeout=30s")
    assert rc == 1 and s["failed"] == "100", p.stdout + p.stderr
    assert s["first_error"] == "ECONNREFUSED"

    # Same port, new process: served again.
    d.start()
    rc, s, p = ping(port, "--count=2000", "--concurrency=32", "--size=16KiB")
    assert rc == 0, p.stdout + p.stderr
    assert_serving(d)
    assert_clean_stop(d)


def test_client_vanishes_mid_reply(ks_build, daemons):
    """A client asks for 16 x 16 MiB and resets the connection at once: the
    daemon's writes fail (no SIGPIPE death), the replies are dropped, and it
    keeps serving."""
    d = echod(daemons)
    for _ in range(3):
        c = kp.Conn(d.addr)
        peer = c.local_addr
        assert c.call(kp.OP_PING).status == 0  # accepted, peer known
        for _ in range(16):
            c.send(kp.OP_SOURCE, struct.pack("<Q", 16 << 20))
        # The daemon is writing the replies: wait for their first bytes.
        assert len(c.sock.recv(kp.HDR_SIZE, socket.MSG_WAITALL)) == kp.HDR_SIZE
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST
        d.wait_log(rf"role=server peer={re.escape(peer)} (reason|err)=", timeout=10)
    assert_serving(d)
    assert_clean_stop(d)


# --- ks-rpc-ping against a server written with ksproto ---------------------------


class OneConnServer:
    """A server for exactly one connection, written with ksproto on a thread:
    it reads requests in batches of `batch`, answers each batch in reverse
    order (so the client must match responses by id), and records every
    request.  `respond(frame) -> bytes` builds a response frame."""

    def __init__(self, batch: int, total: int, respond, close_after: bool = False):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.batch, self.total, self.respond = batch, total, respond
        self.close_after = close_after
        self.requests: list[kp.Frame] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            s, _ = self.ls.accept()
            self.ls.close()  # later connects are refused
            s.settimeout(20)
            with s:
                while len(self.requests) < self.total:
                    got = [kp.read_frame(s) for _ in range(self.batch)]
                    self.requests += got
                    if self.close_after:
                        # Answer and close as one event: the client sees the
                        # data and the FIN together, and its next writes hit
                        # a closed socket (RST, then EPIPE).
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                    s.sendall(b"".join(self.respond(f) for f in reversed(got)))
                    if self.close_after:
                        return
                try:  # the client closes once it has all its answers
                    kp.wait_closed(s, timeout=20)
                except socket.timeout:
                    pass
        except BaseException as e:  # reported by join()
            self.error = e
        finally:
            self.ls.close()

    def join(self) -> None:
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "ksproto server thread stuck"
        if self.error is not None:
            raise self.error


def echo_response(f: kp.Frame) -> bytes:
    return kp.encode_frame(f.opcode, f.id, f.body, f.bulk, kind=kp.RESPONSE)


@pytest.mark.parametrize("mode", ["echo", "one_wrong_byte"])
def test_c_client_against_python_server(ks_build, mode):
    """The other direction of the wire pin: ks-rpc-ping's frames decode in
    ksproto, and ksproto's responses (answered out of order) satisfy it.
    A response whose bulk differs by one byte (valid crcs) must be counted
    as mismatched."""
    size, n, conc = 1000, 48, 4
    wrong = {}

    def respond(f: kp.Frame) -> bytes:
        if mode == "one_wrong_byte" and not wrong and len(srv.requests) > 20:
            wrong[f.id] = True
            bad = bytearray(f.bulk)
            bad[500] ^= 0xFF
            return kp.encode_frame(f.opcode, f.id, f.body, bytes(bad), kind=kp.RESPONSE)
        return echo_response(f)

    srv = OneConnServer(conc, n, respond)
    rc, s, p = ping(srv.port, f"--count={n}", f"--concurrency={conc}", f"--size={size}",
                    "--timeout=7s", timeout=30)
    srv.join()
    want = bytes((i * 7 + 3) & 0xFF for i in range(size))  # ks-rpc-ping's payload
    assert len(srv.requests) == n
    ids = [f.id for f in srv.requests]
    assert len(set(ids)) == n and 0 not in ids
    for f in srv.requests:
        assert (f.kind, f.opcode, f.status, f.timeout_ms) == (kp.REQUEST, kp.OP_PING, 0, 7000)
        assert f.body == b"" and f.bulk == want
    if mode == "echo":
        assert rc == 0, p.stdout + p.stderr
        assert (s["ok"], s["mismatched"]) == (str(n), "0")
    else:
        assert rc == 1, p.stdout + p.stderr
        assert (s["ok"], s["failed"], s["mismatched"]) == (str(n - 1), "0", "1")


def test_ping_survives_peer_close_without_sigpipe(ks_build):
    """The peer answers the first 8 calls and closes: the next writes of the
    client hit a closed socket.  Calls must fail (exit 1), not the process."""
    for _ in range(3):
        srv = OneConnServer(8, 8, echo_response, close_after=True)
        rc, s, p = ping(srv.port, "--count=100", "--concurrency=8", timeout=30)
        srv.join()
        assert rc == 1, f"exit {rc}: {p.stdout}{p.stderr}"
        assert (s["ok"], s["failed"], s["mismatched"]) == ("8", "92", "0")
