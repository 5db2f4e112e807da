"""ksharness: start, watch and stop real Kiseki daemons for end-to-end tests.

The harness knows nothing about Kiseki's cluster layout: it runs processes.
A test (or a fixture of a later issue) builds a single-node or multi-node
cluster out of `Daemon`s, each one a binary from $KS_BUILD/bin with its own
JSON config file and log file in the test's temporary directory.

    port = free_port()
    d = Daemon("ks-echod", {"listen": f"127.0.0.1:{port}"},
               workdir=tmp_path, ready_port=port)
    d.start()            # returns once the port accepts connections
    ...
    assert d.stop() == 0 # SIGTERM, then a clean exit within 10 s

Lifecycle and guarantees:
  - start() fails fast (DaemonError with the log tail) if the process exits
    before it is ready, and after `ready_timeout` seconds if it never is.
  - Readiness is a TCP port accepting connections (`ready_port`), a regular
    expression matching a line the daemon logged since this start
    (`ready_log`), or both (then both must hold).
  - stdout and stderr go to <workdir>/<name>.log.  Every start appends a
    marker line, so a restarted daemon's whole history stays in one file.
  - stop() sends SIGTERM and waits `stop_timeout` (10 s); past it the
    process group gets SIGKILL and `stop_forced` is set.  The exit status
    is `returncode` (negative: killed by that signal).
  - Daemons run in their own session (process group), so a Ctrl-C of pytest
    does not reach them half-way; the `daemons` fixture and an atexit hook
    stop whatever is left.

Only the standard library is used: Debian's /usr/bin/python3 runs the tests.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Mapping, Sequence

__all__ = [
    "DaemonError",
    "Daemon",
    "DaemonSet",
    "build_dir",
    "bin_path",
    "free_port",
]

STOP_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 30.0
_POLL_S = 0.05
_LOG_TAIL_LINES = 40


class DaemonError(Exception):
    """A daemon failed to start, to become ready, or could not be found."""


# --- build directory and ports ---------------------------------------------


def build_dir() -> Path:
    """The build directory named by $KS_BUILD (absolute); raises DaemonError
    with instructions when it is unset or does not exist."""
    value = os.environ.get("KS_BUILD")
    if not value:
        raise DaemonError(
            "KS_BUILD is not set: run the end-to-end tests with `make test-e2e`"
            " or `KS_BUILD=$PWD/build /usr/bin/python3 -m pytest tests/e2e`")
    path = Path(value).resolve()
    if not path.is_dir():
        raise DaemonError(f"KS_BUILD={value}: no such directory (run `make build`)")
    return path


def bin_path(binary: str) -> Path:
    """Absolute path of $KS_BUILD/bin/<binary>; DaemonError if it is missing."""
    path = build_dir() / "bin" / binary
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise DaemonError(
            f"{path}: no such executable (is it built? run `make build`)")
    return path


_ports_lock = threading.Lock()
_ports_given: set[tuple[str, int]] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that is free now and that this process has not
    handed out before.

    The kernel picks it (bind to port 0); the port is released at once, so
    another program could still take it before the daemon binds it, but two
    daemons of one test run never get the same port.  For multi-node tests
    on one machine any 127.0.0.x address works as `host`.
    """
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _ports_lock:
            if (host, port) not in _ports_given:
                _ports_given.add((host, port))
                return port
    raise DaemonError(f"no free port on {host} after 1000 tries")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.25):
            return True
    except OSError:
        return False


# --- one daemon ------------------------------------------------------------

_live: "weakref.WeakSet[Daemon]" = weakref.WeakSet()

# The section of the node file (DESIGN §11) each Kiseki daemon reads.
NODE_SECTIONS = {"kiseki-meta": "meta", "kiseki-chunkd": "chunkd",
                 "kiseki-s3d": "s3d"}


class Daemon:
    """One daemon process.  Nothing runs until start().

    name          label of the daemon, and by default the binary looked up
                  in $KS_BUILD/bin; also names <workdir>/<name>.json and
                  <workdir>/<name>.log, so it must be unique per workdir
                  (e.g. "ks-meta-1", binary="kiseki-meta")
    config        dict written as JSON to <workdir>/<name>.json before each
                  start and passed as `--config PATH`; None: no config.
                  For Kiseki's daemons (NODE_SECTIONS) it is the daemon's
                  section: the file is a node file {section: config}
    args          extra arguments after `--config PATH`
    workdir       directory for config, log and `data_dir` (created)
    binary        binary name in $KS_BUILD/bin when it differs from name
    argv          escape hatch: the complete command line, run as is (no
                  lookup, no --config); "{config}", "{workdir}", "{name}"
                  and "{data_dir}" in its items are replaced
    ready_port    TCP port that accepts connections once the daemon is ready
    ready_host    host of ready_port (default 127.0.0.1)
    ready_log     regular expression (str or compiled) that a log line
                  written since this start must match once it is ready
    ready_timeout seconds start() waits for readiness
    stop_timeout  seconds stop() waits after SIGTERM before SIGKILL
    env           extra environment variables (added to os.environ)
    """

    def __init__(
        self,
        name: str,
        config: Mapping | None = None,
        args: Sequence[str] = (),
        *,
        workdir: os.PathLike | str,
        binary: str | None = None,
        argv: Sequence[str] | None = None,
        ready_port: int | None = None,
        ready_host: str = "127.0.0.1",
        ready_log: str | re.Pattern | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
    ):
        if not name or "/" in name:
            raise ValueError(f"bad daemon name {name!r}")
        self.name = name
        self.config = dict(config) if config is not None else None
        self.args = list(args)
        self.workdir = Path(workdir).resolve()
        self.binary = binary or name
        self.argv_template = list(argv) if argv is not None else None
        self.ready_port = ready_port
        self.ready_host = ready_host
        self.ready_log = re.compile(ready_log) if isinstance(ready_log, str) else ready_log
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.env = dict(env or {})

        self.config_path = self.workdir / f"{name}.json"
        self.log_path = self.workdir / f"{name}.log"
        # A directory a test can point the daemon's data at; it survives
        # restarts (that is what restart tests are about).
        self.data_dir = self.workdir / f"{name}.data"

        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.stop_forced = False       # stop() had to SIGKILL
        self.expected_exit = True      # False while running: a death is news
        self.starts = 0
        self._log_offset = 0           # where this start's output begins

    # -- inspection --

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def addr(self) -> tuple[str, int]:
        if self.ready_port is None:
            raise DaemonError(f"{self.name}: no ready_port, so no address")
        return (self.ready_host, self.ready_port)

    def argv(self) -> list[str]:
        """The command line start() runs."""
        if self.argv_template is not None:
            subst = {"config": str(self.config_path), "workdir": str(self.workdir),
                     "name": self.name, "data_dir": str(self.data_dir)}
            out = []
            for a in self.argv_template:
                for k, v in subst.items():
                    a = a.replace("{" + k + "}", v)
                out.append(a)
            return out
        argv = [str(bin_path(self.binary))]
        if self.config is not None:
            argv += ["--config", str(self.config_path)]
        return argv + self.args

    def log_text(self, since_start: bool = False) -> str:
        """Everything the daemon wrote (all starts), or only since the
        latest start."""
        try:
            with open(self.log_path, "rb") as f:
                if since_start:
                    f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __repr__(self) -> str:
        state = (f"pid {self.pid}" if self.running
                 else f"exit {self.returncode}" if self.proc else "not started")
        return f"<Daemon {self.name} {state}>"

    # -- lifecycle --

    def start(self) -> "Daemon":
        """Launch and wait until ready.  Returns self."""
        if self.running:
            raise DaemonError(f"{self.name}: already running (pid {self.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.config is not None:
            tmp = self.config_path.with_suffix(".json.tmp")
            section = NODE_SECTIONS.get(self.binary)
            doc = {section: self.config} if section else self.config
            tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.config_path)
        argv = self.argv()
        env = dict(os.environ)
        env.update(self.env)

        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"=== ksharness: start #{self.starts} at "
                      f"{time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.returncode = None
            self.stop_forced = False
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=env, start_new_session=True)
        self.expected_exit = False
        _live.add(self)
        try:
            self._wait_ready()
        except BaseException:
            # Leave nothing behind: a half-started daemon would hold ports.
            if self.running:
                self._kill_group(signal.SIGKILL)
                self.proc.wait()
            self._reap()
            self.expected_exit = True
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._reap()
                raise DaemonError(
                    f"{self.name} exited with status {rc} before it was ready\n"
                    f"--- last lines of {self.log_path}:\n{self.log_tail()}")
            port_ok = self.ready_port is None or _port_open(self.ready_host, self.ready_port)
            log_ok = (self.ready_log is None
                      or self.ready_log.search(self.log_text(since_start=True)) is not None)
            if port_ok and log_ok:
                return
            if time.monotonic() > deadline:
                want = []
                if self.ready_port is not None:
                    want.append(f"port {self.ready_host}:{self.ready_port} "
                                + ("open" if port_ok else "not accepting"))
                if self.ready_log is not None:
                    want.append(f"log /{self.ready_log.pattern}/ "
                                + ("seen" if log_ok else "not seen"))
                raise DaemonError(
                    f"{self.name} (pid {self.pid}) not ready after "
                    f"{self.ready_timeout:g}s: {', '.join(want) or 'no readiness condition'}\n"
                    f"--- last lines of {self.log_path}:\n{self.log_tail()}")
            time.sleep(_POLL_S)

    def _kill_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.returncode = self.proc.returncode

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, wait up to `timeout` (default stop_timeout), then SIGKILL
        the process group.  Returns the exit status (0 for a clean
        shutdown; None if never started).  Safe to call when not running."""
        if self.proc is None:
            return None
        self.expected_exit = True
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.stop_forced = True
                self._append_note(f"did not exit {timeout or self.stop_timeout:g}s "
                                  "after SIGTERM: sending SIGKILL")
                self._kill_group(signal.SIGKILL)
                self.proc.wait()
        # Children the daemon left in its group go too.
        self._kill_group(signal.SIGKILL)
        self._reap()
        return self.returncode

    def kill9(self) -> int | None:
        """SIGKILL the daemon (and its process group) at once, like a crash
        or power loss of the process.  Returns the exit status (-9)."""
        if self.proc is None:
            return None
        self.expected_exit = True
        self._kill_group(signal.SIGKILL)
        self.proc.wait()
        self._reap()
        self._append_note("killed with SIGKILL by the test")
        return self.returncode

    def restart(self, kill: bool = False) -> "Daemon":
        """stop() (or kill9() with kill=True), then start() with the same
        config, data directory and port."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Wait for the daemon to exit by itself; returns its status."""
        if self.proc is None:
            raise DaemonError(f"{self.name}: not started")
        self.expected_exit = True
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DaemonError(f"{self.name} still running after {timeout:g}s") from None
        self._reap()
        return self.returncode

    def wait_log(self, pattern: str | re.Pattern, timeout: float = READY_TIMEOUT_S,
                 since_start: bool = True) -> re.Match:
        """Wait until the log (since the latest start) matches `pattern`;
        returns the match.  Fails early if the daemon exits."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text(since_start=since_start))
            if m:
                return m
            if not self.running:
                self._reap()
                raise DaemonError(
                    f"{self.name} exited (status {self.returncode}) before logging "
                    f"/{rx.pattern}/\n--- last lines:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise DaemonError(f"{self.name}: /{rx.pattern}/ not logged within "
                                  f"{timeout:g}s\n--- last lines:\n{self.log_tail()}")
            time.sleep(_POLL_S)

    def _append_note(self, text: str) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"=== ksharness: {text}\n".encode())


# --- a test's daemons ------------------------------------------------------


class DaemonSet:
    """The daemons of one test, all under one directory.  Calling it creates
    a Daemon (and starts it unless start=False); `stop_all()` stops them in
    reverse order of creation.  This is what the `daemons` fixture yields."""

    def __init__(self, workdir: os.PathLike | str):
        self.workdir = Path(workdir)
        self.all: list[Daemon] = []

    def __call__(self, name: str, config: Mapping | None = None,
                 args: Sequence[str] = (), *, start: bool = True, **kw) -> Daemon:
        if any(d.name == name for d in self.all):
            raise ValueError(f"daemon name {name!r} already used in this test")
        d = Daemon(name, config, args, workdir=self.workdir, **kw)
        self.all.append(d)
        if start:
            d.start()
        return d

    def __iter__(self):
        return iter(self.all)

    def __getitem__(self, name: str) -> Daemon:
        for d in self.all:
            if d.name == name:
                return d
        raise KeyError(name)

    def stop_all(self) -> list[str]:
        """Stop every daemon; returns the problems found: a daemon that died
        while the test expected it to run, or one that ignored SIGTERM."""
        problems = []
        for d in reversed(self.all):
            if d.proc is None:
                continue
            if d.running:
                d.stop()
                if d.stop_forced:
                    problems.append(f"{d.name} ignored SIGTERM for {d.stop_timeout:g}s "
                                    "and was killed with SIGKILL")
            elif not d.expected_exit:
                d.stop()  # reaps it and whatever it left in its group
                problems.append(f"{d.name} died during the test (status {d.returncode})")
        return problems

    def report(self, max_lines: int = 400) -> str:
        """Every daemon's log (last `max_lines` lines each), for a failure."""
        out = []
        for d in self.all:
            lines = d.log_text().splitlines()
            cut = len(lines) - max_lines
            out.append(f"----- {d.name}: {d!r}, log {d.log_path}"
                       + (f" (first {cut} lines omitted)" if cut > 0 else "") + " -----")
            out.extend(lines[-max_lines:])
        return "\n".join(out)


@atexit.register
def _stop_leftovers() -> None:
    # pytest interrupted, or a harness user without the fixture: never leave
    # daemons running after the test process.
    for d in list(_live):
        if d.running:
            d._kill_group(signal.SIGKILL)
