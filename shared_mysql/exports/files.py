"""Exports as files: `parameters.json` (the same names and values as SSM) and one `<tenant>.env` per tenant.

`parameters.json` is the commit point: the `.env` files are written first, and `read()` reports a tenant's names
only while its `.env` holds exactly what they derive, so a write that failed half-way is planned again. Both are
files in the state dir that anyone may edit: a corrupt `parameters.json` reads as absent (the plan rewrites it),
and an entry that could name a file outside the directory or forge a line (`../`, a newline) is skipped.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from ..config.model import TENANT_NAME_RE
from ..errors import ExportsError, StateError
from ..secrets.file import read_regular, write_private

log = logging.getLogger("shared_mysql.exports")

# Values copied into `.env` files: nothing a shell (`set -a; . ./a.env`) or a dotenv parser would interpret
# (quotes, `$`, backticks, `#`, spaces). Hosts, ports, names and ARNs all fit.
_ENV_VALUE = re.compile(r"[A-Za-z0-9_.:/@+=,%-]*")
_ENV_TENANT_KEYS = ("database-name", "username", "secret-arn")
_TENANT_KEY = re.compile(r"[a-z0-9][a-z0-9-]*")
_ENV_INSTANCE_KEYS = ("endpoint", "port")


class FileExports:
    def __init__(self, directory: Path, prefix: str):
        self.dir = Path(directory)
        self.prefix = prefix
        # Checked per entry, 30,000 times at 10,000 tenants: built once.
        self._tp = f"{prefix}/tenants/"
        self._instance_env = frozenset(f"{prefix}/{k}" for k in _ENV_INSTANCE_KEYS)

    @property
    def path(self) -> Path:
        return self.dir / "parameters.json"

    def read(self) -> dict[str, str]:
        """What is really published: parameters.json, minus the names of any tenant whose `.env` is missing or
        stale (so the plan puts them again)."""
        params = self._load()
        tenants = self._tenants(params)
        stale = set()
        for tenant in tenants:
            env = self.dir / f"{tenant}.env"
            try:
                ok = read_regular(env) == self._env_text(params, tenants[tenant])
            except OSError:
                ok = False
            if not ok:
                log.debug("%s is missing or out of date: tenant %s's exports will be written again", env, tenant)
                stale.add(tenant)
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
    def _load(self) -> dict[str, str]:
        """parameters.json's usable entries; {} when it is missing or corrupt (the plan then rewrites it)."""
        try:
            raw = read_regular(self.path)
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror}; fix its permissions, or remove it and "
                             "re-run (it is rewritten)") from exc
        if raw is None:
            return {}
        try:
            doc = json.loads(raw)
        except ValueError:  # includes UnicodeDecodeError
            doc = None
        if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
            log.debug("%s is not a JSON object of strings (%d bytes): treated as absent, rewritten on apply",
                      self.path, len(raw))
            return {}
        params = {}
        for name, value in doc.items():
            problem = self._problem(name, value)
            if problem:
                log.debug("%s: skipping entry %r: %s", self.path, name[:200], problem)
            else:
                params[name] = value
        return params

    def _problem(self, name: str, value: str) -> str | None:
        """Why an entry cannot be exported as files, or None. Checked on what is read back and on what is put."""
        if not isinstance(name, str) or not isinstance(value, str):
            return "not a string"
        if not name.isprintable() or not value.isprintable():
            return "contains a control character (a newline would forge a line)"
        feeds_env = name in self._instance_env
        tp = self._tp
        if name.startswith(tp):
            tenant, _, key = name[len(tp):].partition("/")
            if not TENANT_NAME_RE.fullmatch(tenant) or not _TENANT_KEY.fullmatch(key):
                return "not {prefix}/tenants/<tenant>/<name> with a valid tenant name and a lowercase name"
            feeds_env = key in _ENV_TENANT_KEYS
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
        tp = f"{self.prefix}/tenants/"
        for name, value in params.items():
            if name.startswith(tp):
                tenant, key = name[len(tp):].split("/", 1)
                tenants.setdefault(tenant, {})[key] = value
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
        for tenant, kv in tenants.items():
            path, data = self.dir / f"{tenant}.env", self._env_text(params, kv)
            try:
                if read_regular(path) == data:
                    continue  # unchanged: 1000 tenants must not mean 1000 writes per apply
            except OSError:
                pass  # not a regular file: replaced below
            # Not fsynced: read() checks every .env against parameters.json, so a lost one is written again.
            write_private(path, data, durable=False)


class NoExports:
    def read(self) -> dict[str, str]:
        return {}

    def write(self, put: dict[str, str], delete: list[str]) -> None:
        return None
