"""Fixtures of Kiseki's end-to-end tests (run with /usr/bin/python3 -m pytest).

  ks_build   the build directory ($KS_BUILD) as a Path; fails the test with
             instructions if it is unset or holds no binaries
  daemons    a factory for the test's daemons (ksharness.DaemonSet), all in
             the test's tmp_path; on teardown every daemon is stopped and, if
             the test failed, every daemon's log is printed

See README.md in this folder for how cluster fixtures build on these.
"""

from __future__ import annotations

import pytest

from ksharness import DaemonError, DaemonSet, build_dir


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item (item.rep_setup, item.rep_call)
    # so fixtures can tell in their teardown whether the test failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(item) -> bool:
    return any(getattr(item, "rep_" + when, None) is not None
               and getattr(item, "rep_" + when).failed
               for when in ("setup", "call"))


@pytest.fixture(scope="session")
def ks_build():
    """The build directory whose bin/ holds the daemons under test."""
    try:
        path = build_dir()
    except DaemonError as e:
        pytest.fail(str(e), pytrace=False)
    bindir = path / "bin"
    if not bindir.is_dir() or not any(p.is_file() for p in bindir.iterdir()):
        pytest.fail(f"{bindir}: no binaries (run `make build` first)", pytrace=False)
    return path


@pytest.fixture
def daemons(request, tmp_path):
    """Factory of daemons for this test:

        d = daemons("ks-echod", {"port": p}, ready_port=p)   # started
        d2 = daemons("other", cfg, start=False)              # not yet

    Config, log and data of each daemon live in the test's tmp_path (pytest
    keeps the last few runs' directories, so logs stay inspectable).
    Teardown stops every daemon in reverse order of creation, prints every
    daemon's log if the test failed, and errors the test if a daemon died
    while it was expected to run or ignored SIGTERM.
    """
    ds = DaemonSet(tmp_path)
    yield ds
    problems = ds.stop_all()
    if ds.all and (problems or _test_failed(request.node)):
        # Printed in teardown, after the daemons stopped, so the logs include
        # their shutdown; pytest shows it under "Captured stdout teardown".
        print(f"\n===== daemon logs of {request.node.nodeid} (in {tmp_path}) =====")
        print(ds.report())
    if problems:
        pytest.fail("daemon trouble: " + "; ".join(problems), pytrace=False)
