"""Read and validate the config file; every failure is one ConfigError line naming file, key and fix."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..errors import ConfigError
from .model import Config

DEFAULT_NAME = "shared-mysql.yaml"
ENV_VAR = "SHARED_MYSQL_CONFIG"


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: Path

    @property
    def state_dir(self) -> Path:
        """Everything instance-specific is keyed by the instance identifier."""
        return self.path.parent / ".shared-mysql" / self.config.identifier

    def resolve(self, p: str) -> Path:
        """A path from the config, relative to the config file's directory."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else self.path.parent / q


def find_config_path(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path.cwd() / DEFAULT_NAME


def _read_config_bytes(path: Path, read_regular) -> bytes:
    """The config's bytes; a FIFO or device is refused (reading one hung), a missing file raises FileNotFoundError.
    The config itself may be a symlink (to a shared checkout, say): it is resolved first."""
    data = read_regular(path.resolve())
    if data is None:
        raise FileNotFoundError(str(path))
    return data


def load_config(explicit: str | os.PathLike | None = None) -> LoadedConfig:
    path = find_config_path(explicit)
    try:
        from ..secrets.file import read_regular

        raw = _read_config_bytes(path, read_regular)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; run `shared-mysql init` to write an example") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})") from exc
    cache = path.resolve().parent / ".shared-mysql" / "config-cache.json" if len(text) >= CACHE_MIN_BYTES else None
    return LoadedConfig(parse_config(text, str(path), cache=cache), path.resolve())


# YAML parsing dominates loading a big config (10,000 tenants: ~0.35 s with libyaml, whose resolver and
# constructor run in Python); a config of this size or more keeps its parsed form beside the state, keyed by
# the SHA-256 of the file's text, and only re-parses when the text changes. Validation always runs.
CACHE_MIN_BYTES = 64 * 1024


def _json_exact(obj) -> bool:
    """True when JSON would give back exactly `obj` (no dates, sets, bytes, non-string keys, nan)."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            if not all(type(k) is str for k in o):
                return False
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
        elif isinstance(o, float):
            if o != o or o in (float("inf"), float("-inf")):
                return False
        elif o is not None and type(o) not in (str, int, bool):
            return False
    return True


def _cached(cache: Path, digest: str):
    import json

    try:
        st = cache.stat()
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return None  # only a cache that nobody else could have written
        doc = json.loads(cache.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return doc.get("data") if isinstance(doc, dict) and doc.get("sha256") == digest else None


def _store_cache(cache: Path, digest: str, data) -> None:
    import json

    from ..errors import SharedMySQLError
    from ..secrets.file import write_private

    if not _json_exact(data):
        return
    try:
        write_private(cache, json.dumps({"sha256": digest, "data": data}, separators=(",", ":")).encode(),
                      durable=False)
    except SharedMySQLError:
        pass  # a cache: the next run parses again


def parse_config(text: str, source: str = DEFAULT_NAME, *, cache: Path | None = None) -> Config:
    digest = data = None
    if cache is not None:
        import hashlib

        digest = hashlib.sha256(text.encode()).hexdigest()
        data = _cached(cache, digest)
        if data is not None:
            return _validate(data, source)
    data = _parse_yaml(text, source)
    config = _validate(data, source)
    if cache is not None:
        _store_cache(cache, digest, data)
    return config


def _parse_yaml(text: str, source: str):
    import yaml

    from .yamlload import ConfigLoader, DuplicateKeyError

    try:
        data = yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise ConfigError(f"{source}: line {exc.line}: duplicate key {exc.key!r} (the second value would "
                          "silently win); keep one") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}:{where}: {problem}; fix the YAML syntax") from None
    return data


def _validate(data, source: str) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (environment:, identifier:, tenants: ...)")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_one_line(exc)}") from None


_PLAIN_KEY = re.compile(r"[\w.:/@+-]+", re.ASCII)


# The fix for a value of the wrong type (pydantic says what is wrong, not what to write).
_TYPE_HINTS = {
    "bool_type": "write true or false",
    "string_type": "write text, quoted if it could be read as a number or a boolean",
    "int_type": "write a whole number", "int_parsing": "write a whole number",
    "float_type": "write a number", "float_parsing": "write a number",
    "dict_type": "write a mapping (key: value lines)", "list_type": "write a list ([a, b] or - lines)",
    "tuple_type": "write a list ([a, b] or - lines)", "literal_error": "use one of the values listed",
}


def _one_line(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    parts = [p for p in err["loc"] if p not in ("__root__",)]
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if parts and parts[-1] == "[key]":  # pydantic's marker for a mapping's key rather than its value
        parts, msg = parts[:-1], f"key: {msg}"
    # A key from the file is shown quoted when it is not a plain name (it may hold a tab or a newline).
    loc = ".".join(str(p) if isinstance(p, int) or _PLAIN_KEY.fullmatch(p) else repr(p) for p in parts)
    if loc and msg.startswith((f"{loc}.", f"{loc}:")):
        loc = ""  # the validator named the key itself, e.g. instance.parameters.<name>
    if err["type"] == "extra_forbidden":
        msg = "unknown key; check the spelling against the config reference in README.md"
    elif err["type"] == "missing":
        msg = "required key is missing; add it (the config reference in README.md shows an example)"
    elif err["type"] in _TYPE_HINTS:
        msg = f"{msg}; {_TYPE_HINTS[err['type']]}"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{loc}: {msg}{suffix}" if loc else f"{msg}{suffix}"
