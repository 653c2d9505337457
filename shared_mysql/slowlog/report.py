"""The digest as a report: by fingerprint (rank by total time) and by tenant; JSON carries every number.

Fingerprints have every literal replaced; samples are the slowest statement of the class with every literal
masked (`observe.sessions.mask`: a string holding a backslash-quote masks everything after it), so no password
of a CREATE USER / SET PASSWORD, in any format, is ever printed."""

from __future__ import annotations

import time

from .fingerprint import checksum, guarded
from .parse import Digest, percentile

SAMPLE_CHARS = 1000


def _iso(t) -> str | None:
    if t is None or t in (float("inf"), float("-inf")):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def build(d: Digest, meta: dict, *, limit: int = 20, pt_compatible: bool = False, tenant: str | None = None,
          since=None, until=None) -> dict:
    from ..observe.sessions import mask

    by_fp: dict[bytes, dict] = {}
    for (fp, ten), c in d.cells.items():
        x = by_fp.get(fp)
        if x is None:
            x = by_fp[fp] = {"count": 0, "sum": 0.0, "lock": 0.0, "sent": 0, "examined": 0, "max": -1.0,
                             "min": float("inf"), "first": float("inf"), "last": float("-inf"), "hist": {},
                             "sample": None, "tenants": {}}
        x["count"] += c[0]
        x["sum"] += c[1]
        x["lock"] += c[2]
        x["sent"] += c[3]
        x["examined"] += c[4]
        if c[5] > x["max"]:
            x["max"], x["sample"] = c[5], c[10]
        x["min"] = min(x["min"], c[6])
        x["first"] = min(x["first"], c[7])
        x["last"] = max(x["last"], c[8])
        for b, n in c[9].items():
            x["hist"][b] = x["hist"].get(b, 0) + n
        t = x["tenants"].setdefault(ten, [0, 0.0])
        t[0] += c[0]
        t[1] += c[1]
    total = sum(x["sum"] for x in by_fp.values()) or 0.0
    ranked = sorted(by_fp.items(), key=lambda kv: (-kv[1]["sum"], -kv[1]["count"], kv[0]))
    classes = []
    for rank, (fp, x) in enumerate(ranked, 1):
        g = guarded(x["sample"] or b"")
        sample = g.decode("utf-8", "replace") if g is not None else \
            mask((x["sample"] or b"").decode("utf-8", "replace"), SAMPLE_CHARS)
        classes.append({
            "rank": rank, "checksum": checksum(fp), "fingerprint": fp.decode("utf-8", "replace"),
            "share": round(x["sum"] / total, 6) if total else 0.0, "count": x["count"],
            "query_time": {"total": round(x["sum"], 6), "mean": round(x["sum"] / x["count"], 6),
                           "p95": round(percentile(x["hist"], x["count"], x["max"]), 6),
                           "max": round(x["max"], 6), "min": round(x["min"], 6)},
            "lock_time": {"total": round(x["lock"], 6), "mean": round(x["lock"] / x["count"], 6)},
            "rows_examined": x["examined"], "rows_sent": x["sent"],
            "rows_examined_per_sent": round(x["examined"] / x["sent"], 2) if x["sent"] else None,
            "first_seen": _iso(x["first"]), "last_seen": _iso(x["last"]),
            "tenants": [{"tenant": k, "count": v[0], "query_time": round(v[1], 6)}
                        for k, v in sorted(x["tenants"].items(), key=lambda kv: (-kv[1][1], kv[0]))],
            "sample": sample,
        })
    tenants: dict[str, dict] = {}
    for c in classes:
        for t in c["tenants"]:
            x = tenants.setdefault(t["tenant"], {"tenant": t["tenant"], "count": 0, "query_time": 0.0, "top": []})
            x["count"] += t["count"]
            x["query_time"] += t["query_time"]
            x["top"].append({"checksum": c["checksum"], "fingerprint": c["fingerprint"], "count": t["count"],
                             "query_time": t["query_time"]})
    by_tenant = []
    for x in sorted(tenants.values(), key=lambda x: (-x["query_time"], x["tenant"])):
        x["query_time"] = round(x["query_time"], 6)
        x["share"] = round(x["query_time"] / total, 6) if total else 0.0
        x["top"] = sorted(x["top"], key=lambda t: (-t["query_time"], t["checksum"]))[:5]
        if x["tenant"] == "unmanaged":
            x["users"] = [{"user": u, "count": n, "query_time": round(s, 6)}
                          for u, (n, s) in sorted(d.unmanaged.items(), key=lambda kv: (-kv[1][1], kv[0]))]
        by_tenant.append(x)
    firsts = [x["first"] for x in by_fp.values() if x["first"] != float("inf")]
    lasts = [x["last"] for x in by_fp.values() if x["last"] != float("-inf")]
    return {
        "mode": "pt-compatible" if pt_compatible else "default",
        "source": meta,
        "filters": {"tenant": tenant, "since": _iso(since), "until": _iso(until)},
        "queries": d.entries, "classes_total": len(classes), "query_time_total": round(total, 6),
        "window": {"first": _iso(min(firsts)) if firsts else None, "last": _iso(max(lasts)) if lasts else None},
        "skipped": {"truncated": d.truncated, "garbage": d.garbage, "garbage_bytes": d.garbage_bytes,
                    "filtered_out": d.filtered},
        "unknown_fields": dict(sorted(d.unknown_fields.items())),
        "classes": classes[:limit] if limit else classes,
        "tenants": by_tenant,
    }


def _secs(s: float) -> str:
    if s >= 100:
        return f"{s:.0f}s"
    if s >= 1:
        return f"{s:.2f}s"
    if s >= 0.001:
        return f"{s * 1000:.1f}ms"
    return f"{s * 1e6:.0f}us"


def render_text(r: dict) -> str:
    from ..tenants.render import shown

    src = r["source"]
    where = src.get("log_group") or ", ".join(src.get("files") or []) or "-"
    sk = r["skipped"]
    lines = [f"# slow-query digest ({r['mode']}): {r['queries']:,} queries in {r['classes_total']:,} classes, "
             f"{_secs(r['query_time_total'])} in total, from {shown(where)}",
             f"# window {r['window']['first'] or '-'} .. {r['window']['last'] or '-'}; skipped: "
             f"{sk['truncated']} truncated, {sk['garbage']} garbage ({sk['garbage_bytes']} bytes), "
             f"{sk['filtered_out']} filtered out"
             + ("; unknown header fields: " + ", ".join(f"{shown(k)} ({v})" for k, v in r["unknown_fields"].items())
                if r["unknown_fields"] else "")]
    for e in src.get("errors") or []:
        lines.append(f"# warning: {shown(e)}")
    lines += ["", "By fingerprint",
              f"{'RANK':>4}  {'CHECKSUM':<32}  {'TIME%':>6}  {'COUNT':>8}  {'TOTAL':>8}  {'MEAN':>8}  {'P95':>8}  "
              f"{'MAX':>8}  {'LOCK':>8}  {'EXAM/SENT':>9}  TENANTS"]
    for c in r["classes"]:
        qt = c["query_time"]
        ratio = "-" if c["rows_examined_per_sent"] is None else f"{c['rows_examined_per_sent']:g}"
        tenants = ", ".join(shown(t["tenant"]) for t in c["tenants"][:4]) + (" ..." if len(c["tenants"]) > 4 else "")
        lines.append(f"{c['rank']:>4}  {c['checksum']:<32}  {c['share'] * 100:>5.1f}%  {c['count']:>8,}  "
                     f"{_secs(qt['total']):>8}  {_secs(qt['mean']):>8}  {_secs(qt['p95']):>8}  {_secs(qt['max']):>8}  "
                     f"{_secs(c['lock_time']['total']):>8}  {ratio:>9}  {tenants}")
        lines.append(f"      {shown(c['fingerprint'][:300])}")
        lines.append(f"      sample: {shown(c['sample'][:300])}")
        lines.append(f"      seen {c['first_seen'] or '-'} .. {c['last_seen'] or '-'}; rows examined "
                     f"{c['rows_examined']:,}, sent {c['rows_sent']:,}")
    if r["classes_total"] > len(r["classes"]):
        lines.append(f"      ... {r['classes_total'] - len(r['classes'])} more classes (--limit 0 shows all)")
    lines += ["", "By tenant", f"{'TENANT':<24}  {'TIME%':>6}  {'COUNT':>8}  {'TOTAL':>8}  TOP FINGERPRINTS"]
    for t in r["tenants"]:
        lines.append(f"{shown(t['tenant'])[:24]:<24}  {t['share'] * 100:>5.1f}%  {t['count']:>8,}  "
                     f"{_secs(t['query_time']):>8}  " + ", ".join(
                         f"{x['checksum'][:16]} ({_secs(x['query_time'])})" for x in t["top"][:3]))
        for u in t.get("users", [])[:10]:
            lines.append(f"    user {shown(u['user'])}: {u['count']:,} queries, {_secs(u['query_time'])}")
    return "\n".join(lines)


__all__ = ["build", "render_text"]
