"""Security audit: the seed's checklists as code, over three sources (the server, the config, AWS).

Shape: one snapshot per source (server: a constant number of queries whatever the number of accounts; config: the
loaded model; aws: boto3 reads), then pure check functions over it. Each check is registered with a stable id, a
severity, a title, a remediation and references to the equivalent CIS MySQL, checkov and Prowler ids; it yields a
`Fail` per resource that fails. A check that raises becomes an ERROR finding naming it and the run goes on. A
finding matched by a suppression in the config (`audit.ignore`) is reported as suppressed, with its reason.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, NamedTuple

SEVERITIES = ("low", "medium", "high", "critical")
RANK = {s: i for i, s in enumerate(SEVERITIES)}
SOURCES = ("server", "config", "aws")


class Fail(NamedTuple):
    """One failing resource: `severity` overrides the check's when the same mistake weighs more here (an unmanaged
    account holding ALL ON *.* is critical, one holding nothing is medium)."""

    resource: str
    message: str
    severity: str | None = None
    fix: str | None = None  # the remediation for this resource (the SQL or command), over the check's general one


@dataclass(frozen=True)
class Check:
    id: str
    source: str
    severity: str
    title: str
    remediation: str
    refs: dict[str, str]
    fn: Callable = field(repr=False, compare=False)
    targets: tuple[str, ...] = ("local", "server", "aws")  # the targets it applies to


REGISTRY: dict[str, Check] = {}


def check(id: str, source: str, severity: str, title: str, remediation: str, *, cis: str | None = None,
          checkov: str | None = None, prowler: str | None = None, targets: tuple[str, ...] = ("local", "server", "aws")):
    """Register a check: `fn(snapshot) -> Iterable[Fail]`."""
    assert source in SOURCES and severity in SEVERITIES and id not in REGISTRY, id
    refs = {k: v for k, v in (("cis", cis), ("checkov", checkov), ("prowler", prowler)) if v}

    def deco(fn):
        REGISTRY[id] = Check(id, source, severity, title, remediation, refs, fn, targets)
        return fn

    return deco


def load_checks() -> dict[str, Check]:
    from . import checks_aws, checks_config, checks_server  # noqa: F401 - registering is importing

    return REGISTRY


@dataclass
class Finding:
    check: str
    source: str
    severity: str
    title: str
    status: str  # fail | pass | error | suppressed
    resource: str
    message: str
    remediation: str
    refs: dict[str, str]
    reason: str | None = None  # suppressed: the config's reason

    def to_json(self) -> dict:
        return asdict(self)


def _one_line(text: str, limit: int = 400) -> str:
    """One printable line: control and other unprintable characters escaped (a tab in an account's name shows as
    \\t, never as a space that would name another account), nothing collapsed."""
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fix_line(fix: str) -> str:
    """A remediation as one line. Inside a quoted SQL name, \\t \\n \\r are MySQL's own escapes, so the SQL
    stays right; any other unprintable character cannot be written there: no SQL is shown rather than a wrong one."""
    if fix.isprintable():
        return _one_line(fix)
    odd = {c for c in fix if not c.isprintable()} - {"\t", "\n", "\r", "\x00", "\x1a"}
    if odd or "`" in fix:  # in a backquoted name a backslash escapes nothing
        return ("no SQL shown: the name holds characters SQL text cannot carry here; take the exact name from "
                "`resource` in -o json")
    out = fix.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r").replace("\x00", "\\0")
    return _one_line(out.replace("\x1a", "\\Z"))


def run_checks(source: str, snapshot, *, target: str, ignore: Iterable = ()) -> list[Finding]:
    """Every registered check of `source` that applies to `target`, over `snapshot`."""
    ignore = list(ignore)
    out: list[Finding] = []
    for c in sorted(load_checks().values(), key=lambda c: c.id):
        if c.source != source or target not in c.targets:
            continue
        try:
            fails = list(c.fn(snapshot))
        except Exception as exc:  # noqa: BLE001 - a broken check is a finding, never the end of the run
            out.append(Finding(c.id, source, c.severity, c.title, "error", "-",
                               _one_line(f"check {c.id} could not run: {type(exc).__name__}: {exc}"),
                               c.remediation, c.refs))
            continue
        if not fails:
            out.append(Finding(c.id, source, c.severity, c.title, "pass", "-", "passed", c.remediation, c.refs))
        for f in fails:
            rule = next((r for r in ignore if r.id == c.id and fnmatch.fnmatchcase(f.resource, r.resource)), None)
            out.append(Finding(c.id, source, f.severity or c.severity, c.title,
                               "suppressed" if rule else "fail", f.resource, _one_line(f.message),
                               _fix_line(f.fix) if f.fix else c.remediation, c.refs, rule.reason if rule else None))
    return out


def failing(findings: Iterable[Finding], fail_on: str) -> list[Finding]:
    """Findings that make the run fail: failed at or above `fail_on`, or a check that could not run."""
    return [f for f in findings if f.status == "error" or (f.status == "fail" and RANK[f.severity] >= RANK[fail_on])]


__all__ = ["SEVERITIES", "RANK", "SOURCES", "Fail", "Check", "Finding", "REGISTRY", "check", "load_checks",
           "run_checks", "failing"]
