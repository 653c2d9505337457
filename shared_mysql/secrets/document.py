"""Staging-label logic over one JSON document; backends only read and write the document."""

from __future__ import annotations

import secrets as _secrets
import time

from . import CURRENT, PENDING, PREVIOUS

FORMAT = 1


def document_problem(doc: object) -> str | None:
    """What makes `doc` not a store document (never quoting a value), or None when every method can use it.

    Backends check what they read back, so a damaged or hand-edited document is one clear error, not a KeyError
    half-way through an apply."""
    if not isinstance(doc, dict) or not isinstance(doc.get("secrets"), dict):
        return "not an object with a 'secrets' object"
    if doc.get("format", FORMAT) != FORMAT:
        return f"unknown format {str(doc.get('format'))[:20]!r} (this version reads format {FORMAT})"
    for name, s in doc["secrets"].items():
        # Plain loops and exact type checks: this runs over 10,000+ secrets on every load.
        if type(s) is not dict:
            return f"secret {name[:64]!r} lacks tags, versions or stages"
        tags, versions, stages = s.get("tags"), s.get("versions"), s.get("stages")
        if type(tags) is not dict or type(versions) is not dict or type(stages) is not dict:
            return f"secret {name[:64]!r} lacks tags, versions or stages"
        for v in versions.values():
            if type(v) is not dict or type(v.get("value")) is not dict:
                return f"secret {name[:64]!r} has a version without a value object"
        for vid in stages.values():
            if type(vid) is not str or vid not in versions:
                return f"secret {name[:64]!r} has a label pointing to no version"
    return None


class DocumentSecretStore:
    """Implements SecretStore on `{"secrets": {name: {tags, versions, stages}}}`; subclasses persist it."""

    def __init__(self):
        self._doc: dict | None = None

    def _read(self) -> dict:
        raise NotImplementedError

    def _write(self, doc: dict) -> None:
        raise NotImplementedError

    def _load(self) -> dict:
        if self._doc is None:
            self._doc = self._read()
        return self._doc

    def _save(self) -> None:
        self._write(self._doc)

    def reload(self) -> None:
        self._doc = None

    # -- SecretStore ---------------------------------------------------------------------------------------
    def names(self) -> dict[str, dict]:
        return {
            name: {"tags": dict(s["tags"]), "stages": sorted(s["stages"]) if len(s["stages"]) > 1 else list(s["stages"])}
            for name, s in self._load()["secrets"].items()
        }

    def reference(self, name: str) -> str | None:
        """What consumers are told to read: the secret's name (AWS stores give an ARN)."""
        return name if name in self._load()["secrets"] else None

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

    def version_id(self, name: str, stage: str = CURRENT) -> str | None:
        s = self._load()["secrets"].get(name)
        return s["stages"].get(stage) if s else None

    def created(self, name: str, stage: str = CURRENT) -> float | None:
        s = self._load()["secrets"].get(name)
        vid = s["stages"].get(stage) if s else None
        when = s["versions"][vid].get("created") if vid else None
        return float(when) if isinstance(when, (int, float)) and not isinstance(when, bool) else None

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
            # As Secrets Manager does: a secret's first version also becomes AWSCURRENT.
            s["stages"].setdefault(CURRENT, vid)
            if old is not None:
                self._prune(s, old)
        self._save()

    def promote(self, names: list[str], tags: dict[str, str] | None = None) -> None:
        doc = self._load()
        changed = False
        for name in names:
            s = doc["secrets"].get(name)
            if not s or PENDING not in s["stages"]:
                continue
            if tags:
                s["tags"].update(tags)
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


class MemorySecretStore(DocumentSecretStore):
    """In-memory store for tests; `writes` counts durable writes."""

    def __init__(self):
        super().__init__()
        self.writes = 0
        self.saved: dict = {"format": 1, "secrets": {}}

    def _read(self) -> dict:
        import copy

        return copy.deepcopy(self.saved)

    def _write(self, doc: dict) -> None:
        import copy

        self.writes += 1
        self.saved = copy.deepcopy(doc)
