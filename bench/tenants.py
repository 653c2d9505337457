#!/usr/bin/env python3
"""Apply from empty and a no-op plan for N tenants: the CLI vs the raw-SQL floor vs Ansible, in one run.

Each contender gets its own fresh embedded server (same config, same machine, same run):
  apply_s         `shared-mysql apply --auto-approve` from an empty server (CLI start-up included)
  noop_plan_s     `shared-mysql plan` when nothing changed (median of 3)
  raw_sql_s       the floor: the same statements the CLI runs, piped through the `mariadb`/`mysql` client over TLS
  noop_plan_rss_mb  peak resident memory of that no-op plan
  startup_s       `shared-mysql tenants -o json` on a 2-tenant config (median of 7), beside `python -c pass`
  ansible_*       with --ansible: community.mysql's mysql_db + mysql_user doing the same (first run, then a re-run)
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, embedded  # noqa: E402 (puts the repository on sys.path)

from shared_mysql.target import LocalTarget  # noqa: E402

BENCH_VENV = ROOT / ".bench-venv"
ROTATION = "alternating"  # --rotation: alternating (the default: two accounts per tenant) or single


def make_instance(base: Path, name: str, n: int) -> LocalTarget:
    return embedded(base, name, [f"  t{i:05d}: {{max_connections: 1, rotation: {ROTATION}}}" for i in range(n)], n + 100)


def timed(cmd, **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def timed_rss(cmd) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def startup(base: Path) -> tuple[float, float]:
    """CLI start-up: `tenants -o json` needs no server (config + imports + output), vs the interpreter alone."""
    d = base / "startup"
    d.mkdir()
    (d / "shared-mysql.yaml").write_text("environment: bench\ntenants:\n  orders: {}\n  billing: {}\n")
    exe = str(ROOT / ".venv" / "bin" / "shared-mysql")
    py = str(ROOT / ".venv" / "bin" / "python")
    cli_runs, py_runs = [], []
    for _ in range(7):  # interleaved, medians
        cli_runs.append(timed([exe, "-c", str(d / "shared-mysql.yaml"), "tenants", "-o", "json"]))
        py_runs.append(timed([py, "-c", "pass"]))
    return statistics.median(cli_runs), statistics.median(py_runs)


def cli(t: LocalTarget, *args) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "shared-mysql"), "-c", str(t.loaded.path), *args]


def floor_sql(t: LocalTarget) -> tuple[Path, float]:
    """The statements the CLI would run, rendered by the library, piped through the stock client."""
    from shared_mysql.sql.passwords import generate_password
    from shared_mysql.tenants import render_statements

    with t.executor() as ex:
        plan, desired = t.plan(ex)
    sql = [s.sql for a in plan.actions for s in render_statements(a, desired, generate_password())]
    path = t.state_dir / "floor.sql"
    path.write_text(";\n".join(sql) + ";\n")
    client = shutil.which("mariadb") or shutil.which("mysql")
    env = {**os.environ, "MYSQL_PWD": t.master_password()}
    cmd = [client, "--no-defaults", "-h", t.host, "-P", str(t.config.port), "-u", t.config.instance.master_username,
           f"--ssl-ca={t.ca}", "--ssl-verify-server-cert"]
    with open(path) as fh:
        return path, timed(cmd, stdin=fh, env=env)


def ensure_ansible() -> Path:
    exe = BENCH_VENV / "bin" / "ansible-playbook"
    if not exe.exists():
        print("installing ansible + PyMySQL into .bench-venv (one time)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "ansible", "PyMySQL"], check=True)
    return exe


def ansible_run(t: LocalTarget, n: int) -> tuple[float, float]:
    exe = ensure_ansible()
    items = [{"db": f"t{i:05d}_db", "user": f"t{i:05d}_user", "priv": f"t{i:05d}\\_db.*:ALL"} for i in range(n)]
    login = {"login_host": t.host, "login_port": t.config.port, "login_user": t.config.instance.master_username,
             "login_password": "{{ lookup('env', 'BENCH_MASTER_PASSWORD') }}", "ca_cert": t.ca, "check_hostname": True}
    play = [{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "vars": {"tenants": items},
        "tasks": [
            {"name": "databases", "loop": "{{ tenants }}", "loop_control": {"label": "{{ item.db }}"},
             "community.mysql.mysql_db": {**login, "name": "{{ item.db }}", "encoding": "utf8mb4",
                                          "collation": "utf8mb4_unicode_ci", "state": "present"}},
            {"name": "users", "loop": "{{ tenants }}", "loop_control": {"label": "{{ item.user }}"}, "no_log": True,
             "community.mysql.mysql_user": {**login, "name": "{{ item.user }}", "host": "%",
                                            "password": "Bench{{ item.user }}Passw0rd", "priv": "{{ item.priv }}",
                                            "tls_requires": {"SSL": None},
                                            "resource_limits": {"MAX_USER_CONNECTIONS": 1},
                                            "update_password": "on_create", "state": "present"}},
        ],
    }]
    pb = t.state_dir / "playbook.json"
    pb.write_text(json.dumps(play))
    env = {**os.environ, "BENCH_MASTER_PASSWORD": t.master_password(), "ANSIBLE_PYTHON_INTERPRETER":
           str(BENCH_VENV / "bin" / "python"), "ANSIBLE_LOCALHOST_WARNING": "False",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False"}
    cmd = [str(exe), "-i", "localhost,", str(pb)]
    return timed(cmd, env=env), timed(cmd, env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--rotation", choices=("alternating", "single"), default="alternating",
                    help="alternating: each tenant's account and its rotation twin (the default config); single: one")
    ap.add_argument("--ansible", action="store_true", help="also run Ansible's community.mysql modules")
    ap.add_argument("--rounds", type=int, default=3,
                    help="floor/CLI rounds on fresh servers, interleaved; medians are reported (disk latency varies)")
    args = ap.parse_args()
    global ROTATION
    ROTATION = args.rotation
    n = args.tenants
    base = Path(tempfile.mkdtemp(prefix="shared-mysql-bench-"))
    started: list[LocalTarget] = []
    result = {"tenants": n, "rotation": ROTATION, "apply_s": None, "raw_sql_s": None, "noop_plan_s": None, "noop_plan_rss_mb": None,
              "startup_s": None, "python_startup_s": None, "ansible_apply_s": None, "ansible_noop_s": None}
    floors, applies, noops, rss = [], [], [], []
    try:
        result["startup_s"], result["python_startup_s"] = startup(base)
        for r in range(args.rounds):
            floor_t = make_instance(base, f"floor{r}", n)
            started.append(floor_t)
            floors.append(floor_sql(floor_t)[1])
            floor_t.server.down()

            cli_t = make_instance(base, f"cli{r}", n)
            started.append(cli_t)
            applies.append(timed(cli(cli_t, "apply", "--auto-approve")))
            for _ in range(3):
                took, mb = timed_rss(cli(cli_t, "plan", "--detailed-exitcode"))
                noops.append(took)
                rss.append(mb)
            cli_t.server.down()
        result["raw_sql_s"] = statistics.median(floors)
        result["apply_s"] = statistics.median(applies)
        result["noop_plan_s"] = statistics.median(noops)
        result["noop_plan_rss_mb"] = round(max(rss), 1)

        if args.ansible:
            ans_t = make_instance(base, "ansible", n)
            started.append(ans_t)
            result["ansible_apply_s"], result["ansible_noop_s"] = ansible_run(ans_t, n)
    finally:
        for t in started:
            t.server.down()
        shutil.rmtree(base, ignore_errors=True)

    def f(v):
        return "-" if v is None else f"{v:8.3f} s"

    print(f"{n} tenants (rotation: {ROTATION}), {os.cpu_count()} cores, medians of {args.rounds} rounds "
          f"(apply {', '.join(f'{x:.2f}' for x in applies)} s; floor {', '.join(f'{x:.2f}' for x in floors)} s)")
    print(f"{'':24s}{'shared-mysql':>14s}{'raw SQL floor':>16s}{'Ansible':>12s}")
    print(f"{'apply from empty':24s}{f(result['apply_s']):>14s}{f(result['raw_sql_s']):>16s}"
          f"{f(result['ansible_apply_s']):>12s}")
    print(f"{'no-op plan / re-run':24s}{f(result['noop_plan_s']):>14s}{'':>16s}{f(result['ansible_noop_s']):>12s}")
    print(f"apply vs floor: {result['apply_s'] / result['raw_sql_s']:.2f}x; no-op plan peak RSS "
          f"{result['noop_plan_rss_mb']} MB")
    print(f"{'CLI start-up':24s}{f(result['startup_s']):>14s}  (`tenants -o json`; `python -c pass` "
          f"{result['python_startup_s']:.3f} s)")
    if result["ansible_apply_s"]:
        print(f"vs Ansible: apply {result['ansible_apply_s'] / result['apply_s']:.0f}x faster, "
              f"no-op {result['ansible_noop_s'] / result['noop_plan_s']:.0f}x faster")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
