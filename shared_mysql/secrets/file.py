"""Encrypted local secret store: one Fernet-encrypted JSON document, written atomically.

The key lives apart from the data: `SHARED_MYSQL_SECRETS_KEY` (a Fernet key) when set, otherwise a key file
created with mode 0600. Writes go to a temp file in the same directory, are fsynced, then renamed over the old
file, so a crash leaves either the old or the new document, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import SecretStoreError
from .document import DocumentSecretStore

KEY_ENV = "SHARED_MYSQL_SECRETS_KEY"
_FORMAT = 1


def write_private(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Atomically replace `path` with `data`, mode 0600; fsynced (file and directory) unless `durable=False`,
    for derived files that the next run regenerates anyway."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
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


class FileSecretStore(DocumentSecretStore):
    def __init__(self, path: Path, key_path: Path):
        super().__init__()
        self.path = Path(path)
        self.key_path = Path(key_path)
        self._fernet = None

    # -- key and document -------------------------------------------------------------------------------
    def _cipher(self, create: bool = False):
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
                elif create:
                    key = Fernet.generate_key().decode()
                    write_private(self.key_path, key.encode() + b"\n")
                else:
                    raise SecretStoreError(f"{self.key_path}: no key yet; nothing has been stored")
            try:
                self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
            except (ValueError, TypeError):
                raise SecretStoreError(f"{source}: not a valid Fernet key (32 url-safe base64-encoded bytes)") from None
        return self._fernet

    def _read(self) -> dict:
        from cryptography.fernet import InvalidToken

        if not self.path.exists():
            return {"format": _FORMAT, "secrets": {}}  # the key is created on the first write
        try:
            plain = self._cipher().decrypt(self.path.read_bytes())
        except InvalidToken:
            raise SecretStoreError(
                f"{self.path}: cannot decrypt the secret store with the configured key; "
                f"use the key it was written with ({self.key_path} or ${KEY_ENV})"
            ) from None
        return json.loads(plain)

    def _write(self, doc: dict) -> None:
        write_private(self.path, self._cipher(create=True).encrypt(json.dumps(doc, separators=(",", ":")).encode()))

