"""Run the audit over the sources a target allows, and render it: text for people (grouped by severity, one summary
line), JSON for machines, SARIF 2.1.0 for code scanning (GitHub accepts it: every result has a location, rules
carry `security-severity`, fingerprints are stable so an alert follows its resource across runs)."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from .. import __version__
from ..errors import SharedMySQLError
from . import RANK, SEVERITIES, SOURCES, Finding, failing, load_checks, run_checks

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# GitHub's security-severity scale: critical >= 9.0, high 7.0-8.9, medium 4.0-6.9, low 0.1-3.9.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0"}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}


def run_audit(target, only: str | None = None, now: float | None = None) -> tuple[list[Finding], list[str]]:
    """Every source the target allows (or `only` one). Returns the findings and the sources audited."""
    config = target.config
    checks = load_checks()
    ignore = config.audit.ignore
    unknown = [f"audit.ignore.{i}.id" for i, r in enumerate(ignore) if r.id not in checks]
    if unknown:
        i = int(unknown[0].split(".")[2])
        raise SharedMySQLError(f"{target.loaded.path.name}: {unknown[0]}: no check {ignore[i].id}; `shared-mysql "
                               "audit --list` shows the ids")
    sources = [only] if only else [s for s in SOURCES if s != "aws" or config.target == "aws"]
    if "aws" in sources and config.target != "aws":
        from ..errors import UsageError

        raise UsageError(f"audit --only aws: the config's target is {config.target}, not aws")
    now = time.time() if now is None else now
    findings: list[Finding] = []
    for source in sources:
        if source == "config":
            snap = config
        elif source == "server":
            from .checks_server import server_snapshot

            with target.executor() as ex:
                snap = server_snapshot(ex, config, target.desired(ex.flavor), target.store, now)
        else:
            from .checks_aws import aws_snapshot

            snap = aws_snapshot(config, now)
        findings += run_checks(source, snap, target=config.target, ignore=ignore)
    return findings, sources


def unused_suppressions(findings: list[Finding], ignore) -> list[str]:
    """Suppressions that matched no finding (fixed since, or a typo in the resource): said, not hidden."""
    import fnmatch

    used = [(f.check, f.resource) for f in findings if f.status == "suppressed"]
    return [f"{r.id} {r.resource}" for r in ignore
            if not any(c == r.id and fnmatch.fnmatchcase(res, r.resource) for c, res in used)]


def summary(findings: list[Finding], fail_on: str) -> dict:
    out = {"failed": 0, "passed": 0, "suppressed": 0, "errors": 0, "by_severity": {s: 0 for s in SEVERITIES},
           "fail_on": fail_on, "failing": len(failing(findings, fail_on))}
    for f in findings:
        key = {"fail": "failed", "pass": "passed", "suppressed": "suppressed", "error": "errors"}[f.status]
        out[key] += 1
        if f.status == "fail":
            out["by_severity"][f.severity] += 1
    return out


def render_text(findings: list[Finding], fail_on: str, sources: list[str], unused: list[str] = ()) -> str:
    from ..tenants.render import shown

    lines = []
    fails = [f for f in findings if f.status == "fail"]
    for sev in reversed(SEVERITIES):
        group = [f for f in fails if f.severity == sev]
        if not group:
            continue
        lines.append(f"{sev.upper()} ({len(group)})")
        for f in sorted(group, key=lambda f: (f.check, f.resource)):
            lines.append(f"  {f.check}  {shown(f.message)}")
            lines.append(f"      fix: {shown(f.remediation)}")
    errors = [f for f in findings if f.status == "error"]
    if errors:
        lines.append(f"ERRORS ({len(errors)}): checks that could not run")
        lines += [f"  {f.check}  {shown(f.message)}" for f in errors]
    suppressed = [f for f in findings if f.status == "suppressed"]
    if suppressed:
        lines.append(f"SUPPRESSED ({len(suppressed)})")
        lines += [f"  {f.check}  {shown(f.message)}  (reason: {shown(f.reason or '')})" for f in suppressed]
    if unused:
        lines.append("Suppressions that matched nothing (remove them, or fix their resource): "
                     + ", ".join(shown(u) for u in unused))
    s = summary(findings, fail_on)
    sev = ", ".join(f"{n} {k}" for k, n in reversed(s["by_severity"].items()) if n) or "none"
    lines.append(f"Audit ({', '.join(sources)}): {s['failed']} failed ({sev}), {s['passed']} checks passed, "
                 f"{s['suppressed']} suppressed, {s['errors']} errors; {s['failing']} at or above {fail_on}.")
    return "\n".join(lines)


def render_json(findings: list[Finding], fail_on: str, sources: list[str], unused: list[str] = ()) -> dict:
    return {"sources": sources, "summary": summary(findings, fail_on), "findings": [f.to_json() for f in findings],
            "unused_suppressions": list(unused)}


def _line_of(config_text: str, resource: str) -> int:
    """The config line a config finding names (`instance.deletion_protection` -> the `deletion_protection:` line)."""
    key = resource.split()[0].rsplit(".", 1)[-1]
    if re.fullmatch(r"[a-z_]+", key):
        for i, line in enumerate(config_text.splitlines(), 1):
            if re.match(rf"\s*{key}\s*:", line):
                return i
    return 1


def render_sarif(findings: list[Finding], config_path: Path, base: Path | None = None) -> dict:
    checks = load_checks()
    ids = sorted({f.check for f in findings if f.status in ("fail", "suppressed")})
    index = {cid: i for i, cid in enumerate(ids)}
    try:
        uri = str(config_path.resolve().relative_to((base or Path.cwd()).resolve()))
    except ValueError:
        uri = config_path.name
    try:
        text = config_path.read_text(errors="replace")
    except OSError:
        text = ""
    rules = []
    for cid in ids:
        c = checks[cid]
        rules.append({
            "id": c.id, "name": "".join(p.capitalize() for p in c.id.lower().split("-")),
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": f"{c.title} ({c.source})"},
            "help": {"text": f"Fix: {c.remediation}", "markdown": f"**Fix:** `{c.remediation}`"},
            "defaultConfiguration": {"level": LEVEL[c.severity]},
            "properties": {"security-severity": SECURITY_SEVERITY[c.severity], "tags": ["security", c.source],
                           "references": [f"{k}: {v}" for k, v in c.refs.items()]},
        })
    results = []
    for f in findings:
        if f.status not in ("fail", "suppressed"):
            continue
        line = _line_of(text, f.resource) if f.source == "config" else 1
        r = {
            "ruleId": f.check, "ruleIndex": index[f.check], "level": LEVEL[f.severity],
            "message": {"text": f"{f.message} (fix: {f.remediation})"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                                "region": {"startLine": line}},
                           "logicalLocations": [{"name": f.resource, "kind": "resource"}]}],
            "partialFingerprints": {"sharedMysqlResource/v1":
                                    hashlib.sha256(f"{f.check}|{f.resource}".encode()).hexdigest()[:32]},
            "properties": {"severity": f.severity, "source": f.source},
        }
        if f.status == "suppressed":
            r["suppressions"] = [{"kind": "external", "justification": f.reason or ""}]
        results.append(r)
    return {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "shared-mysql audit", "version": __version__, "rules": rules}},
                  "results": results}],
    }


def check_table() -> str:
    """The README's table of every check, generated from the registry (a test keeps README in sync)."""
    rows = ["| id | source | severity | check | CIS MySQL | checkov | Prowler |", "|---|---|---|---|---|---|---|"]
    for c in sorted(load_checks().values(), key=lambda c: (SOURCES.index(c.source), -RANK[c.severity], c.id)):
        rows.append(f"| `{c.id}` | {c.source} | {c.severity} | {c.title} | {c.refs.get('cis', '')} | "
                    f"{c.refs.get('checkov', '')} | {c.refs.get('prowler', '')} |")
    return "\n".join(rows)
