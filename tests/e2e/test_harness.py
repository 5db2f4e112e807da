"""Self-tests of the end-to-end harness (ksharness.py and conftest.py).

They drive /usr/bin/python3 (http.server and tiny inline programs) through
Daemon's argv escape hatch, so they need no Kiseki binary and run in CI
before any daemon exists.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from ksharness import Daemon, DaemonError, DaemonSet, bin_path, free_port

PY = sys.executable or "/usr/bin/python3"
HERE = Path(__file__).resolve().parent


def http_server(port: int) -> list[str]:
    # -u: unbuffered, so "Serving HTTP ..." reaches the log file at once.
    return [PY, "-u", "-m", "http.server", "--bind", "127.0.0.1", str(port),
            "--directory", "{workdir}"]


def py(code: str, *args: str) -> list[str]:
    return [PY, "-u", "-c", textwrap.dedent(code), *args]


# A daemon that exits 0 on SIGTERM, like a well-behaved Kiseki daemon.
CLEAN = """
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *a: (print("shutting down"), sys.exit(0)))
    print("ready", flush=True)
    while True:
        time.sleep(1)
"""


def get(port: int, path: str = "/") -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status


def test_free_port_unique():
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(1024 <= p <= 65535 for p in ports)
    # Another loopback address is a separate port space.
    assert free_port("127.0.0.2") > 0


def test_start_ready_port_stop_and_log(daemons):
    port = free_port()
    d = daemons("web", argv=http_server(port), ready_port=port)
    assert d.running and d.pid > 0
    assert d.addr == ("127.0.0.1", port)
    assert get(port) == 200
    d.wait_log(r'"GET / HTTP/1\.1" 200', timeout=5)
    assert "Serving HTTP on 127.0.0.1 port" in d.log_text()
    # http.server does not catch SIGTERM: it dies of the signal, in time.
    assert d.stop() == -signal.SIGTERM
    assert not d.stop_forced and not d.running
    assert d.log_path == d.workdir / "web.log" and d.log_path.is_file()


def test_ready_log_and_clean_exit(daemons):
    d = daemons("clean", argv=py(CLEAN), ready_log=r"^ready$")
    assert d.stop() == 0
    assert "shutting down" in d.log_text()


def test_ready_port_and_log_together(daemons):
    port = free_port()
    d = daemons("both", argv=http_server(port), ready_port=port,
                ready_log=rf"Serving HTTP on 127\.0\.0\.1 port {port}")
    assert get(port) == 200


def test_config_written_and_substituted(daemons, tmp_path):
    prog = """
        import json, sys
        cfg = json.load(open(sys.argv[1]))
        print("value", cfg["section"]["value"], flush=True)
        import time; time.sleep(60)
    """
    d = daemons("cfg", {"section": {"value": 42}}, argv=py(prog, "{config}"),
                ready_log=r"value 42")
    assert d.config_path == tmp_path / "cfg.json"
    assert json.loads(d.config_path.read_text()) == {"section": {"value": 42}}


def test_exit_before_ready_fails_fast(daemons):
    t0 = time.monotonic()
    with pytest.raises(DaemonError) as e:
        daemons("boom", argv=py("import sys; print('bad config: no port'); sys.exit(3)"),
                ready_port=free_port(), ready_timeout=30)
    assert time.monotonic() - t0 < 10
    msg = str(e.value)
    assert "status 3" in msg and "bad config: no port" in msg
    assert daemons["boom"].returncode == 3


def test_never_ready_times_out_and_is_killed(daemons):
    port = free_port()  # nobody listens here
    with pytest.raises(DaemonError, match="not ready after 1s"):
        daemons("mute", argv=py("import time; time.sleep(60)"),
                ready_port=port, ready_timeout=1)
    assert not daemons["mute"].running


def test_kill9_and_restart_keep_data_and_log(daemons):
    port = free_port()
    d = daemons("web", argv=http_server(port), ready_port=port)
    (d.workdir / "hello.txt").write_text("hi")
    first_pid = d.pid
    assert d.kill9() == -signal.SIGKILL
    assert not d.running
    d.restart()
    assert d.running and d.pid != first_pid
    assert get(port, "/hello.txt") == 200
    d.restart()  # via stop(): SIGTERM
    assert get(port) == 200
    assert d.starts == 3
    log = d.log_text()
    assert log.count("=== ksharness: start #") == 3
    assert "killed with SIGKILL by the test" in log
    assert "Serving HTTP" in d.log_text(since_start=True)
    assert "killed with SIGKILL" not in d.log_text(since_start=True)


def test_stop_forces_sigkill_when_sigterm_ignored(daemons):
    prog = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """
    d = daemons("stubborn", argv=py(prog), ready_log="ready", stop_timeout=1)
    t0 = time.monotonic()
    assert d.stop() == -signal.SIGKILL
    assert d.stop_forced
    assert 1 <= time.monotonic() - t0 < 5
    assert "sending SIGKILL" in d.log_text()


def test_stop_kills_children_of_the_group(daemons):
    prog = """
        import subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        print("child", child.pid, flush=True)
        time.sleep(60)
    """
    d = daemons("parent", argv=py(prog), ready_log=r"child \d+")
    child = int(d.wait_log(r"child (\d+)").group(1))
    d.stop()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child {child} of the daemon survived stop()")


def test_daemonset_reports_deaths_and_hangs(tmp_path):
    ds = DaemonSet(tmp_path)
    crash = ds("crash", argv=py("""
        import time
        print("ready", flush=True)
        time.sleep(0.2)
        raise SystemExit(7)
    """), ready_log="ready")
    ds("hang", argv=py("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """), ready_log="ready", stop_timeout=0.5)
    fine = ds("fine", argv=py(CLEAN), ready_log="ready")
    assert crash.wait_exit(5) == 7
    crash.expected_exit = False  # as if the test had not waited for it
    problems = ds.stop_all()
    assert len(problems) == 2, problems
    assert "crash died during the test (status 7)" in problems[1]
    assert "hang ignored SIGTERM" in problems[0]
    assert fine.returncode == 0
    report = ds.report()
    assert "----- crash:" in report and "----- fine:" in report


def test_binary_lookup_in_ks_build(tmp_path, monkeypatch):
    monkeypatch.delenv("KS_BUILD", raising=False)
    with pytest.raises(DaemonError, match="KS_BUILD is not set"):
        Daemon("ks-fake", {}, workdir=tmp_path).start()

    build = tmp_path / "build"
    (build / "bin").mkdir(parents=True)
    monkeypatch.setenv("KS_BUILD", str(build))
    with pytest.raises(DaemonError, match="no such executable"):
        bin_path("ks-fake")

    fake = build / "bin" / "ks-fake"
    fake.write_text(f"#!{PY}\n" + textwrap.dedent("""
        import json, sys, time
        assert sys.argv[1] == "--config", sys.argv
        print("args", sys.argv[3:], json.load(open(sys.argv[2])), flush=True)
        time.sleep(60)
    """))
    fake.chmod(0o755)
    d = Daemon("ks-fake", {"k": "v"}, ["--verbose"], workdir=tmp_path / "run",
               ready_log=r"args \['--verbose'\] \{'k': 'v'\}")
    try:
        d.start()
        assert d.argv() == [str(fake), "--config", str(d.config_path), "--verbose"]
    finally:
        d.stop()


def test_ks_build_fixture_message(tmp_path):
    """The ks_build fixture fails clearly without KS_BUILD, and the daemons
    fixture prints every daemon's log when a test fails (run in a child
    pytest, since both outcomes are failures)."""
    for f in ("conftest.py", "ksharness.py"):
        shutil.copy(HERE / f, tmp_path / f)
    (tmp_path / "test_child.py").write_text(textwrap.dedent(f"""
        import sys
        from ksharness import free_port

        def test_needs_build(ks_build):
            pass

        def test_fails_with_daemon(daemons):
            daemons("talker", argv=[{PY!r}, "-u", "-c",
                    "import time; print('MARKER-FROM-DAEMON'); time.sleep(60)"],
                    ready_log="MARKER")
            assert False, "deliberate"

        def test_passes_quietly(daemons):
            daemons("quiet", argv=[{PY!r}, "-u", "-c",
                    "import time; print('QUIET-MARKER'); time.sleep(60)"],
                    ready_log="QUIET")
    """))
    env = {k: v for k, v in os.environ.items() if k != "KS_BUILD"}
    r = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), str(tmp_path)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "1 failed, 1 passed, 1 error" in out, out
    assert "KS_BUILD is not set" in out, out
    assert "daemon logs of" in out and "MARKER-FROM-DAEMON" in out, out
    assert "QUIET-MARKER" not in out, out
