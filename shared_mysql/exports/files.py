"""Exports as files: `parameters.json` (the same names and values as SSM) and one `<tenant>.env` per tenant.

`parameters.json` is the commit point: the `.env` files are written first, and `read()` reports a tenant's names
only while its `.env` holds exactly what they derive, so a write that failed half-way is planned again. Both are
files in the state dir that anyone may edit: a corrupt `parameters.json` reads as absent (the plan rewrites it),
and an entry that could name a file outside the directory or forge a line (`../`, a newline) is skipped.

Checking 10,000 `.env` files by content costs ~0.2 s per plan, so `exports-index.json` (beside the directory)
remembers the SHA-256 of a `parameters.json` whose every entry passed the checks (with the prefix and the `.env`
layout) and, per file, the `lstat` (inode, size, mtime, ctime) it had when its content was last found to be what
those bytes derive. While the bytes are the same, a file whose `lstat` is unchanged is not read again, and the
entries are not checked one by one again (git's index works the same way). Any write to a file, replacing it, or
a `touch` changes its ctime, which nobody can set back; a file changed within 100 ms of being checked is not
remembered, because file times come from a clock that lags by up to a tick (racy git). The index is a cache:
missing or corrupt, it is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import time
from pathlib import Path
from typing import Callable

from ..config.model import TENANT_NAME_RE
from ..errors import ExportsError, StateError
from ..secrets.file import read_regular, write_private

log = logging.getLogger("shared_mysql.exports")

# Values copied into `.env` files: nothing a shell (`set -a; . ./a.env`) or a dotenv parser would interpret
# (quotes, `$`, backticks, `#`, spaces). Hosts, ports, names and ARNs all fit.
_ENV_VALUE = re.compile(r"[A-Za-z0-9_.:/@+=,%-]*")
_ENV_TENANT_KEYS = ("database-name", "username", "secret-arn")
_TENANT_KEY = re.compile(r"[a-z0-9][a-z0-9-]*")
_TENANT_NAME = TENANT_NAME_RE.pattern.removeprefix("^").removesuffix("$")
_ENV_INSTANCE_KEYS = ("endpoint", "port")
INDEX_NAME = "exports-index.json"
_RACY_NS = 100_000_000


class FileExports:
    def __init__(self, directory: Path, prefix: str):
        self.dir = Path(directory)
        self.prefix = prefix
        # Checked per entry, 30,000 times at 10,000 tenants: built once.
        self._tp = f"{prefix}/tenants/"
        self._instance_env = frozenset(f"{prefix}/{k}" for k in _ENV_INSTANCE_KEYS)
        self._tenant_entry = re.compile(re.escape(self._tp) + f"({_TENANT_NAME})/({_TENANT_KEY.pattern})")

    @property
    def path(self) -> Path:
        return self.dir / "parameters.json"

    def read(self) -> dict[str, str]:
        """What is really published: parameters.json, minus the names of any tenant whose `.env` is missing or
        stale (so the plan puts them again)."""
        stale = set()
        with _EnvIndex(self.dir) as index:
            params = self._load(index)
            tenants = self._tenants(params)
            for tenant, kv in tenants.items():
                if not index.holds(tenant, lambda kv=kv: self._env_text(params, kv)):
                    log.debug("%s.env is missing or out of date: tenant %s's exports will be written again", tenant,
                              tenant)
                    stale.add(tenant)
        if not stale:
            return params
        return {n: v for n, v in params.items() if self._tenant_of(n) not in stale}

    def write(self, put: dict[str, str], delete: list[str]) -> None:
        for name, value in put.items():
            problem = self._problem(name, value)
            if problem:
                raise ExportsError(f"cannot export {name[:200]!r} to {self.path}: {problem}; check the config "
                                   "value it comes from")
        params = self._load()
        params.update(put)
        for name in delete:
            params.pop(name, None)
        self._env_files(params)  # first: parameters.json is the commit point
        write_private(self.path, (json.dumps(params, indent=2, sort_keys=True) + "\n").encode())

    # -- parameters.json ----------------------------------------------------------------------------------
    def _load(self, index: "_EnvIndex | None" = None) -> dict[str, str]:
        """parameters.json's usable entries; {} when it is missing or corrupt (the plan then rewrites it).

        With `index`: bytes whose every entry passed the checks before (same SHA-256, same prefix) are not
        checked entry by entry again (30,000 entries at 10,000 tenants)."""
        try:
            raw = read_regular(self.path)
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror}; fix its permissions, or remove it and "
                             "re-run (it is rewritten)") from exc
        if raw is None:
            return {}
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):  # includes UnicodeDecodeError; RecursionError: nested 10**6 deep
            doc = None
        if not isinstance(doc, dict) or not all(type(k) is str and type(v) is str for k, v in doc.items()):
            log.debug("%s is not a JSON object of strings (%d bytes): treated as absent, rewritten on apply",
                      self.path, len(raw))
            return {}
        digest = None
        if index is not None:
            # What every .env's expected text derives from: these bytes, the prefix, and the .env layout.
            probe = {f"{self.prefix}/endpoint": "h", f"{self.prefix}/port": "1"}
            layout = self._env_text(probe, {"database-name": "d", "username": "u", "secret-arn": "s"})
            digest = f"{hashlib.sha256(raw).hexdigest()}:{hashlib.sha256(self.prefix.encode() + layout).hexdigest()}"
        if digest is not None and index.old_params == digest:
            index.params = digest
            return doc
        params = {}
        for name, value in doc.items():
            problem = self._problem(name, value)
            if problem:
                log.debug("%s: skipping entry %r: %s", self.path, name[:200], problem)
            else:
                params[name] = value
        if digest is not None and len(params) == len(doc):
            index.params = digest
        return params

    def _problem(self, name: str, value: str) -> str | None:
        """Why an entry cannot be exported as files, or None. Checked on what is read back and on what is put."""
        if type(name) is not str or type(value) is not str:
            return "not a string"
        if not (name.isprintable() and value.isprintable()):
            return "contains a control character (a newline would forge a line)"
        if name.startswith(self._tp):
            m = self._tenant_entry.fullmatch(name)
            if m is None:
                return "not {prefix}/tenants/<tenant>/<name> with a valid tenant name and a lowercase name"
            feeds_env = m.group(2) in _ENV_TENANT_KEYS
        else:
            feeds_env = name in self._instance_env
        if feeds_env and not _ENV_VALUE.fullmatch(value):
            return "the value holds characters that a shell or .env parser would interpret"
        return None

    # -- <tenant>.env -------------------------------------------------------------------------------------
    def _tenant_of(self, name: str) -> str | None:
        tp = self._tp
        return name[len(tp):].split("/", 1)[0] if name.startswith(tp) else None

    def _tenants(self, params: dict[str, str]) -> dict[str, dict[str, str]]:
        """tenant -> {key: value}, from entries that passed `_problem` (so tenant names are safe file names)."""
        tenants: dict[str, dict[str, str]] = {}
        tp = self._tp
        n = len(tp)
        for name, value in params.items():
            if name.startswith(tp):
                tenant, _, key = name[n:].partition("/")
                kv = tenants.get(tenant)
                if kv is None:
                    kv = tenants[tenant] = {}
                kv[key] = value
        return tenants

    def _env_text(self, params: dict[str, str], kv: dict[str, str]) -> bytes:
        lines = [f"DB_HOST={params.get(f'{self.prefix}/endpoint', '')}",
                 f"DB_PORT={params.get(f'{self.prefix}/port', '')}",
                 f"DB_NAME={kv.get('database-name', '')}",
                 f"DB_USERNAME={kv.get('username', '')}",
                 f"DB_SECRET_ARN={kv.get('secret-arn', '')}"]
        return ("\n".join(lines) + "\n").encode()

    def _env_files(self, params: dict[str, str]) -> None:
        """`<tenant>.env` for twelve-factor apps: where to connect and which secret holds the password."""
        tenants = self._tenants(params)
        for old in sorted(self.dir.glob("*.env")):
            if old.stem not in tenants and TENANT_NAME_RE.fullmatch(old.stem):  # only files we could have made
                try:
                    old.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise StateError(f"cannot remove {old}: {exc.strerror}; make {self.dir} writable by this user "
                                     "and re-run (parameters.json was not changed)") from exc
        with _EnvIndex(self.dir) as index:
            for tenant, kv in tenants.items():
                data = self._env_text(params, kv)
                if index.holds(tenant, lambda: data):
                    continue  # unchanged: 1000 tenants must not mean 1000 writes per apply
                # Not fsynced: read() checks every .env against parameters.json, so a lost one is written again.
                write_private(self.dir / f"{tenant}.env", data, durable=False)


class _EnvIndex:
    """Which `<tenant>.env` files hold what they should, by `lstat` where a recent content check allows it."""

    def __init__(self, directory: Path):
        self.dir = str(directory)
        # Beside the directory, not in it: the directory is the consumers' (`*.env`, parameters.json).
        self.path = Path(directory).parent / INDEX_NAME
        self.start = time.time_ns()
        self.old: dict[str, list] = {}
        self.new: dict[str, list] = {}
        # SHA-256 of parameters.json's bytes (and of the prefix and .env layout) when all its entries passed:
        # the files remembered were checked against what those bytes derive.
        self.old_params: str | None = None
        self.params: str | None = None

    def __enter__(self) -> "_EnvIndex":
        try:
            raw = read_regular(self.path)
            doc = json.loads(raw) if raw else {}
        except (OSError, ValueError, RecursionError):
            doc = {}
        if isinstance(doc, dict) and isinstance(doc.get("files"), dict):
            self.old = doc["files"]
            self.old_params = doc.get("params") if isinstance(doc.get("params"), str) else None
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None and (self.new != self.old or self.params != self.old_params):
            try:
                write_private(self.path, json.dumps({"files": self.new, "params": self.params},
                                                    separators=(",", ":")).encode(), durable=False)
            except StateError:
                pass  # a cache: the next run checks by content

    @property
    def trusted(self) -> bool:
        """Whether the remembered files were checked against the same expected texts (same parameters.json bytes,
        prefix and .env layout): only then can an unchanged `lstat` stand for a content check."""
        return self.params is not None and self.params == self.old_params

    def holds(self, tenant: str, want: Callable[[], bytes]) -> bool:
        path = f"{self.dir}/{tenant}.env"
        try:
            st = os.lstat(path)
        except OSError:
            return False
        sig = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        if stat.S_ISREG(st.st_mode) and self.trusted and self.old.get(tenant) == sig:
            self.new[tenant] = sig
            return True
        try:
            if read_regular(Path(path)) != want():
                return False
            after = os.lstat(path)
        except OSError:
            return False
        if self.params is not None and [after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns] == sig \
                and st.st_ctime_ns < self.start - _RACY_NS:
            self.new[tenant] = sig
        return True


class NoExports:
    def read(self) -> dict[str, str]:
        return {}

    def write(self, put: dict[str, str], delete: list[str]) -> None:
        return None
