"""What the bench scripts share: the repository root on sys.path, free ports, fresh embedded servers."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded(base: Path, name: str, tenant_lines: list[str], max_connections: int):
    """A fresh embedded server in base/name with these `tenants:` lines, started (not applied)."""
    from shared_mysql.config import load_config
    from shared_mysql.target import LocalTarget

    d = base / name
    d.mkdir()
    (d / "shared-mysql.yaml").write_text(
        f"environment: bench\nidentifier: bench\ninstance:\n  port: {free_port()}\n"
        f"  parameters: {{max_connections: {max_connections}}}\ntenants:\n" + "\n".join(tenant_lines) + "\n")
    t = LocalTarget(load_config(d / "shared-mysql.yaml"))
    t.local_up()
    return t
