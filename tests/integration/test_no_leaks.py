"""Passwords never appear in CLI output (except `credentials`), logs, the binlog, the slow/general/audit logs,
or any state file; state files are private."""

import os
import stat

from shared_mysql.secrets import CURRENT, PREVIOUS


def test_no_plaintext_password_anywhere(instance_factory):
    # Log every statement: slow log at 0 s, plus the general log, so nothing escapes by being fast.
    inst = instance_factory({"orders": {"readonly": True}, "billing": {}},
                            parameters={"long_query_time": 0, "general_log": True})
    t = inst.target()
    logs = t.server.paths.logs  # general_log_file is the tool's own setting: logs/general.log
    inst.cli("local", "down", check=True)
    outputs = [inst.cli("local", "up", "--debug", check=True)]
    outputs.append(inst.cli("up", "--debug", check=True))
    # a drifted password is reset too (set_password path), and a tenant removal (drop path)
    with t.executor() as ex:
        ex.query("ALTER USER 'billing_user'@'%' IDENTIFIED BY PASSWORD '*0000000000000000000000000000000000000000'")
    for args in (["plan", "--debug"], ["plan", "-o", "json"], ["apply", "--auto-approve", "--debug"],
                 ["apply", "--auto-approve", "-o", "json"], ["tenants"], ["tenants", "-o", "json"],
                 ["local", "status", "-o", "json"], ["local", "status"]):
        outputs.append(inst.cli(*args, check=True))
    t.store.reload()
    passwords = set()
    for stage in (CURRENT, PREVIOUS):
        passwords |= {v["password"] for v in t.store.get_all(stage).values()}
    assert len(passwords) == 4  # master, orders app + readonly, billing
    inst.write({"orders": {"readonly": True}})
    outputs.append(inst.cli("apply", "--auto-approve", "--allow-destructive", "--debug", check=True))
    # `--debug` really logged SQL, redacted
    debug = "".join(o.stderr for o in outputs)
    assert "debug: shared_mysql.sql: execute: CREATE USER" in debug and "<redacted>" in debug

    t.store.reload()
    assert len({v["password"] for v in t.store.get_all(CURRENT).values()} & passwords) == 3  # billing's is gone

    for o in outputs:
        for pw in passwords:
            assert pw not in o.stdout and pw not in o.stderr

    inst.cli("local", "down", check=True)  # flush everything to disk
    checked = 0
    for root, _dirs, files in os.walk(t.state_dir):
        for f in files:
            path = os.path.join(root, f)
            if os.path.islink(path) or stat.S_ISSOCK(os.stat(path).st_mode):
                continue
            data = open(path, "rb").read()
            checked += 1
            for pw in passwords:
                assert pw.encode() not in data, f"password found in {path}"
    assert checked > 20
    general = (logs / "general.log").read_text(errors="replace")
    assert "CREATE USER" in general  # the logs did record the statements, with hashes only
    assert "IDENTIFIED BY PASSWORD" in general
    assert "IDENTIFIED BY PASSWORD" in (logs / "slow.log").read_text(errors="replace")
    assert "CREATE USER" in (logs / "audit.log").read_text(errors="replace")


def test_state_files_are_private(instance_factory):
    inst = instance_factory({"a": {}})
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    root = t.state_dir
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for name in ("secrets.enc", "secrets.key", "my.cnf", "tls/server-key.pem"):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o600, name
    assert not (root / "init.sql").exists()  # the bootstrap file is removed once the server is up
