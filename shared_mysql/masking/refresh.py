"""`refresh --from SOURCE.yaml`: the source environment's data into this config's target, masked and verified
before any of the target's tenant accounts can read it.

local/server: per tenant, the source's newest backup (its backup directory; the source server is never
contacted) is restored over the tenant's database on the target. aws: refresh_aws (a snapshot of the source
restored as the target's instance). Then, on every target:

1. Before any data arrives the tenant is *blocked*: a row in the tool's schema that makes every plan want its
   accounts locked, and its accounts are locked and their sessions ended at once.
2. Masking runs (masking/engine.py: new salts, fingerprints of the source values, batches that resume).
3. The check. A failure leaves the tenant blocked (its service cannot log in) and exits 3; `refresh` re-run
   resumes masking without restoring again, `mask --check` reports, `mask` finishes a run in place.
4. Passed: the block is lifted and the target's own config is applied: its accounts, its passwords (never the
   source's), its secrets and exports.
"""

from __future__ import annotations

import time

from ..errors import SharedMySQLError, UsageError
from ..tenants import blocks
from ..tenants.model import DATABASE_SUFFIX
from . import engine
from .run import _apply_accounts, mask_database, select_tenants, tenant_rules

REASON = "refresh from {src}: masking not verified yet"


def _label(cfg) -> str:
    return f"{cfg.environment}/{cfg.identifier}"


def check_pair(target, source_loaded, tenants: list[str] | None) -> tuple[list[str], dict]:
    """The tenants to refresh and their rules; one line for anything that makes the refresh unsafe."""
    cfg, src = target.config, source_loaded.config
    if source_loaded.path.resolve() == target.loaded.path.resolve():
        raise UsageError(f"--from {source_loaded.path}: that is this config; give the source environment's config")
    if (cfg.target == "aws") != (src.target == "aws"):
        raise UsageError(f"--from {source_loaded.path}: target {src.target} into target {cfg.target}: an aws "
                         "target refreshes from an aws source (a snapshot), local/server targets from a "
                         "local/server source (its backups)")
    if cfg.target == "aws":
        if src.db_instance_identifier == cfg.db_instance_identifier and \
                (src.aws.region or src.instance.aws_region) == (cfg.aws.region or cfg.instance.aws_region):
            raise UsageError(f"--from {source_loaded.path}: it names this instance ({cfg.db_instance_identifier}); "
                             "a refresh never writes to its source")
    elif same_endpoint(src.host, src.port, cfg.host, cfg.port):
        raise UsageError(f"--from {source_loaded.path}: its server is this target's ({cfg.host}:{cfg.port}); a "
                         "refresh never writes to its source")
    names = select_tenants(cfg, tenants, target.loaded.path)
    rules = {}
    for t in names:
        if t not in src.tenants:
            if tenants:
                raise UsageError(f"--tenant {t}: not a tenant in {source_loaded.path}")
            continue
        r = tenant_rules(cfg, t, src, target.loaded.path)
        if r is None:
            raise UsageError(f"tenants.{t}.masking: declared in neither {target.loaded.path} nor "
                             f"{source_loaded.path}; a refresh copies the source's data, so say how to mask it "
                             f"(or masking: {{}} when {t} holds no personal data), or leave it out with --tenant")
        rules[t] = r
    if not rules:
        raise UsageError(f"no tenant is in both {target.loaded.path} and {source_loaded.path}")
    return sorted(rules), rules


def _addresses(host: str | None) -> set[str]:
    import ipaddress
    import socket

    from ..config.model import is_loopback

    if not host:
        return set()
    if is_loopback(host):
        return {"loopback"}
    try:
        out = {ipaddress.ip_address(a[4][0]).compressed for a in socket.getaddrinfo(host, None)}
    except (OSError, ValueError):
        return {host.lower()}
    return {"loopback" if ipaddress.ip_address(a).is_loopback else a for a in out}


def same_endpoint(h1, p1, h2, p2) -> bool:
    """Two host/port pairs that reach the same listener: names resolved, every loopback address the same."""
    return p1 == p2 and bool(_addresses(h1) & _addresses(h2))


def check_not_source(ex, backup, label: str) -> None:
    """The backup about to be restored must not come from the very server it would overwrite (a config of
    another kind, or another name for the host, reaches it too): compared by the server's own identity."""
    from ..backup.create import server_identity

    theirs = (backup.manifest.get("server") or {}).get("identity")
    if not theirs:
        return  # a backup from before identities were recorded: the endpoint check is all there is
    mine = server_identity(ex)
    if all(mine.get(k) == theirs.get(k) for k in ("hostname", "datadir", "port", "server_id")):
        raise UsageError(f"backup {backup.id} of {label} was taken on this very server ({mine['hostname']}:"
                         f"{mine['port']}, {mine['datadir']}); a refresh never writes to its source")


def refresh(target, source_loaded, tenants: list[str] | None = None, *, restart: bool = False,
            batch: int = engine.BATCH, lock_wait: float = 0.0, progress=None) -> dict:
    names, rules = check_pair(target, source_loaded, tenants)
    say = progress or (lambda m: None)
    if target.kind == "aws":
        from .refresh_aws import refresh_aws

        return refresh_aws(target, source_loaded, names, rules, restart=restart, batch=batch, lock_wait=lock_wait,
                           say=say)
    from ..target import open_target

    source = open_target(source_loaded)
    target.prepare()
    label = _label(source_loaded.config)
    out: dict = {"source": label, "target": _label(target.config), "tenants": [], "notes": [], "ok": True}
    t0 = time.monotonic()
    with target.executor() as ex:
        from ..backup.restore import choose
        from ..backup.store import BackupDir, backup_dir

        store = BackupDir(backup_dir(source))
        for t in names:  # before anything is locked or written
            check_not_source(ex, choose(store, to_time=None, backup_id=None, need=[f"{t}{DATABASE_SUFFIX}"]),
                             label)
        with target.server_lock(ex, lock_wait, "refresh"):
            conn, notes = engine.open_session(target.admin_info())
            out["notes"] += notes
            blocked_now = blocks.read(ex)  # once: this refresh holds the server lock
            try:
                for t in names:
                    db = f"{t}{DATABASE_SUFFIX}"
                    run = engine.latest_run(conn, db)
                    blocked = blocked_now.get(t)
                    # Resumed: an unfinished run of this refresh with the same rules (changed rules need the
                    # source values again, for their fingerprints: restored again).
                    resume = (not restart and run is not None and run.source == f"refresh:{label}"
                              and run.phase not in ("verified", "abandoned") and blocked is not None
                              and run.digest == engine.rules_digest(rules[t]))
                    if not resume:
                        blocks.block(ex, t, REASON.format(src=label))
                        locked = blocks.lock_now(ex, t)
                        say(f"{t}: blocked, {len(locked)} account(s) locked until masking is verified")
                        # Before the data is replaced: no earlier run may be resumed on the new data.
                        engine.abandon_runs(conn, db)
                        r = _restore_tenant(target, source, t, say)
                        out.setdefault("restored", {})[t] = r
                    else:
                        say(f"{t}: resuming masking run {run.id}")
                    res = mask_database(conn, t, rules[t], source=f"refresh:{label}", new_run=not resume,
                                        batch=batch)
                    out["tenants"].append(res)
                    if res["ok"]:
                        blocks.unblock(ex, t)
                        say(f"{t}: masking verified, block lifted")
                    else:
                        out["ok"] = False
                        say(f"{t}: verification FAILED; it stays locked")
            finally:
                conn.close()
            if out["ok"]:
                _apply_accounts(target, ex)
                out["notes"].append("take a backup of the target now (`shared-mysql backup create`): the refreshed "
                                    "data is not in its binlog, so older backups cannot roll forward across it")
    out["total_s"] = round(time.monotonic() - t0, 2)
    return out


def _restore_tenant(target, source, tenant: str, say) -> dict:
    """The source's newest backup of the tenant's database, over the target's (binlog off when allowed: the
    unmasked rows stay out of the target's binlog)."""
    from ..backup.load import Destination, session
    from ..backup.restore import restore

    secure = target.server.paths.secure_files if target.kind == "local" else None
    dest = Destination(target.admin_info(), secure_files=secure, log_bin=False, label=target.config.identifier)
    try:
        session(dest).close()
    except SharedMySQLError:
        dest.log_bin = True  # the admin may not turn the binlog off: engine.open_session said so already
    say(f"{tenant}: restoring the source's newest backup")
    r = restore(source, tenant=tenant, dest=dest, allow_destructive=True, archive_first=False)
    say(f"{tenant}: restored {r['rows_loaded']} row(s) from backup {r['backup']} ({r['backup_time']})")
    return {"backup": r["backup"], "backup_time": r["backup_time"], "rows": r["rows_loaded"]}
