"""Binds a loaded config to its state directory, secret store, server and admin connection.

Only the `local` target exists so far: the embedded server on 127.0.0.1 and the encrypted file store, both under
`.shared-mysql/<identifier>/` next to the config.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from .config import LoadedConfig
from .db import ConnectionInfo, PyMySQLExecutor
from .errors import SecretStoreError, SharedMySQLError
from .secrets import CURRENT, PENDING, secret_json
from .secrets.file import FileSecretStore
from .sql.passwords import generate_password


class LocalTarget:
    def __init__(self, loaded: LoadedConfig):
        self.loaded = loaded
        self.config = loaded.config
        self.state_dir: Path = loaded.state_dir

    @cached_property
    def store(self) -> FileSecretStore:
        return FileSecretStore(self.state_dir / "secrets.enc", self.state_dir / "secrets.key")

    @cached_property
    def server(self):
        from .local import LocalServer

        inst = self.config.instance
        return LocalServer(self.state_dir, host=inst.host, port=self.config.port, parameters=inst.parameters,
                           master_username=inst.master_username)

    @property
    def host(self) -> str:
        return self.config.instance.host

    @property
    def ca(self) -> str:
        return str(self.server.paths.ca)

    # -- master credential ---------------------------------------------------------------------------------
    def ensure_master_secret(self) -> str:
        """The master password, created (pending, then current) on first use; an interrupted change is finished."""
        name = self.config.master_secret_name
        pending = self.store.get(name, PENDING)
        if pending is None and self.store.get(name, CURRENT) is None:
            value = secret_json(engine=self.server.flavor_name, host=self.host, port=self.config.port,
                                username=self.config.instance.master_username, password=generate_password(),
                                dbname=None, ssl_ca=self.ca)
            tags = {"managed-by": "shared-mysql", "instance": self.config.identifier,
                    "environment": self.config.environment, "role": "master"}
            self.store.put_pending({name: (value, tags)})
            pending = value
        if pending is not None:
            # The server is (re)started with the bootstrap file, which sets the master to this password.
            self.store.promote([name])
        return self.store.get(name, CURRENT)["password"]

    def master_password(self) -> str:
        cur = self.store.get(self.config.master_secret_name, CURRENT)
        if cur is None:
            raise SecretStoreError(
                f"no master credential {self.config.master_secret_name} in {self.store.path}; "
                "run `shared-mysql local up` first"
            )
        return cur["password"]

    # -- server ----------------------------------------------------------------------------------------------
    def local_up(self) -> dict:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _ = self.server.binary  # fail early with the install hint, before touching the store
        if self.server.pid() is not None:
            return self.server.status()
        # Only while the server is down: the bootstrap file applies the (possibly new) master password at start.
        password = self.ensure_master_secret()
        return self.server.up(password)

    def admin_info(self) -> ConnectionInfo:
        return ConnectionInfo(self.host, self.config.port, self.config.instance.master_username,
                              self.master_password(), ca=self.ca)

    def executor(self) -> PyMySQLExecutor:
        if not Path(self.ca).exists():
            raise SharedMySQLError(f"{self.ca}: no CA certificate yet; run `shared-mysql local up` first")
        return PyMySQLExecutor.open(self.admin_info())

    @contextmanager
    def lock(self):
        """One apply at a time per instance."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.state_dir / "apply.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SharedMySQLError(
                    f"another shared-mysql apply is running on {self.config.identifier} "
                    f"(lock {self.state_dir / 'apply.lock'}); wait for it to finish"
                ) from None
            yield
        finally:
            os.close(fd)

    # -- tenants ---------------------------------------------------------------------------------------------
    def desired(self, flavor):
        from .tenants import build_desired

        return build_desired(self.config, flavor, host=self.host, port=self.config.port, ca=self.ca)

    def plan(self, ex):
        from .tenants import build_plan, inspect_secrets, inspect_server

        desired = self.desired(ex.flavor)
        actual = inspect_server(ex)
        inspect_secrets(self.store, self.config.identifier, actual)
        return build_plan(desired, actual), desired

    def apply(self, ex, plan, desired, *, allow_destructive: bool = False):
        from .tenants import apply_plan

        return apply_plan(plan, desired, ex, self.store, allow_destructive=allow_destructive)


def open_target(loaded: LoadedConfig) -> LocalTarget:
    return LocalTarget(loaded)
