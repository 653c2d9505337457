"""`backup verify` and `backup prune`."""

from __future__ import annotations

import json
import time
import zlib

from ..secrets.file import write_private
from .archive import Archive, number
from .restore import check_manifest
from .sealed import CorruptFile, read_sealed, sha256_file, unwrap_key
from .store import VERIFIED, Backup, BackupDir, backup_dir, iso


def verify(target, backup: Backup) -> dict:
    """Every file present, of its size and checksum, authenticated, decompressing to the manifest's rows and
    CRC32; the manifest's MAC intact. The result is recorded beside the backup (`list` shows it)."""
    problems: list[str] = []
    try:
        check_manifest(target, backup)
        key = unwrap_key(target, backup.manifest["key"], f"backup {backup.id}")
    except Exception as exc:  # noqa: BLE001 - reported as the backup's problem
        problems.append(str(exc))
        key = None
    listed = set()
    files = rows = 0
    for db, ent in backup.manifest["databases"].items():
        for tname, tent in ent["tables"].items():
            for f in tent["files"]:
                listed.add(f["name"])
                files += 1
                p = backup.path / f["name"]
                label = f"{backup.id}/{f['name']}"
                if p.is_symlink() or not p.exists():
                    problems.append(f"{label}: missing" + (" (a symlink in its place)" if p.is_symlink() else ""))
                    continue
                if not p.is_file():
                    problems.append(f"{label}: not a regular file (changed)")
                    continue
                size = p.stat().st_size
                if size != f["size"]:
                    problems.append(f"{label}: {size} bytes, the manifest says {f['size']} (truncated or changed)")
                    continue
                if sha256_file(p) != f["sha256"]:
                    problems.append(f"{label}: checksum differs from the manifest (corrupted)")
                    continue
                if key is None:
                    continue
                crc, lines, raw = 0, 0, 0
                try:
                    with open(p, "rb") as fh:
                        for piece in read_sealed(fh, key, label, label):
                            crc = zlib.crc32(piece, crc)
                            lines += piece.count(b"\n")
                            raw += len(piece)
                except CorruptFile as exc:
                    problems.append(str(exc))
                    continue
                if (lines, crc, raw) != (f["rows"], f["crc32"], f["raw_bytes"]):
                    problems.append(f"{label}: {lines} rows / crc {crc}, the manifest says {f['rows']} / {f['crc32']}")
                rows += lines
    for p in backup.path.rglob("*.sme"):
        rel = str(p.relative_to(backup.path))
        if rel not in listed:
            problems.append(f"{backup.id}/{rel}: not in the manifest (planted or left over)")
    warnings = []
    arch = Archive(target)
    have = arch.files()
    start = backup.position["file"]
    if start not in have:
        warnings.append(f"binlog {start} (this backup's position) is not archived: it can be restored as it was, "
                        "not rolled forward")
    else:
        warnings += [p for p in arch.verify() if _after(p, start)]
    res = {"id": backup.id, "ok": not problems, "at": iso(time.time()), "files": files, "rows": rows,
           "problems": problems, "warnings": warnings}
    write_private(backup.path / VERIFIED, json.dumps(res).encode(), durable=False)
    return res


def _after(problem: str, start: str) -> bool:
    try:
        name = problem.split()[1].split("..")[0]
        return number(name) >= number(start)
    except Exception:  # noqa: BLE001
        return True


def prune_plan(target, now: float | None = None) -> dict:
    """What `prune` deletes: backups older than backup_retention_period days, except the newest one at or before
    the cutoff (the base for restores to the start of the window), the newest verified one and the newest one;
    binlogs older than the oldest kept backup's; stale partial directories."""
    now = time.time() if now is None else now
    store = BackupDir(backup_dir(target))
    days = target.config.instance.backup_retention_period
    cutoff = now - days * 86400
    backups = store.list()
    keep: set[str] = set()
    if backups:
        keep.add(backups[-1].id)
        ok = [b for b in backups if (b.verified or {}).get("ok")]
        if ok:
            keep.add(ok[-1].id)
        before = [b for b in backups if b.time <= cutoff and not b.manifest.get("partial")]
        if before:
            keep.add(before[-1].id)
        keep |= {b.id for b in backups if b.time > cutoff}
    drop = [b for b in backups if b.id not in keep]
    kept = [b for b in backups if b.id in keep]
    binlogs: list[str] = []
    arch = Archive(target)
    if kept:
        oldest = min(number(b.position["file"]) for b in kept)
        binlogs = [n for n in arch.files() if number(n) < oldest]
    partials = [n for n in store.broken() if n.startswith((".partial-", ".restore-"))]
    return {"cutoff": iso(cutoff), "retention_days": days, "backups": [b.id for b in drop],
            "kept": [b.id for b in kept], "binlogs": binlogs, "partials": partials}


def prune(target, plan: dict) -> dict:
    from .create import _remove_stale_partials

    store = BackupDir(backup_dir(target))
    for bid in plan["backups"]:
        store.remove(store.root / bid)
    arch = Archive(target)
    files = arch.files()
    st = arch.state()
    for n in plan["binlogs"]:
        src = files.get(n) or {}
        for p in src.values():
            p.unlink(missing_ok=True)
        st["files"].pop(n, None)
    if plan["binlogs"]:
        arch.save(st)
    removed = _remove_stale_partials(store)
    return {**plan, "partials": removed}
