"""The `kiseki` admin CLI end to end, against real daemons.

- init writes one config file per daemon and the data and key directories
  (0700); kiseki-meta and kiseki-chunkd start from those files; a second
  init without --force refuses and changes nothing; --force rewrites;
- tenant create, then key create with --credentials: the AWS
  shared-credentials file has the profile (0600), other profiles are kept,
  the profile is replaced on a second create; --json output parses;
- key delete, and deleting again fails;
- errors: meta down -> exit 1 and one clear line; unknown tenant; a
  duplicate tenant; usage errors -> exit 2; --help for every command.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import stat
import subprocess

import pytest

from ksharness import bin_path, free_port


def kiseki(*args, check=0, env=None, timeout=60):
    e = dict(os.environ)
    e.pop("KISEKI_META", None)
    e.update(env or {})
    p = subprocess.run([str(bin_path("kiseki")), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=e)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def start_meta(daemons, tmp_path):
    port = free_port()
    cfg = {"rpc": {"listen": f"127.0.0.1:{port}"},
           "admin": {"listen": f"127.0.0.1:{free_port()}"},
           "meta": {"data_dir": str(tmp_path / "meta.data")}}
    d = daemons("meta", cfg, binary="kiseki-meta", ready_port=port,
                ready_log=r"event=ready")
    return d, f"127.0.0.1:{port}"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_help_and_usage(ks_build):
    out = kiseki("--help").stdout
    for cmd in ("init", "tenant", "key"):
        assert cmd in out
        assert "usage: kiseki" in kiseki(cmd, "--help").stdout
    assert kiseki("--version").stdout.startswith("kiseki ")
    for args in ([], ["nosuch"], ["key", "create"], ["key", "frob"],
                 ["tenant", "create"], ["tenant", "create", "a", "b"],
                 ["init", "--devices", "0"], ["init", "--tenant", "x"],
                 ["key", "create", "--tenant"], ["key", "--bogus"]):
        p = kiseki(*args, check=2)
        assert p.stdout == ""
        assert len(p.stderr.strip().splitlines()) >= 1
    # one line, naming the problem
    p = kiseki("key", "create", "--profile", "p", "--tenant", "t", check=2)
    assert p.stderr.count("\n") == 1 and "--credentials" in p.stderr


def test_init_starts_daemons(ks_build, daemons, tmp_path):
    node = tmp_path / "node"
    p = kiseki("init", "--dir", node, "--devices", "4")
    conf = node / "node.json"
    assert conf.is_file(), p.stdout
    assert str(conf) in p.stdout
    assert not (node / "meta.json").exists()
    for d in ("meta", "chunkd/dev0", "chunkd/dev3", "tmp", "keys"):
        assert (node / d).is_dir()
        assert mode(node / d) == 0o700, d
    assert not (node / "chunkd/dev4").exists()
    assert "//" in conf.read_text()  # commented

    # The daemons accept the files (ports overridden by flags).
    mport, cport = free_port(), free_port()
    meta = daemons("meta", None, argv=[
        str(bin_path("kiseki-meta")), "--config", str(conf),
        f"--rpc.listen=127.0.0.1:{mport}",
        f"--admin.listen=127.0.0.1:{free_port()}"],
        ready_port=mport, ready_log=r"event=ready")
    assert f"data_dir={node}/meta" in meta.log_text()
    daemons("chunkd", None, argv=[
        str(bin_path("kiseki-chunkd")), "--config", str(conf),
        f"--rpc.listen=127.0.0.1:{cport}",
        f"--admin.listen=127.0.0.1:{free_port()}"],
        ready_port=cport, ready_log=r"event=ready")
    assert (node / "chunkd/dev3/device-id").exists()
    # The s3d section is accepted by the loader: a bad flag value that only
    # fails after loading makes it exit 1 (start failure), not 2 (config).
    s3 = subprocess.run([str(bin_path("kiseki-s3d")), "--config",
                         str(conf), "--s3.listen=bad"],
                        capture_output=True, text=True, timeout=30)
    assert s3.returncode == 1, s3.stderr
    assert "node.json" not in s3.stderr, s3.stderr
    # Each daemon validates only its own section, with the full key path in
    # errors; an unknown section is a typo and refused.
    bad = tmp_path / "bad.json"
    bad.write_text('{"chunkd": {"rpc": {"listne": "x"}}, "meta": {}}')
    p = subprocess.run([str(bin_path("kiseki-chunkd")), "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "chunkd.rpc.listne" in p.stderr, p.stderr
    p = subprocess.run([str(bin_path("kiseki-meta")), "--config", str(bad),
                        "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    bad.write_text('{"s3dd": {}}')
    p = subprocess.run([str(bin_path("kiseki-s3d")), "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "s3dd" in p.stderr, p.stderr

    # The node works: a tenant and a key through the CLI.
    addr = f"127.0.0.1:{mport}"
    kiseki("tenant", "create", "acme", "--meta", addr)
    kiseki("key", "create", "--tenant", "acme", "--meta", addr)

    # Again without --force: refused, nothing changed.
    before = conf.read_text()
    p = kiseki("init", "--dir", node, check=1)
    assert "exists" in p.stderr and "--force" in p.stderr
    assert p.stderr.count("\n") == 1
    assert conf.read_text() == before
    # --force rewrites (device count changes), data is kept.
    p = kiseki("init", "--dir", node, "--force", "--json")
    rows = json.loads(p.stdout)
    assert {"action": "wrote", "path": str(conf)} in rows
    assert {"action": "kept", "path": str(node / "meta")} in rows
    assert '"device_count": 6' in conf.read_text()
    assert (node / "chunkd/dev3/device-id").exists()


def test_init_refuses_open_key_dir(ks_build, tmp_path):
    node = tmp_path / "n"
    (node / "keys").mkdir(parents=True)
    os.chmod(node / "keys", 0o755)
    p = kiseki("init", "--dir", node, check=1)
    assert "keys" in p.stderr and "chmod 700" in p.stderr


def test_tenant_and_keys(ks_build, daemons, tmp_path):
    meta, addr = start_meta(daemons, tmp_path)
    p = kiseki("tenant", "create", "acme", "--meta", addr, "--json")
    t = json.loads(p.stdout)
    assert t["tenant"] == "acme" and re.fullmatch(r"[0-9a-f]{32}", t["id"])
    # the id is a function of the name
    p = kiseki("tenant", "create", "acme", "--meta", addr, check=1)
    assert "already exists" in p.stderr and p.stderr.count("\n") == 1
    assert kiseki("tenant", "list", check=1).stderr.count("\n") == 1

    creds = tmp_path / "aws" / "credentials"
    creds.parent.mkdir()
    creds.write_text("[other]\naws_access_key_id = X\n"
                     "aws_secret_access_key = Y\n")
    p = kiseki("key", "create", "--tenant", "acme", "--meta", addr,
               "--credentials", creds, "--profile", "kiseki", "--json")
    k = json.loads(p.stdout)
    assert re.fullmatch(r"KS[A-Z0-9]{18}", k["access_key_id"])
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", k["secret_access_key"])
    assert k["tenant"] == "acme" and k["profile"] == "kiseki"
    assert mode(creds) == 0o600
    cp = configparser.ConfigParser()
    cp.read(creds)
    assert cp["kiseki"]["aws_access_key_id"] == k["access_key_id"]
    assert cp["kiseki"]["aws_secret_access_key"] == k["secret_access_key"]
    assert cp["other"]["aws_access_key_id"] == "X"

    # A second key replaces the profile; the human form is a record.
    p = kiseki("key", "create", "--tenant", "acme", "--credentials", creds,
               "--profile", "kiseki", env={"KISEKI_META": addr})
    fields = dict(line.split(None, 1) for line in p.stdout.splitlines())
    assert fields["access_key_id"] != k["access_key_id"]
    cp = configparser.ConfigParser()
    cp.read(creds)
    assert cp.sections() == ["other", "kiseki"]
    assert cp["kiseki"]["aws_access_key_id"] == fields["access_key_id"]
    assert creds.read_text().count("[kiseki]") == 1

    # Default profile, new file.
    c2 = tmp_path / "c2"
    kiseki("key", "create", "--tenant", "acme", "--meta", addr,
           "--credentials", c2)
    assert "[default]" in c2.read_text() and mode(c2) == 0o600

    # Delete, then delete again.
    p = kiseki("key", "delete", k["access_key_id"], "--meta", addr, "--json")
    assert json.loads(p.stdout) == {"access_key_id": k["access_key_id"],
                                    "status": "deleted"}
    p = kiseki("key", "delete", k["access_key_id"], "--meta", addr, check=1)
    assert "no access key" in p.stderr
    assert kiseki("key", "list", "--tenant", "acme",
                  check=1).stderr.count("\n") == 1

    # Unknown tenant: exit 1, nothing printed, credentials untouched.
    before = creds.read_text()
    p = kiseki("key", "create", "--tenant", "nosuch", "--meta", addr,
               "--credentials", creds, check=1)
    assert p.stdout == ""
    assert "tenant 'nosuch' does not exist" in p.stderr
    assert p.stderr.count("\n") == 1
    assert creds.read_text() == before


def test_meta_down(ks_build, tmp_path):
    port = free_port()  # nothing listens there
    for args in (["tenant", "create", "t"],
                 ["key", "create", "--tenant", "t"],
                 ["key", "delete", "KSXXXXXXXXXXXXXXXXXX"]):
        p = kiseki(*args, "--meta", f"127.0.0.1:{port}", check=1)
        assert p.stdout == ""
        assert p.stderr.count("\n") == 1
        assert "not reachable" in p.stderr and str(port) in p.stderr
    p = kiseki("tenant", "create", "t", "--meta", "nohost", check=1)
    assert "bad meta address" in p.stderr


@pytest.mark.parametrize("name", ["t\u00e9nant-\u65e5\u672c"])
def test_utf8_tenant_name(ks_build, daemons, tmp_path, name):
    _, addr = start_meta(daemons, tmp_path)
    p = kiseki("tenant", "create", name, "--meta", addr, "--json")
    assert json.loads(p.stdout)["tenant"] == name
    p = kiseki("key", "create", "--tenant", name, "--meta", addr)
    assert name in p.stdout
