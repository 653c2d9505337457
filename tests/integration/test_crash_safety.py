"""A crash at any moment of apply, then a re-run, converges; afterwards every stored credential logs in and every
managed user on the server has a stored credential."""

import signal
import subprocess
import time

import pytest

from shared_mysql.db import PyMySQLExecutor
from shared_mysql.secrets.document import DocumentSecretStore

from ..conftest import CLI
from .helpers import assert_all_stored_credentials_log_in


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing in the library catches it."""


def tenants(prefix: str, n: int, limit: int = 2) -> dict:
    return {f"{prefix}{i}": {"max_connections": limit, "readonly": i % 2 == 0} for i in range(n)}


def rerun_converges(inst) -> None:
    t = inst.target()
    with t.executor() as ex:
        plan, desired = t.plan(ex)
        t.apply(ex, plan, desired, allow_destructive=True)
        after, _ = t.plan(ex)
        assert after.empty, [a.object for a in after.actions]
    assert_all_stored_credentials_log_in(t)


def crash_apply(inst, monkeypatch, point: str, after: int = 0) -> None:
    t = inst.target()
    original = PyMySQLExecutor.execute_many
    with t.executor() as ex, monkeypatch.context() as m:
        if point == "sql":
            def partial(self, stmts, **kw):
                original(self, stmts[:after], **kw)
                raise Crash()
            m.setattr(PyMySQLExecutor, "execute_many", partial)
        elif point in ("promote", "delete"):
            m.setattr(DocumentSecretStore, point, lambda self, names: (_ for _ in ()).throw(Crash()))
        plan, desired = t.plan(ex)
        assert not plan.empty
        with pytest.raises(Crash):
            t.apply(ex, plan, desired, allow_destructive=True)


@pytest.mark.parametrize("point,after", [("sql", 0), ("sql", 1), ("sql", 4), ("sql", 7), ("sql", 20),
                                         ("promote", 0), ("delete", 0)])
def test_crash_points_then_rerun_converges(instance_factory, monkeypatch, point, after):
    inst = instance_factory(tenants("a", 4))
    crash_apply(inst, monkeypatch, point, after)  # first apply (creates) crashes
    rerun_converges(inst)
    # second apply: drop two tenants, add two, change limits, and a drifted password
    inst.write({**tenants("a", 2, limit=3), **tenants("b", 2)})
    with inst.target().executor() as ex:
        ex.query("ALTER USER 'a0_user'@'%' IDENTIFIED BY PASSWORD '*0000000000000000000000000000000000000000'")
    crash_apply(inst, monkeypatch, point, after)
    rerun_converges(inst)


def test_kill_9_of_the_cli_at_many_moments_then_rerun_converges(instance_factory):
    n = 120
    inst = instance_factory(tenants("r0_", n), parameters={"max_connections": 1000})
    start = time.monotonic()
    inst.cli("apply", "--auto-approve", check=True)
    full = time.monotonic() - start
    killed = 0
    interrupted = []
    for rnd, frac in enumerate((0.15, 0.3, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95), start=1):
        # each round replaces every tenant: creates, grants, drops and secret deletes all get interrupted
        inst.write(tenants(f"r{rnd}_", n))
        proc = subprocess.Popen([*CLI, "apply", "--auto-approve", "--allow-destructive"], cwd=inst.dir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * frac)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        # what the kill left behind: pending secrets and/or a partly applied plan
        t = inst.target()
        pending = sum(1 for v in t.store.names().values() if "AWSPENDING" in v["stages"])
        with t.executor() as ex:
            left = len(t.plan(ex)[0].actions)
        if 0 < left:
            interrupted.append((round(frac, 2), left, pending))
        # the killed session's statement may still run on the server, holding the operator lock until it ends
        res = inst.cli("apply", "--auto-approve", "--allow-destructive", "--lock-timeout", "60")
        assert res.returncode == 0, res.stderr
        assert "Converged." in res.stdout or "No changes" in res.stdout
        assert inst.cli("plan", "--detailed-exitcode").returncode == 0
        assert assert_all_stored_credentials_log_in(inst.target()) == n + n // 2
    print(f"full apply {full:.2f}s; killed {killed}; (moment, actions left, pending secrets): {interrupted}")
    assert killed >= 4, f"only {killed} runs were still going when killed (full apply {full:.2f}s)"
    assert interrupted, "no kill landed while apply had work left"
