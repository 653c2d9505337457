"""Exports as files: `parameters.json` (the same names and values as SSM) and one `<tenant>.env` per tenant."""

from __future__ import annotations

import json
from pathlib import Path

from ..secrets.file import write_private


class FileExports:
    def __init__(self, directory: Path, prefix: str):
        self.dir = Path(directory)
        self.prefix = prefix

    @property
    def path(self) -> Path:
        return self.dir / "parameters.json"

    def read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def write(self, put: dict[str, str], delete: list[str]) -> None:
        params = self.read()
        params.update(put)
        for name in delete:
            params.pop(name, None)
        write_private(self.path, (json.dumps(params, indent=2, sort_keys=True) + "\n").encode())
        self._env_files(params)

    def _env_files(self, params: dict[str, str]) -> None:
        """`<tenant>.env` for twelve-factor apps: where to connect and which secret holds the password."""
        tenants: dict[str, dict[str, str]] = {}
        tp = f"{self.prefix}/tenants/"
        for name, value in params.items():
            if name.startswith(tp):
                tenant, key = name[len(tp):].split("/", 1)
                tenants.setdefault(tenant, {})[key] = value
        for old in self.dir.glob("*.env"):
            if old.stem not in tenants:
                old.unlink()
        for tenant, kv in tenants.items():
            lines = [f"DB_HOST={params.get(f'{self.prefix}/endpoint', '')}",
                     f"DB_PORT={params.get(f'{self.prefix}/port', '')}",
                     f"DB_NAME={kv.get('database-name', '')}",
                     f"DB_USERNAME={kv.get('username', '')}",
                     f"DB_SECRET_ARN={kv.get('secret-arn', '')}"]
            path, data = self.dir / f"{tenant}.env", ("\n".join(lines) + "\n").encode()
            try:
                if path.read_bytes() == data:
                    continue  # unchanged: 1000 tenants must not mean 1000 writes per apply
            except FileNotFoundError:
                pass
            write_private(path, data, durable=False)  # derived from parameters.json, rewritten on every apply


class NoExports:
    def read(self) -> dict[str, str]:
        return {}

    def write(self, put: dict[str, str], delete: list[str]) -> None:
        return None
