"""`mask` and `mask --check` on a target: the tenants' rules, run or resumed, then verified."""

from __future__ import annotations

import time

from ..errors import SharedMySQLError, UsageError
from ..tenants.model import DATABASE_SUFFIX
from . import engine
from .plan import MaskingError, TablePlan, build
from .rules import Rule, RuleError, merge, parse_rules


class MaskingFailed(SharedMySQLError):
    """Verification found unmasked data: exit 3, like a failing audit."""

    exit_code = 3


def tenant_rules(config, tenant: str, source_config=None, path=None) -> list[Rule] | None:
    """The tenant's rules: this config's, plus the source config's on a refresh (a column masked in either is
    masked). None when neither declares `masking` for the tenant."""
    mine = config.tenants[tenant].masking
    theirs = None
    if source_config is not None and tenant in source_config.tenants:
        theirs = source_config.tenants[tenant].masking
    try:
        merged = merge(mine, theirs, f"tenants.{tenant}.masking")
    except RuleError as exc:
        raise UsageError(str(exc)) from None
    return None if merged is None else parse_rules(merged)


def select_tenants(config, tenants: list[str] | None, path) -> list[str]:
    for t in tenants or []:
        if t not in config.tenants:
            raise UsageError(f"--tenant {t}: not a tenant in {path}")
    return list(tenants) if tenants else sorted(config.tenants)


def plans_for(conn, tenant: str, rules: list[Rule]) -> list[TablePlan]:
    db = f"{tenant}{DATABASE_SUFFIX}"
    return build(tenant, rules, engine.read_schema(conn, db), engine.is_mysql(conn))


def mask_database(conn, tenant: str, rules: list[Rule], *, source: str, new_run: bool = False,
                  batch: int = engine.BATCH, progress=None) -> dict:
    """Mask one tenant's database: a new run (a refresh just restored it: new salts, fingerprints of what it
    holds now), or the unfinished run resumed. Then the check. Returns the run's report."""
    db = f"{tenant}{DATABASE_SUFFIX}"
    t0 = time.monotonic()
    infos = engine.read_schema(conn, db)
    tables = build(tenant, rules, infos, engine.is_mysql(conn))
    digest = engine.rules_digest(rules)
    run = engine.latest_run(conn, db)
    resumed = False
    if new_run or run is None or run.phase in ("verified", "abandoned") or run.digest != digest:
        if run is not None and run.phase not in ("verified", "abandoned") and not new_run:
            engine.put_triggers_back(conn, run, db)  # an unfinished run of other rules: its triggers first
        run = engine.new_run(conn, db, digest, source, rules)  # masked data masked again: harmless, consistent
        # (changed rules: the fingerprints and progress of the old ones do not fit them)
    else:
        resumed = True  # an interrupted run: its salts, fingerprints and progress
    engine.load_salts(conn, run)
    fps = 0
    if run.phase == "fingerprinting":
        engine.trial(conn, db, tables)  # before anything is written
        fps = engine.fingerprint(conn, run, db, tables)
        engine.set_phase(conn, run, "masking")
    rows = 0
    if run.phase in ("masking", "failed"):
        for tp in tables:
            rows += engine.mask_table(conn, run, db, tp, batch=batch, progress=progress)
    mask_s = engine.elapsed(t0)
    results = engine.check(conn, run, db, tables)
    problems = engine.findings(results)
    engine.set_phase(conn, run, "failed" if problems else "verified")
    return {"tenant": tenant, "database": db, "run": run.id, "resumed": resumed, "rows_masked": rows,
            "fingerprints": fps, "columns": results, "problems": problems, "ok": not problems,
            "mask_s": mask_s, "total_s": engine.elapsed(t0)}


def check_database(conn, tenant: str, rules: list[Rule]) -> dict:
    db = f"{tenant}{DATABASE_SUFFIX}"
    tables = plans_for(conn, tenant, rules)
    run = engine.latest_run(conn, db)
    if run is not None and run.phase == "abandoned":  # its data was replaced since: its fingerprints are gone
        run = None
    results = engine.check(conn, run, db, tables)
    problems = engine.findings(results)
    notes = []
    if run is None:
        # Without a run's fingerprints, a rule with no form to check (hash of a number or of bytes, shuffle)
        # cannot be told from unmasked data: findings() fails those, since no run covers them.
        notes.append("no masking run of this data (never masked here, or restored again since): no source "
                     "fingerprints, rules checked by form only")
    elif run.phase in ("fingerprinting", "masking"):
        problems.insert(0, f"masking run {run.id} stopped while {run.phase} (interrupted): re-run `shared-mysql "
                           "mask` (or the refresh) to finish it")
    return {"tenant": tenant, "database": db, "run": run.id if run else None,
            "phase": run.phase if run else None, "columns": results, "problems": problems, "notes": notes,
            "ok": not problems}


def mask(target, tenants: list[str] | None = None, *, batch: int = engine.BATCH, lock_wait: float = 0.0,
         progress=None) -> dict:
    """`mask`: run (or resume) masking of the tenants that declare rules, verify, and lift a refresh's block
    from each tenant that passes (its accounts are unlocked by the apply that follows)."""
    from ..tenants import blocks

    names = select_tenants(target.config, tenants, target.loaded.path)
    out = {"tenants": [], "notes": [], "ok": True}
    with target.executor() as ex:
        with target.server_lock(ex, lock_wait, "mask"):
            conn, notes = engine.open_session(target.admin_info())
            out["notes"] += notes
            blocked = blocks.read(ex)
            try:
                for t in names:
                    b = blocked.get(t)
                    if b is not None and b.get("kind") == "refresh":
                        # The refresh masks by both configs' rules; this config alone may hold fewer of them.
                        raise UsageError(f"tenant {t} is blocked by an unfinished refresh ({b['reason']}); re-run "
                                         "`shared-mysql refresh --from SOURCE.yaml` (it resumes with the source's "
                                         "rules too): `mask` alone does not know them")
                    rules = tenant_rules(target.config, t)
                    if rules is None:
                        if tenants:
                            raise UsageError(f"tenants.{t}.masking: not set in {target.loaded.path}; declare the "
                                             "rules (or masking: {} when nothing needs masking)")
                        continue
                    r = mask_database(conn, t, rules, source="mask", batch=batch, progress=progress)
                    out["tenants"].append(r)
                    if r["ok"]:
                        blocks.unblock(ex, t)
                    else:
                        out["ok"] = False
            finally:
                conn.close()
            if out["ok"]:
                _apply_accounts(target, ex)
    return out


def check(target, tenants: list[str] | None = None) -> dict:
    """`mask --check`: read-only. Every masked column against its rule, and the source fingerprints."""
    from ..tenants import blocks

    names = select_tenants(target.config, tenants, target.loaded.path)
    out = {"tenants": [], "ok": True}
    with target.executor() as ex:
        blocked = blocks.read(ex)
    conn, _ = engine.open_session(target.admin_info())
    try:
        for t in names:
            rules = tenant_rules(target.config, t)
            if rules is None:
                if tenants:
                    raise UsageError(f"tenants.{t}.masking: not set in {target.loaded.path}; nothing to check")
                continue
            try:
                r = check_database(conn, t, rules)
            except MaskingError as exc:
                r = {"tenant": t, "database": f"{t}{DATABASE_SUFFIX}", "columns": [], "problems": [str(exc)],
                     "notes": [], "ok": False}
            if t in blocked:
                r["blocked"] = blocked[t]
                r["problems"].append(f"tenant {t} is marked unusable: {blocked[t]['reason']}")
                r["ok"] = False
            out["tenants"].append(r)
            out["ok"] = out["ok"] and r["ok"]
    finally:
        conn.close()
    return out


def _apply_accounts(target, ex) -> None:
    """The target's own accounts and secrets, as its config says (unlocks tenants no longer blocked)."""
    plan, desired = target.plan(ex)
    if plan.actions:
        target.apply(ex, plan, desired)
