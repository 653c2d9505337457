"""Migration files as Flyway reads them: names, versions, descriptions, checksums. Pure but for reading files.

Names (Flyway's ResourceNameParser): `V<version>__<description>.sql` (versioned), `R__<description>.sql`
(repeatable); the suffix is stripped once, case-insensitively; the name is split at the first `__`; underscores in
the description become spaces; `_` in a version becomes `.` and that form is what the history stores (V1_1 ->
1.1, V001 -> 001). Versions compare numerically part by part with trailing zero parts dropped (1.10 > 1.9, 001 ==
1, 1.0 == 1). Checksums (ChecksumCalculator): CRC32 over the UTF-8 text without a leading BOM and without any CR
or LF, as a signed 32-bit int -- so LF, CRLF and CR give the same value.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

SUFFIX = ".sql"
DESCRIPTION_MAX = 200
SCRIPT_MAX = 1000


def checksum(raw: bytes, encoding: str = "utf-8") -> int:
    """Flyway's checksum of a script's bytes."""
    text = raw.decode(encoding)  # strict, like Java's decoder: a file in another encoding is an error
    if text.startswith("\ufeff"):
        text = text[1:]
    c = zlib.crc32(text.replace("\r", "").replace("\n", "").encode("utf-8"))
    return c - (1 << 32) if c >= (1 << 31) else c


def version_key(version: str) -> tuple[int, ...]:
    """Flyway's MigrationVersion order: numeric parts, trailing zeros dropped."""
    parts = [int(p) for p in re.split(r"\.(?=\d)", version)]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    if parts == [0]:
        parts = []
    return tuple(parts)


def abbreviate_description(d: str) -> str:
    return d if len(d) <= DESCRIPTION_MAX else d[:DESCRIPTION_MAX - 3] + "..."


def abbreviate_script(s: str) -> str:
    return s if len(s) <= SCRIPT_MAX else "..." + s[3 - SCRIPT_MAX:]


@dataclass
class Migration:
    kind: str  # "V" (versioned) | "R" (repeatable)
    version: str | None  # as stored: "1.1", "001"; None for repeatables
    description: str
    script: str  # the path relative to the migrations directory, as Flyway records it
    path: Path
    checksum: int
    key: tuple[int, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"version {self.version} ({self.description})" if self.kind == "V" else \
            f"repeatable {self.description!r}"

    def text(self) -> str:
        raw = self.path.read_bytes()
        text = raw.decode("utf-8")
        return text[1:] if text.startswith("\ufeff") else text


def parse_name(name: str) -> tuple[str, str | None, str] | None:
    """(kind, version, description) for a migration file name, None for other files; UsageError for a name that
    looks like a migration but is not one Flyway would accept."""
    if not name.lower().endswith(SUFFIX):
        return None
    base = name[: -len(SUFFIX)]
    if not base.startswith(("V", "R")) or "__" not in base:
        return None
    kind = base[0]
    version, _, desc = base[1:].partition("__")
    description = desc.replace("_", " ")
    if kind == "R":
        if version:
            raise UsageError(f"{name}: a repeatable migration has no version: R__<description>.sql")
        return kind, None, description
    if not version:
        raise UsageError(f"{name}: a versioned migration needs a version: V<version>__<description>.sql")
    normalized = version.replace("_", ".")
    if not re.fullmatch(r"\d+(\.\d+)*", normalized):
        raise UsageError(f"{name}: version {version!r}: may only contain 0..9 and . or _ (Flyway's rule)")
    return kind, normalized, description


def discover(directory: Path) -> list[Migration]:
    """Every migration under `directory` (recursively, as Flyway's filesystem location), versioned ones in version
    order, then repeatables by description. One line for duplicates and unreadable files."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory; give the migrations directory with --dir (or "
                         "tenants.<t>.migrations.dir)")
    found: list[Migration] = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        parsed = parse_name(path.name)
        if parsed is None:
            continue
        kind, version, description = parsed
        try:
            cs = checksum(path.read_bytes())
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8, as Flyway reads it") from None
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror}") from None
        rel = path.relative_to(directory).as_posix()
        found.append(Migration(kind, version, description, rel, path, cs,
                               version_key(version) if version else ()))
    versioned = sorted((m for m in found if m.kind == "V"), key=lambda m: m.key)
    for a, b in zip(versioned, versioned[1:]):
        if a.key == b.key:
            raise UsageError(f"found more than one migration with version {a.version}: {a.script} and {b.script}")
    repeatable = sorted((m for m in found if m.kind == "R"), key=lambda m: m.description)
    for a, b in zip(repeatable, repeatable[1:]):
        if a.description == b.description:
            raise UsageError(f"found more than one repeatable migration with description {a.description!r}: "
                             f"{a.script} and {b.script}")
    return versioned + repeatable
