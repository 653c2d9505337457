"""Versioned secret store with Secrets Manager's staging labels, so rotation works the same on every backend.

Labels: AWSCURRENT (what clients use), AWSPENDING (written before the database is changed),
AWSPREVIOUS (the one before current). Batch methods keep apply to one durable write per phase.
"""

from __future__ import annotations

from typing import Protocol

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
# On a secret `apply` attached to a rotation schedule (secrets.rotation_schedule): only those are detached again.
SCHEDULE_TAG = "rotation-schedule"


class SecretStore(Protocol):
    def names(self) -> dict[str, dict]:
        """Every secret's name -> {"tags": {...}, "stages": [labels present]}."""

    def reference(self, name: str) -> str | None:
        """How consumers refer to the secret (an ARN on AWS), or None when it does not exist."""

    def reload(self) -> None:
        """Forget anything cached; the next read sees the backend as it is now."""

    def get(self, name: str, stage: str = CURRENT) -> dict | None:
        """The secret JSON at a stage, or None when the secret or the stage is missing."""

    def get_all(self, stage: str = CURRENT) -> dict[str, dict]:
        """Every secret's value at a stage (one read)."""

    def put_pending(self, values: dict[str, tuple[dict, dict]]) -> None:
        """name -> (secret JSON, tags): store new versions labelled AWSPENDING, durably, in one write."""

    def promote(self, names: list[str], tags: dict[str, str] | None = None) -> None:
        """Move AWSCURRENT to AWSPENDING's version (old current becomes AWSPREVIOUS), in one write; `tags` are
        set on the promoted secrets in the same step (rotation records `rotated-at`)."""

    def version_id(self, name: str, stage: str = CURRENT) -> str | None:
        """The id of the version a stage points to (None when the secret or the stage is missing)."""

    def created(self, name: str, stage: str = CURRENT) -> float | None:
        """When the version a stage points to was written (epoch seconds), or None when unknown."""

    def delete(self, names: list[str]) -> None:
        """Remove secrets entirely, in one write."""


def secret_json(*, engine: str, host: str, port: int, username: str, password: str, dbname: str | None,
                ssl_ca: str | None) -> dict:
    """The RDS secret format: engine, host, port, username, password, dbname (+ ssl_ca)."""
    out = {"engine": engine, "host": host, "port": port, "username": username, "password": password,
           "dbname": dbname}
    if ssl_ca:
        out["ssl_ca"] = ssl_ca
    return out
