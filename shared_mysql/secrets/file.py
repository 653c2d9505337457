"""Encrypted local secret store: one Fernet-encrypted JSON document, written atomically.

The key lives apart from the data: `SHARED_MYSQL_SECRETS_KEY` (a Fernet key) when set, otherwise a key file
created with mode 0600. Writes go to a temp file in the same directory, are fsynced, then renamed over the old
file, so a crash leaves either the old or the new document, never a torn one.
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import tempfile
import time
from pathlib import Path

from ..errors import SecretStoreError
from . import CURRENT, PENDING, PREVIOUS

KEY_ENV = "SHARED_MYSQL_SECRETS_KEY"
_FORMAT = 1


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, mode 0600, durable before returning."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class FileSecretStore:
    def __init__(self, path: Path, key_path: Path):
        self.path = Path(path)
        self.key_path = Path(key_path)
        self._fernet = None
        self._doc: dict | None = None

    # -- key and document -------------------------------------------------------------------------------
    def _cipher(self):
        if self._fernet is None:
            from cryptography.fernet import Fernet

            key = os.environ.get(KEY_ENV)
            source = f"${KEY_ENV}"
            if not key:
                source = str(self.key_path)
                if self.key_path.exists():
                    mode = self.key_path.stat().st_mode & 0o777
                    if mode & 0o077:
                        raise SecretStoreError(
                            f"{self.key_path}: key file is readable by others (mode {mode:o}); run chmod 600 on it"
                        )
                    key = self.key_path.read_text().strip()
                elif self.path.exists():
                    raise SecretStoreError(
                        f"{self.path}: the store exists but its key {self.key_path} is missing; restore the key "
                        f"file or set {KEY_ENV}"
                    )
                else:
                    key = Fernet.generate_key().decode()
                    write_private(self.key_path, key.encode() + b"\n")
            try:
                self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
            except (ValueError, TypeError):
                raise SecretStoreError(f"{source}: not a valid Fernet key (32 url-safe base64-encoded bytes)") from None
        return self._fernet

    def _load(self) -> dict:
        if self._doc is None:
            from cryptography.fernet import InvalidToken

            if not self.path.exists():
                self._cipher()  # creates the key on first use
                self._doc = {"format": _FORMAT, "secrets": {}}
            else:
                try:
                    plain = self._cipher().decrypt(self.path.read_bytes())
                except InvalidToken:
                    raise SecretStoreError(
                        f"{self.path}: cannot decrypt the secret store with the configured key; "
                        f"use the key it was written with ({self.key_path} or ${KEY_ENV})"
                    ) from None
                self._doc = json.loads(plain)
        return self._doc

    def _save(self) -> None:
        data = self._cipher().encrypt(json.dumps(self._doc, separators=(",", ":")).encode())
        write_private(self.path, data)

    def reload(self) -> None:
        self._doc = None

    # -- SecretStore ---------------------------------------------------------------------------------------
    def names(self) -> dict[str, dict]:
        return {
            name: {"tags": dict(s.get("tags", {})), "stages": sorted(s["stages"])}
            for name, s in self._load()["secrets"].items()
        }

    def get(self, name: str, stage: str = CURRENT) -> dict | None:
        s = self._load()["secrets"].get(name)
        if not s or stage not in s["stages"]:
            return None
        return dict(s["versions"][s["stages"][stage]]["value"])

    def get_all(self, stage: str = CURRENT) -> dict[str, dict]:
        out = {}
        for name, s in self._load()["secrets"].items():
            vid = s["stages"].get(stage)
            if vid is not None:
                out[name] = dict(s["versions"][vid]["value"])
        return out

    def put_pending(self, values: dict[str, tuple[dict, dict]]) -> None:
        if not values:
            return
        doc = self._load()
        now = time.time()
        for name, (value, tags) in values.items():
            s = doc["secrets"].setdefault(name, {"tags": {}, "versions": {}, "stages": {}})
            s["tags"].update(tags)
            old = s["stages"].get(PENDING)
            vid = _secrets.token_hex(16)
            s["versions"][vid] = {"value": value, "created": now}
            s["stages"][PENDING] = vid
            if old is not None:
                self._prune(s, old)
        self._save()

    def promote(self, names: list[str]) -> None:
        doc = self._load()
        changed = False
        for name in names:
            s = doc["secrets"].get(name)
            if not s or PENDING not in s["stages"]:
                continue
            new = s["stages"].pop(PENDING)
            old_current = s["stages"].get(CURRENT)
            old_previous = s["stages"].get(PREVIOUS)
            s["stages"][CURRENT] = new
            if old_current is not None and old_current != new:
                s["stages"][PREVIOUS] = old_current
            if old_previous is not None:
                self._prune(s, old_previous)
            changed = True
        if changed:
            self._save()

    def delete(self, names: list[str]) -> None:
        doc = self._load()
        hit = [n for n in names if doc["secrets"].pop(n, None) is not None]
        if hit:
            self._save()

    @staticmethod
    def _prune(s: dict, vid: str) -> None:
        """Drop a version that no label points to any more (Secrets Manager calls these deprecated)."""
        if vid not in s["stages"].values():
            s["versions"].pop(vid, None)
