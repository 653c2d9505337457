"""Races on first use (issue 7, item 5), with real processes: every state-writing command takes the instance's
lock, the store key is created once, and two `local up` on a fresh directory end with one server."""

import json
import subprocess
import time

from ..conftest import CLI
from .helpers import login


def spawn(inst, *args, input: str | None = None) -> subprocess.Popen:
    import os

    env = {k: v for k, v in os.environ.items() if k != "SHARED_MYSQL_CONFIG"}
    p = subprocess.Popen([*CLI, *args], cwd=inst.dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    if input is not None:
        p.stdin.write(input)
    p.stdin.close()
    p.stdin = None  # closed: communicate() must not flush it again
    return p


def finish(p: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def test_concurrent_imports_on_a_fresh_directory_keep_every_secret(instance_factory):
    inst = instance_factory({}, start=False)
    values = [{"username": "admin", "password": f"pw-{i}-" + "x" * 20, "note": f"writer {i}"} for i in range(4)]
    procs = [spawn(inst, "credentials", "--admin", "--import", input=json.dumps(v)) for v in values]
    results = [finish(p) for p in procs]
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    # One key, a store that decrypts, and the last writer's value current (every write happened, in turn).
    keys = list((inst.dir / ".shared-mysql" / "itest").glob("secrets.key"))
    assert len(keys) == 1
    t = inst.target()
    cur = t.store.get(t.config.master_secret_name)
    assert cur["note"] in {v["note"] for v in values}
    assert not list((inst.dir / ".shared-mysql" / "itest").glob(".secrets.key.*"))


def test_two_local_up_on_a_fresh_directory_give_one_server(instance_factory):
    inst = instance_factory({}, start=False)
    procs = [spawn(inst, "local", "up", "-o", "json") for _ in range(2)]
    results = [finish(p) for p in procs]
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    pids = {json.loads(out)["pid"] for _, out, _ in results}
    assert len(pids) == 1 and None not in pids
    t = inst.target()
    assert login(t.master_secret(), database=None)
    root = inst.dir / ".shared-mysql" / "itest"
    assert not list(root.glob("data.init-*"))


def test_an_import_during_an_apply_waits_and_is_not_overwritten(instance_factory):
    inst = instance_factory({"a": {}})
    t = inst.target()
    master = t.master_secret()
    with t.lock():  # what `apply` holds for its whole run
        imp = spawn(inst, "credentials", "--admin", "--import", input=json.dumps({**master, "note": "imported"}))
        time.sleep(2.0)
        assert imp.poll() is None  # waiting for the lock, not writing under the apply
        # what the apply writes meanwhile (its staged secrets, promoted)
        t.store.put_pending({"test-probe": ({"password": "p"}, {"managed-by": "shared-mysql"})})
        t.store.promote(["test-probe"])
    code, _, err = finish(imp)
    assert code == 0, err
    t.store.reload()
    assert t.store.get(t.config.master_secret_name)["note"] == "imported"
    assert t.store.get("test-probe") == {"password": "p"}  # the import re-read the store under the lock


def test_apply_while_another_holds_the_lock_is_one_line(instance_factory):
    inst = instance_factory({"a": {}})
    t = inst.target()
    with t.lock():
        res = inst.cli("apply", "--auto-approve")
    assert res.returncode == 1
    line = res.stderr.strip()
    assert "\n" not in line and "is changing itest" in line and "wait for it to finish" in line


def test_local_up_on_a_running_server_finishes_an_interrupted_start(instance_factory):
    """A kill -9 between "ready" and the socket's removal left the socket reachable and init.sql on disk; `local up`
    on the running server returned early and fixed neither."""
    import socket as so

    inst = instance_factory({})
    t = inst.target()
    sock = t.server.paths.socket
    # What the interrupted start leaves: a listening socket at the socket path, and the bootstrap file.
    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.bind(str(sock))
    s.listen(1)
    t.server.paths.init_file.write_text("-- left behind\n")
    try:
        res = inst.cli("local", "up", "-o", "json", check=True)
        st = json.loads(res.stdout)
        assert not sock.exists() and not t.server.paths.init_file.exists()
        assert st["unix_socket"]["reachable"] is False
    finally:
        s.close()
