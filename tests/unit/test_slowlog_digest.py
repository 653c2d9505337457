"""Slow-log digest (issue 11): MySQL 8 (a fixture written from its documented format), MariaDB (the generator's
format; the embedded server's own log is read in tests/integration/test_slowlog.py), gzip and rotations, hostile
and broken input, CloudWatch Logs events (moto), the CLI, secrets in every output format, and pt-query-digest's
own grouping as the reference for --pt-compatible."""

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shared_mysql.slowlog import synth
from shared_mysql.slowlog.parse import Options
from shared_mysql.slowlog.sources import digest_files, rotation_order

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slowlog"
MYSQL8 = FIXTURES / "mysql8-slow.log"
WHO = {"orders_user": "orders", "orders_user_alt": "orders", "billing_readonly": "billing"}


def cli(*args, cwd=None, env=None):
    import sys

    return subprocess.run([sys.executable, "-m", "shared_mysql", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def report(path, **kw):
    from shared_mysql.slowlog.report import build

    opts = Options(who=WHO, admins=("admin",), **{k: v for k, v in kw.items() if k != "limit"})
    d, meta = digest_files([Path(path)], opts, workers=1)
    return build(d, meta, limit=kw.get("limit", 0), pt_compatible=kw.get("pt_compatible", False))


def test_mysql8_entries_tenants_times_and_skips():
    r = report(MYSQL8)
    assert r["queries"] == 6 and r["skipped"]["truncated"] == 1 and r["skipped"]["garbage"] == 0
    assert r["unknown_fields"] == {"Bar_baz": 1, "Tmp_foo": 1}  # log_slow_extra's fields are known
    top = r["classes"][0]
    assert top["fingerprint"] == "select * from orders where customer_id = ? and e?.account_id = ?"
    assert top["count"] == 2 and top["query_time"]["total"] == 4.0 and top["query_time"]["max"] == 2.5
    assert top["rows_examined"] == 900000 and top["rows_sent"] == 2 and top["rows_examined_per_sent"] == 450000
    assert top["tenants"] == [{"tenant": "orders", "count": 2, "query_time": 4.0}]  # the app account and its twin
    assert top["first_seen"].startswith("2026-11-26T") and top["share"] == round(4.0 / 5.35, 6)
    tenants = {t["tenant"]: t for t in r["tenants"]}
    assert tenants["orders"]["count"] == 3 and tenants["billing"]["count"] == 1 and tenants["admin"]["count"] == 1
    assert tenants["unmanaged"]["users"] == [{"user": "legacy_app", "count": 1, "query_time": 0.2}]
    multi = next(c for c in r["classes"] if "invoices" in c["fingerprint"])
    assert multi["fingerprint"] == "select id, amount from invoices where amount + ? > ? order by id limit ?"
    assert any(c["fingerprint"] == "administrator command: Quit" for c in r["classes"])


def test_pt_compatible_reproduces_pts_text_on_the_same_entries():
    r = report(MYSQL8, pt_compatible=True)
    fps = {c["fingerprint"] for c in r["classes"]}
    assert "select * from orders where customer_id = ? and e?ount_id = ?" in fps
    assert "select id, amount from invoices where amount ? ? > ? order by id limit ?" in fps


def test_since_until_and_tenant_filters():
    import calendar

    start = calendar.timegm((2026, 11, 26, 10, 15, 2))
    r = report(MYSQL8, since=start, until=start + 2)
    assert r["queries"] == 3 and r["skipped"]["filtered_out"] == 3
    r = report(MYSQL8, tenant="orders")
    assert r["queries"] == 3 and {t["tenant"] for t in r["tenants"]} == {"orders"}


def test_secrets_are_masked_in_text_json_fingerprints_and_samples(tmp_path):
    for args in ([], ["-o", "json"], ["--pt-compatible"], ["--pt-compatible", "-o", "json"]):
        res = cli("slowlog", "digest", str(MYSQL8), "--limit", "0", *args, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "Plain-Text-Secret-1" not in res.stdout and "Another-Secret-2" not in res.stdout
        assert "Secret" not in res.stdout + res.stderr
        assert "identified by ?" in res.stdout.lower()


def test_gzip_and_rotations_are_read_oldest_first(tmp_path):
    names = ["slow.log.2.gz", "slow.log", "slow.log.10", "slow.log.1"]
    assert [p.name for p in rotation_order([str(tmp_path / n) for n in names])] == \
           ["slow.log.10", "slow.log.2.gz", "slow.log.1", "slow.log"]
    dated = ["slow.log", "slow.log-20261125", "slow.log-20261124.gz"]
    assert [p.name for p in rotation_order(dated)] == ["slow.log-20261124.gz", "slow.log-20261125", "slow.log"]
    synth.write(tmp_path / "a.log", 200_000, seed=1)
    raw = (tmp_path / "a.log").read_bytes()
    with gzip.open(tmp_path / "a.log.1.gz", "wb") as fh:  # the extension is not trusted: the magic is read
        fh.write(raw)
    shutil.copy(tmp_path / "a.log.1.gz", tmp_path / "b.log")
    plain, _ = digest_files([tmp_path / "a.log"], Options(), workers=1)
    both, meta = digest_files(rotation_order([str(tmp_path / "a.log"), str(tmp_path / "a.log.1.gz"),
                                              str(tmp_path / "b.log")]), Options(), workers=1)
    assert both.entries == 3 * plain.entries and meta["files"][0].endswith("a.log.1.gz")


def test_workers_over_byte_ranges_equal_one_reader(tmp_path):
    path = tmp_path / "s.log"
    n = synth.write(path, 3_000_000, seed=3)
    one, _ = digest_files([path], Options(pt_compatible=True), workers=1)
    many, meta = digest_files([path], Options(pt_compatible=True), workers=3)
    assert meta["workers"] == 3 and one.entries == many.entries == n
    assert {k: (c[0], round(c[1], 6)) for k, c in one.cells.items()} == \
           {k: (c[0], round(c[1], 6)) for k, c in many.cells.items()}


def test_broken_input_is_skipped_and_counted_never_a_crash(tmp_path):
    good = MYSQL8.read_bytes()
    entry = b"# User@Host: x[x] @ h [1.2.3.4]\n# Query_time: 1.0  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 0\n" \
            b"SET timestamp=1;\nSELECT 1;\n"
    cases = {
        "garbage-first": os.urandom(3000).replace(b"\n# User@Host: ", b"") + b"\n" + good,
        "binary-between": good.replace(b"# Time: 2026-11-26T10:15:03", b"\xff\xfe\x00garbage\x00\n# Time: 2026-11-26T10:15:03"),
        "no-query-time": b"# User@Host: x[x] @ h []\n# Foo: 1\nSELECT 1;\n" + entry,
        "cut-mid-statement": entry + entry[:-7],
        "cut-in-headers": entry + entry[:40],
        "header-only-file": b"/usr/sbin/mariadbd, Version: 10.11.6-MariaDB-log. started with:\nTcp port: 0  Unix socket: s\n"
                            b"Time\t\t    Id Command\tArgument\n",
        "empty": b"",
        "banner-mid-file": entry + b"/usr/sbin/mysqld, Version: 8.0.40 (MySQL). started with:\nTcp port: 3306  Unix "
                                   b"socket: s\nTime                 Id Command    Argument\n" + entry,
        "nul-and-crlf": entry.replace(b"\n", b"\r\n") + entry.replace(b"SELECT 1", b"SELECT \x00 1"),
        "huge-number": entry.replace(b"1.0", b"9" * 400) + entry.replace(b"Rows_sent: 0", b"Rows_sent: " + b"9" * 50),
        "zero-time": entry.replace(b"1.0", b"0.000000"),
        "dotted-number": entry.replace(b"1.0", b"1.2.3") + entry,
        "forged-header": entry.replace(b"SELECT 1;", b"SELECT 1 -- \n# User@Host: y[y] @ h []\n# Query_time: 5"),
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        d, _ = digest_files([p], Options(), workers=1)
        assert d.entries >= 0, name
    d, _ = digest_files([tmp_path / "cut-mid-statement"], Options(), workers=1)
    assert (d.entries, d.truncated) == (1, 1)
    d, _ = digest_files([tmp_path / "cut-in-headers"], Options(), workers=1)
    assert (d.entries, d.truncated) == (1, 1)
    d, _ = digest_files([tmp_path / "no-query-time"], Options(), workers=1)
    assert (d.entries, d.garbage) == (1, 1)
    d, _ = digest_files([tmp_path / "garbage-first"], Options(), workers=1)
    assert d.entries == 6 and d.garbage >= 1
    d, _ = digest_files([tmp_path / "binary-between"], Options(), workers=1)
    assert d.entries == 6 and d.garbage == 1
    d, _ = digest_files([tmp_path / "banner-mid-file"], Options(), workers=1)
    assert (d.entries, d.garbage, d.truncated) == (2, 0, 0)
    d, _ = digest_files([tmp_path / "dotted-number"], Options(), workers=1)
    assert (d.entries, d.garbage) == (1, 1)
    d, _ = digest_files([tmp_path / "header-only-file"], Options(), workers=1)
    assert (d.entries, d.garbage) == (0, 0)
    for bad in ("truncated.gz",):
        with gzip.open(tmp_path / bad, "wb") as fh:
            fh.write(good * 1000)
        data = (tmp_path / bad).read_bytes()
        (tmp_path / bad).write_bytes(data[: len(data) // 2])
        d, meta = digest_files([tmp_path / bad], Options(), workers=1)
        assert d.entries > 0 and meta["errors"] and "EOFError" in meta["errors"][0]


def test_cli_errors_are_one_line(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for args, words in ((["nope.log"], "no such slow-log file"), ([str(tmp_path)], "is a directory"),
                        ([str(fifo)], "not a regular file"), (["--since", "yesterday", str(MYSQL8)], "--since"),
                        (["--since", "1h", "--until", "2h", str(MYSQL8)], "swap them"),
                        (["--tenant", "nobody", str(MYSQL8)], "no such tenant"),
                        (["--log-group", "g", str(MYSQL8)], "only with --cloudwatch"),
                        (["--cloudwatch", str(MYSQL8)], "give no FILE")):
        res = cli("slowlog", "digest", *args, cwd=tmp_path)
        assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
        assert words in res.stderr, (args, res.stderr)
    res = cli("slowlog", "digest", str(MYSQL8), "--since", "2026-11-26T10:15:04Z", "-o", "json", cwd=tmp_path)
    assert res.returncode == 0 and json.loads(res.stdout)["queries"] == 2


def test_cloudwatch_events_are_paged_and_timed(fake_aws_env):
    """RDS exports one event per entry; `# Time:` may be absent (the event's timestamp is used)."""
    import time

    import boto3
    from moto import mock_aws

    from shared_mysql import aws as aws_mod
    from shared_mysql.config import parse_config
    from shared_mysql.slowlog.sources import digest_cloudwatch, slowquery_group

    config = parse_config("environment: prod\ntarget: aws\ninstance: {host: db, ca_bundle: ca.pem}\n"
                          "tenants: {orders: {max_connections: 5}}\n")
    now = int(time.time())
    events = []
    for i in range(7):
        head = f"# Time: {time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now - 60 + i))}.000000Z\n" if i % 2 else ""
        events.append(head + f"# User@Host: orders_user[orders_user] @  [10.0.1.5]  Id: {i}\n"
                      f"# Query_time: 1.5  Lock_time: 0.0 Rows_sent: 1  Rows_examined: 9\n"
                      f"SELECT c FROM t WHERE id = {i};")
    events.append("# User@Host: admin[admin] @  [10.0.0.1]  Id: 9\n# Query_time: 0.5  Lock_time: 0.0 Rows_sent: 0  "
                  "Rows_examined: 0\nSET timestamp=1;\nALTER USER x IDENTIFIED BY 'Cloud-Secret-9';")
    with mock_aws():
        aws_mod.session.cache_clear()
        logs = boto3.client("logs")
        group = slowquery_group(config)
        assert group == "/aws/rds/instance/prod-shared-mysql/slowquery"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="prod-shared-mysql")
        logs.put_log_events(logGroupName=group, logStreamName="prod-shared-mysql",
                            logEvents=[{"timestamp": (now - 60 + i) * 1000, "message": m} for i, m in enumerate(events)])
        opts = Options(who={"orders_user": "orders"}, admins=("admin",))
        d, meta = digest_cloudwatch(config, group, now - 3600, None, opts, page_limit=3)
        assert meta["pages"] >= 3 and meta["events"] == 8 and d.entries == 8
        cells = {(fp.decode(), t): c for (fp, t), c in d.cells.items()}
        c = cells[("select c from t where id = ?", "orders")]
        assert c[0] == 7 and c[1] == pytest.approx(10.5) and c[7] == now - 60 and c[8] == now - 54
        assert ("alter user x identified by ?", "admin") in cells
        d, _ = digest_cloudwatch(config, group, now - 57, now - 55, opts)
        assert d.entries == 3  # the window is the events' timestamps
        with pytest.raises(Exception, match="slowquery"):
            digest_cloudwatch(config, "/aws/rds/instance/nope/slowquery", None, None, opts)


def test_pt_compatible_groups_exactly_as_pt_query_digest(tmp_path):
    """On a generated MariaDB log: every pt class (checksum) has our count and summed query time."""
    from tests.unit.test_slowlog_fingerprint import _pt_query_digest

    pt = _pt_query_digest()
    path = tmp_path / "slow.log"
    synth.write(path, 1_500_000, seed=11)
    res = subprocess.run([pt, "--output", "json", "--limit", "100%:1000000", str(path)], capture_output=True,
                         text=True, check=True)
    theirs = {c["checksum"]: (c["query_count"], round(float(c["metrics"]["Query_time"]["sum"]), 6))
              for c in json.loads(res.stdout)["classes"]}
    from shared_mysql.slowlog.fingerprint import checksum

    for pt_mode in (True, False):
        d, _ = digest_files([path], Options(pt_compatible=pt_mode), workers=2)
        ours: dict = {}
        for (fp, _t), c in d.cells.items():
            x = ours.setdefault(checksum(fp), [0, 0.0])
            x[0] += c[0]
            x[1] += c[1]
        ours = {k: (n, round(s, 6)) for k, (n, s) in ours.items()}
        if pt_mode:
            assert ours == theirs
        else:  # the default splits what pt merges (n + 1 / n - 1) and merges 'it''s' with 'its'
            assert ours != theirs and sum(n for n, _ in ours.values()) == sum(n for n, _ in theirs.values())


def test_the_start_up_fast_path_gives_the_typer_commands_output(tmp_path):
    """`slowlog digest` of files runs without building the Typer app; anything it does not fully understand
    (here --debug) takes the Typer path: same report either way."""
    from shared_mysql.slowlog.command import fast_args

    assert fast_args(["slowlog", "digest", "a.log", "--limit", "0", "--output", "json"])["limit"] == 0
    for odd in (["slowlog", "digest", "--help"], ["slowlog", "digest", "--limit", "x"], ["slowlog", "digest", "--debug"],
                ["slowlog", "digest", "--since", "1h", "--since", "2h"], ["slowlog", "digest", "--bogus"],
                ["--output", "sarif", "slowlog", "digest"], ["slowlog", "other"], ["slowlog", "digest", "--workers", "0"]):
        assert fast_args(odd) is None, odd
    fast = cli("slowlog", "digest", str(MYSQL8), "-o", "json", "--limit", "0", cwd=tmp_path)
    typer_path = cli("--debug", "slowlog", "digest", str(MYSQL8), "-o", "json", "--limit", "0", cwd=tmp_path)
    assert fast.returncode == typer_path.returncode == 0
    assert json.loads(fast.stdout) == json.loads(typer_path.stdout)
    bad = cli("slowlog", "digest", str(tmp_path / "missing.log"), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1


def test_a_gzip_bomb_is_read_in_bounded_memory_and_linear_time(tmp_path):
    """64 MiB of zeros (no entry at all) behind 64 KiB of gzip: counted as garbage, chunk by chunk."""
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        for _ in range(64):
            fh.write(b"\0" * (1 << 20))
    d, _ = digest_files([bomb], Options(), workers=1)
    assert d.entries == 0 and d.garbage_bytes == 64 << 20


LEAKS = [b"create user u --\x01 '\n identified by 'SECRETxyz'", b"/*!50000 CREATE USER u IDENTIFIED BY 'a*/SECRETxyz' */",
         b"/*M!100000 CREATE USER u IDENTIFIED BY 'a*/SECRETxyz' */",
         b"create user u identified by 'x' /*!50000 '*/SECRETxyz' */",
         b"create user u --'\n identified by 'SECRETxyz'",  # sql_mode=ORACLE: -- alone starts a comment
         b"CHANGE MASTER TO MASTER_PASSWORD='SECRETxyz'", b"ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD('SECRETxyz')",
         b'SET PASSWORD = "SECRETxyz"', b"GRANT ALL ON *.* TO u IDENTIFIED BY 'a\\'SECRETxyz'",
         b"create user u identified by 'x' # '\n, v identified by 'SECRETxyz'"]


def test_no_reading_of_a_credential_statement_shows_the_password(tmp_path):
    """The review's reproducers: comment markers MySQL and MariaDB read differently from a naive lexer (`--` and a
    control character, `--` alone under sql_mode=ORACLE), a */ inside a string inside /*! ... */ or /*M! ... */."""
    log = b"".join(b"# User@Host: admin[admin] @ localhost [127.0.0.1]\n# Query_time: 0.5  Lock_time: 0.0  Rows_sent: 0"
                   b"  Rows_examined: 0\nSET timestamp=1795688100;\n" + s + b";\n" for s in LEAKS)
    (tmp_path / "leaks.log").write_bytes(log)
    for args in ([], ["-o", "json"], ["--pt-compatible"], ["--pt-compatible", "-o", "json"]):
        res = cli("slowlog", "digest", str(tmp_path / "leaks.log"), "--limit", "0", *args, cwd=tmp_path)
        assert res.returncode == 0 and "secretxyz" not in res.stdout.lower(), (args, res.stdout)
        assert json.loads(res.stdout)["queries"] == len(LEAKS) if "-o" in args else True


def test_hostile_headers_and_gzip_bodies(tmp_path):
    """A statement forging a MariaDB header line of 200k spaces, a line of 40,000 ", Version: ", a gzip whose body
    is random bytes: each read in one pass, counted, no traceback."""
    entry = b"# User@Host: x[x] @ h []\n# Query_time: 1.0  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 0\nSELECT 1;\n"
    forged = entry.replace(b"SELECT 1;", b"SELECT 1\n# User@Host: y[y] @ h []\n# Thread_id: 8  Schema: " + b" " * 200_000
                           + b"X\n# Query_time: 1.0  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 0\nSELECT 2;")
    (tmp_path / "forged.log").write_bytes(forged + entry)
    (tmp_path / "banner.log").write_bytes(b", Version: " * 40_000 + b"\n" + entry)
    (tmp_path / "corrupt.gz").write_bytes(gzip.compress(entry * 10)[:10] + os.urandom(5000))
    for name, proc in (("forged.log", 2), ("banner.log", 1), ("corrupt.gz", 0)):  # forged: the cut entry is garbage
        res = cli("slowlog", "digest", str(tmp_path / name), "-o", "json", cwd=tmp_path)
        assert res.returncode == 0 and "Traceback" not in res.stderr, (name, res.stderr)
        r = json.loads(res.stdout)
        assert r["queries"] == proc, (name, r["queries"])
    assert "error" in json.loads(cli("slowlog", "digest", str(tmp_path / "corrupt.gz"), "-o", "json",
                                      cwd=tmp_path).stdout)["source"]["errors"][0].lower()


def test_the_aws_target_reads_its_slowquery_log_group_through_the_cli(tmp_path, monkeypatch, capsys, fake_aws_env):
    """`slowlog digest` with no FILE on an aws config: the instance's slowquery group, the last 24 h by default,
    accounts attributed from the config."""
    import time

    import boto3
    from moto import mock_aws

    from shared_mysql import aws as aws_mod
    from shared_mysql.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "shared-mysql.yaml").write_text(
        "environment: prod\ntarget: aws\ninstance: {host: db, ca_bundle: ca.pem}\ntenants: {orders: {max_connections: 5}}\n")
    now = int(time.time())
    with mock_aws():
        aws_mod.session.cache_clear()
        logs = boto3.client("logs")
        group = "/aws/rds/instance/prod-shared-mysql/slowquery"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        msg = ("# User@Host: orders_user[orders_user] @  [10.0.1.5]  Id: 5\n# Query_time: 2.0  Lock_time: 0.0 "
               "Rows_sent: 1  Rows_examined: 100\nSELECT * FROM orders WHERE id = {};")
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
            {"timestamp": (now - 30 * 3600) * 1000, "message": msg.format(2)},  # older than the default 24 h
            {"timestamp": (now - 7200) * 1000, "message": msg.format(1)}])
        with pytest.raises(SystemExit) as exit_:
            main(["slowlog", "digest", "-o", "json"])
        assert exit_.value.code == 0
        r = json.loads(capsys.readouterr().out)
        assert r["queries"] == 1 and r["source"]["log_group"] == group
        assert r["tenants"] == [{"tenant": "orders", "count": 1, "query_time": 2.0, "top": r["tenants"][0]["top"],
                                 "share": 1.0}]
        with pytest.raises(SystemExit):
            main(["slowlog", "digest", "--since", "2d", "-o", "json"])
        assert json.loads(capsys.readouterr().out)["queries"] == 2
