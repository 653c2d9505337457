"""Read and validate the config file; every failure is one ConfigError line naming file, key and fix."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
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


def load_config(explicit: str | os.PathLike | None = None) -> LoadedConfig:
    path = find_config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; run `shared-mysql init` to write an example") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})") from exc
    return LoadedConfig(parse_config(text, str(path)), path.resolve())


def parse_config(text: str, source: str = DEFAULT_NAME) -> Config:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}:{where}: {problem}; fix the YAML syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (environment:, identifier:, tenants: ...)")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_one_line(exc)}") from None


def _one_line(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"] if p not in ("__root__",))
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "extra_forbidden":
        msg = "unknown key; check the spelling against the config reference in README.md"
    elif err["type"] == "missing":
        msg = "required key is missing"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{loc}: {msg}{suffix}" if loc else f"{msg}{suffix}"
