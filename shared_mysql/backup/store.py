"""The backup directory: one directory per backup with its manifest, the binlog archive, and the locks.

    <dir>/<id>/manifest.json       written last; a backup without it is not a backup
    <dir>/<id>/<db>/<table>.<n>.tsv.sme   sealed (sealed.py) chunks of rows
    <dir>/<id>/verified.json       the last `backup verify` result
    <dir>/.partial-<id>/           a backup being made; renamed to <id>/ only when complete (a kill leaves it
                                   here, never "latest"; `prune` and the next `create` remove stale ones)
    <dir>/binlog/                  the archive (archive.py)

Ids sort by time (`20261126T101500Z-1a2b`), so the newest complete backup is the last directory with a manifest.
The manifest carries an HMAC keyed from the backup's data key: an edited manifest fails `verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SharedMySQLError, StateError
from ..secrets.file import private_dirs, write_private

ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")
MANIFEST = "manifest.json"
VERIFIED = "verified.json"
FORMAT = 1


def backup_dir(target) -> Path:
    d = target.config.backup.dir
    return target.loaded.resolve(d) if d else target.state_dir / "backups"


def new_id(now: float | None = None) -> str:
    t = time.gmtime(now if now is not None else time.time())
    return time.strftime("%Y%m%dT%H%M%SZ", t) + "-" + os.urandom(2).hex()


def mac_key(data_key: bytes) -> bytes:
    return hmac.new(data_key, b"shared-mysql manifest", hashlib.sha256).digest()


def manifest_mac(doc: dict, key: bytes) -> str:
    body = {k: v for k, v in doc.items() if k != "mac"}
    return hmac.new(key, json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()


@dataclass
class Backup:
    id: str
    path: Path
    manifest: dict

    @property
    def time(self) -> float:
        return float(self.manifest["snapshot_time"])

    @property
    def position(self) -> dict:
        return self.manifest["position"]

    @property
    def size(self) -> int:
        return int(self.manifest.get("size", 0))

    @property
    def verified(self) -> dict | None:
        try:
            return json.loads((self.path / VERIFIED).read_text())
        except (OSError, ValueError):
            return None

    def summary(self) -> dict:
        v = self.verified
        m = self.manifest
        return {"id": self.id, "time": iso(self.time), "position": m["position"], "size": self.size,
                "raw_size": m.get("raw_size"), "databases": sorted(m["databases"]),
                "tenants": m.get("tenants", {}), "partial": bool(m.get("partial")),
                "lock_ms": m.get("lock", {}).get("held_ms"), "duration_s": m.get("duration_s"),
                "verified": None if v is None else {"ok": v.get("ok"), "at": v.get("at")}}


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class BackupDir:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def binlog(self) -> Path:
        return self.root / "binlog"

    def ensure(self) -> None:
        private_dirs(self.root)
        try:
            os.chmod(self.root, 0o700)
        except OSError as exc:
            raise StateError(f"{self.root}: cannot make the backup directory private: {exc.strerror}") from None

    def partial(self, bid: str) -> Path:
        return self.root / f".partial-{bid}"

    def list(self) -> list[Backup]:
        """Complete backups, oldest first. A directory whose manifest is unreadable is skipped here and reported
        by `verify`/`list` as broken (broken())."""
        out = []
        if not self.root.is_dir():
            return out
        for d in sorted(self.root.iterdir()):
            if not ID_RE.fullmatch(d.name) or not d.is_dir():
                continue
            try:
                m = json.loads((d / MANIFEST).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(m, dict) and m.get("format") == FORMAT and m.get("id") == d.name:
                out.append(Backup(d.name, d, m))
        # By the snapshot's time, not the name: two backups in one second have random suffixes.
        out.sort(key=lambda b: (float(b.manifest.get("snapshot_time") or 0), float(b.manifest.get("started_at") or 0)))
        return out

    def broken(self) -> list[str]:
        """Backup directories without a readable manifest (interrupted, or damaged)."""
        good = {b.id for b in self.list()}
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir()
                      if d.is_dir() and (d.name.startswith((".partial-", ".restore-")) or (ID_RE.fullmatch(d.name)
                                                                                             and d.name not in good)))

    def get(self, bid: str) -> Backup:
        if not ID_RE.fullmatch(bid or ""):
            raise SharedMySQLError(f"{bid!r} is not a backup id (like 20261126T101500Z-1a2b); `shared-mysql backup "
                                   "list` shows them")
        for b in self.list():
            if b.id == bid:
                return b
        if (self.root / bid).is_dir():
            raise SharedMySQLError(f"backup {bid}: its manifest is missing or unreadable (interrupted or damaged); "
                                   "it cannot be restored")
        raise SharedMySQLError(f"no backup {bid} in {self.root}; `shared-mysql backup list` shows them")

    def latest(self, before: float | None = None, *, full: bool = False) -> Backup | None:
        for b in reversed(self.list()):
            if full and b.manifest.get("partial"):
                continue
            if before is None or int(b.time) <= before:
                return b
        return None

    def commit(self, bid: str, manifest: dict) -> Path:
        """Write the manifest into the partial directory, then rename it into place (atomic)."""
        part = self.partial(bid)
        write_private(part / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        final = self.root / bid
        os.rename(part, final)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return final

    def remove(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
