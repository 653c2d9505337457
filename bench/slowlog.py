"""Slow-log digest vs pt-query-digest on the same file, in one run.

    python bench/slowlog.py [FILE] [--mb 30] [--runs 3] [--skip-pt]

Without FILE, writes a MariaDB slow log of --mb MB (shared_mysql.slowlog.synth: several services' accounts,
sysbench's statements, an ORM's queries with strings, IN lists, multi-row inserts, comments, formatted statements
and a small share of the statements pt-query-digest 3.2.1 fingerprints wrongly). Each tool runs as a command
(start-up included), --runs times, best time kept; peak memory is the process's max RSS.

Agreement is the share of total query time whose pt class maps to exactly one of ours: in --pt-compatible mode
checked against pt's own JSON (same checksum, same count, same summed time); in the default mode each entry's
pt-compatible fingerprint is paired with its default one (the pt-compatible text is pt's, as the first number
shows in the same run). Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT



def run(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of the process and its workers, stdout) of one command."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if p.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {err.read().decode(errors='replace').strip()[:300]}")
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def best(cmd: list[str], runs: int) -> tuple[float, float, str]:
    results = [run(cmd) for _ in range(runs)]
    wall = min(r[0] for r in results)
    return wall, max(r[1] for r in results), results[-1][2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?")
    ap.add_argument("--mb", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-pt", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="slowlog-bench-"))
    try:
        if args.file:
            path = Path(args.file)
            entries = None
        else:
            from shared_mysql.slowlog import synth

            path = tmp / "slow.log"
            entries = synth.write(path, args.mb << 20, seed=42)
        mb = path.stat().st_size / (1 << 20)
        ours_cmd = [sys.executable, "-m", "shared_mysql", "slowlog", "digest", str(path), "-o", "json", "--limit", "0"]
        env_note = f"{os.cpu_count()} cores"
        o_s, o_rss, o_out = best(ours_cmd, args.runs)
        p_s, p_rss, p_out = best(ours_cmd + ["--pt-compatible"], args.runs)
        ours_pt = json.loads(p_out)
        queries = json.loads(o_out)["queries"]
        pt_path = shutil.which("pt-query-digest")
        pt_s = pt_rss = None
        agree_pt = None
        if pt_path and not args.skip_pt:
            pt_s, pt_rss, pt_out = best([pt_path, "--output", "json", "--limit", "100%:1000000", str(path)],
                                        max(1, min(args.runs, 2)))
            theirs = {c["checksum"]: (int(c["query_count"]), float(c["metrics"]["Query_time"]["sum"]))
                      for c in json.loads(pt_out)["classes"]}
            ours = {c["checksum"]: (c["count"], c["query_time"]["total"]) for c in ours_pt["classes"]}
            total = sum(s for _, s in theirs.values())
            same = sum(s for k, (n, s) in theirs.items()
                       if k in ours and ours[k][0] == n and abs(ours[k][1] - s) <= 1e-6 * max(1.0, s) + 1e-5)
            agree_pt = same / total if total else 1.0
        # default mode: each entry's (pt-compatible, default) pair
        from shared_mysql.slowlog.parse import Options
        from shared_mysql.slowlog.sources import digest_files

        d, _ = digest_files([path], Options(pair=True))
        classes: dict[bytes, set] = {}
        times: dict[bytes, float] = {}
        for (key, _t), c in d.cells.items():
            pt_fp, ours_fp = key.split(b"\0", 1)
            classes.setdefault(pt_fp, set()).add(ours_fp)
            times[pt_fp] = times.get(pt_fp, 0.0) + c[1]
        total = sum(times.values())
        agree_default = sum(s for k, s in times.items() if len(classes[k]) == 1) / total if total else 1.0
        split = sorted(((times[k], k) for k in classes if len(classes[k]) > 1), reverse=True)

        print(f"slow log: {path.name} {mb:.1f} MB, {queries:,} queries"
              + (f" (generated, {entries:,} entries)" if entries else "") + f"; {env_note}; best of {args.runs}")
        print(f"  {'':34} {'seconds':>8} {'MB/s':>7} {'max RSS':>9} {'agreement':>10}")
        print(f"  {'shared-mysql slowlog digest':34} {o_s:>8.2f} {mb / o_s:>7.1f} {o_rss:>7.0f}MB {agree_default:>9.2%}")
        print(f"  {'  --pt-compatible':34} {p_s:>8.2f} {mb / p_s:>7.1f} {p_rss:>7.0f}MB "
              + (f"{agree_pt:>9.2%}" if agree_pt is not None else f"{'-':>9}"))
        if pt_s:
            print(f"  {'pt-query-digest 3.2.1':34} {pt_s:>8.2f} {mb / pt_s:>7.1f} {pt_rss:>7.0f}MB {'':>9}")
            print(f"  speed-up: {pt_s / o_s:.1f}x default, {pt_s / p_s:.1f}x --pt-compatible")
        for s, k in split[:3]:
            print(f"  pt class split by the default: {k.decode(errors='replace')[:70]} ({s / total:.2%} of time)")
        print(json.dumps({
            "mb": round(mb, 1), "queries": queries, "ours_s": round(o_s, 3), "ours_pt_compatible_s": round(p_s, 3),
            "pt_s": round(pt_s, 3) if pt_s else None, "speedup": round(pt_s / o_s, 2) if pt_s else None,
            "speedup_pt_compatible": round(pt_s / p_s, 2) if pt_s else None,
            "agreement_default": round(agree_default, 6),
            "agreement_pt_compatible": round(agree_pt, 6) if agree_pt is not None else None,
            "ours_max_rss_mb": round(max(o_rss, p_rss)), "pt_max_rss_mb": round(pt_rss) if pt_rss else None,
            "cores": os.cpu_count()}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
