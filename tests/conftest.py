"""Shared fixtures. Integration tests run a real server through the project's own `local` code, on
127.0.0.1 in a temp dir. Without a server binary they skip loudly; under CI (CI=true) that is a failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from shared_mysql.config import load_config
from shared_mysql.local import find_server_binary

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "shared_mysql"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_server_binary() -> None:
    if find_server_binary() is not None:
        return
    msg = ("no mariadbd/mysqld binary: integration tests need a real server "
           "(run `make test`, which installs mariadb-server)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    print(f"\n*** SKIPPING integration tests: {msg} ***", file=sys.stderr)
    pytest.skip(msg)


def config_text(tenants: dict, port: int, parameters: dict | None = None, **top) -> str:
    doc = {"environment": "test", "identifier": "itest", "target": "local",
           "instance": {"port": port, "parameters": {"max_connections": 200, **(parameters or {})}},
           "tenants": tenants, **top}
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Instance:
    dir: Path
    port: int
    parameters: dict | None = None

    @property
    def config_path(self) -> Path:
        return self.dir / "shared-mysql.yaml"

    def write(self, tenants: dict, parameters: dict | None = None) -> None:
        """Rewrite the config; server parameters stay as the instance was made unless given."""
        if parameters is not None:
            self.parameters = parameters
        self.config_path.write_text(config_text(tenants, self.port, self.parameters))

    def target(self):
        from shared_mysql.target import open_target

        return open_target(load_config(self.config_path))

    def cli(self, *args: str, input: str | None = None, env: dict | None = None, check: bool = False,
            timeout: float = 300) -> subprocess.CompletedProcess:
        e = {k: v for k, v in os.environ.items() if k != "SHARED_MYSQL_CONFIG"}
        e.update(env or {})
        res = subprocess.run([*CLI, *args], cwd=self.dir, input=input, capture_output=True, text=True, env=e,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"{args} exited {res.returncode}: {res.stderr}")
        return res


@pytest.fixture
def instance_factory(tmp_path_factory):
    """Make fresh instances (own dir, port, datadir); every server started is stopped afterwards."""
    made: list[Instance] = []

    def make(tenants: dict | None = None, parameters: dict | None = None, start: bool = True) -> Instance:
        require_server_binary()
        inst = Instance(tmp_path_factory.mktemp("inst"), free_port(), parameters)
        inst.write(tenants or {})
        made.append(inst)
        if start:
            inst.target().local_up()
        return inst

    yield make
    for inst in made:
        stop_servers_under(inst.dir)


def stop_servers_under(directory: Path, timeout: float = 30.0) -> None:
    """Stop every server whose state lives under `directory`, by its pid file: not through the config, which a
    test may have left invalid on purpose (that leaked running servers)."""
    import signal
    import time

    for pidfile in directory.glob(".shared-mysql/*/mysqld.pid"):
        try:
            pid = int(pidfile.read_text().strip())
            if str(directory).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue  # the pid now belongs to something else
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            continue
        deadline = time.monotonic() + timeout
        while _running(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def fake_aws_env(monkeypatch):
    """Credentials and a region for moto's in-process mock_aws(); no endpoint override."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "ap-northeast-2"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
