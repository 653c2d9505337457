"""Flyway compatibility, pure parts: checksums against values Flyway produced, names, versions, the statement
splitter, the history DDL and Flyway's lock name."""

from __future__ import annotations

import pytest

from shared_mysql.errors import UsageError
from shared_mysql.migrations import history as H
from shared_mysql.migrations.scripts import checksum, discover, parse_name, version_key
from shared_mysql.migrations.sqlsplit import SplitError, split

# Values established outside this code (README, "Migrations", says how):
#  - -1039259818: flyway/flyway issue #2474, "Resolved locally" by Flyway 6.0.0 for that exact statement;
#  - the rest: Flyway's ChecksumCalculator loop (java.io.BufferedReader.readLine + java.util.zip.CRC32 on the UTF-8
#    bytes of each line, BOM filtered) run on OpenJDK 17 by a research session.
KNOWN = [
    (b"alter table location_history add column valid_until timestamp with time zone;", -1039259818),
    (b"alter table location_history add column valid_until timestamp with time zone;\n", -1039259818),
    (b"", 0),
    (b"a\nb", -1635563411), (b"a\r\nb", -1635563411), (b"a\rb", -1635563411), (b"ab", -1635563411),
    (b"a\n\nb", -1635563411), (b"a\nb\n", -1635563411), ("\ufeffa\nb".encode(), -1635563411),
    (b"SELECT 1;", 78787420), (b"SELECT 1;\n", 78787420),
    (b"CREATE TABLE t (id INT);\n", 1556295178),
    (b"CREATE TABLE t (\n  id INT PRIMARY KEY\n);\n", -1065944594),
    (b"CREATE TABLE t (\r\n  id INT PRIMARY KEY\r\n);\r\n", -1065944594),
    ("héllo\n".encode(), -1640267210),
    (b"a \nb", -2140381997),
    (b"a\x0bb", -165895750),  # Java's readLine does not split on \v (Python's splitlines would)
    ("a\u2028b".encode(), 978390342),
]


@pytest.mark.parametrize("raw, want", KNOWN)
def test_checksums_are_flyways(raw, want):
    assert checksum(raw) == want


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    (tmp_path / "V1__x.sql").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(UsageError, match="not UTF-8"):
        discover(tmp_path)


@pytest.mark.parametrize("name, want", [
    ("V1__initial_schema.sql", ("V", "1", "initial schema")),
    ("V1_1__add_name.sql", ("V", "1.1", "add name")),
    ("V001__x.SQL", ("V", "001", "x")),
    ("V2__create_roles_table.sql.sql", ("V", "2", "create roles table.sql")),  # one suffix stripped (a real dump)
    ("V3__a__b.sql", ("V", "3", "a  b")),  # split at the first __
    ("R__user_view.sql", ("R", None, "user view")),
    ("README.md", None), ("v1__lower.sql", None), ("V1_no_separator.sql", None), ("U1__undo.sql", None),
])
def test_names_parse_as_flyway_parses_them(name, want):
    assert parse_name(name) == want


@pytest.mark.parametrize("name, fragment", [
    ("V__x.sql", "needs a version"), ("R1__x.sql", "has no version"), ("V1a__x.sql", "may only contain"),
    ("V1.x__y.sql", "may only contain"),
])
def test_bad_names_are_one_line(name, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_name(name)


def test_versions_order_as_flyway_orders_them():
    assert version_key("1.10") > version_key("1.9")
    assert version_key("001") == version_key("1") == version_key("1.0") == version_key("1.0.0")
    assert sorted(["2", "1.1", "1.10", "1.2", "10"], key=version_key) == ["1.1", "1.2", "1.10", "2", "10"]


def test_duplicate_versions_and_descriptions_are_refused(tmp_path):
    (tmp_path / "V1__a.sql").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "V1_0__b.sql").write_text("y")
    with pytest.raises(UsageError, match="more than one migration with version 1"):
        discover(tmp_path)


def test_discover_orders_versioned_then_repeatables_and_keeps_relative_paths(tmp_path):
    (tmp_path / "V2__b.sql").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "V1_10__a.sql").write_text("y")
    (tmp_path / "R__z.sql").write_text("z")
    (tmp_path / "R__a.sql").write_text("a")
    got = discover(tmp_path)
    assert [m.script for m in got] == ["sub/V1_10__a.sql", "V2__b.sql", "R__a.sql", "R__z.sql"]


def test_the_splitter_keeps_quotes_comments_delimiters_and_compound_bodies():
    text = ("-- header\nCREATE TABLE a (id INT); -- trailing\nINSERT INTO a VALUES (1), (2);  # hash\n"
            "/* block ; */ INSERT INTO a VALUES (';'), (\"x;y\"), ('it''s; \\' ok');\n"
            "CREATE PROCEDURE p() BEGIN\n  IF 1 THEN SELECT 1; END IF;\n  SELECT 2;\nEND;\n"
            "DELIMITER //\nCREATE FUNCTION f() RETURNS INT BEGIN RETURN 1; END//\nDELIMITER ;\n"
            "DROP TABLE IF EXISTS b;\nSELECT IF(1, 2, 3);\n/*!40101 SET NAMES utf8mb4 */;\nSELECT 1")
    got = split(text)
    assert [s.line for s in got] == [2, 3, 4, 5, 10, 12, 13, 14, 15]
    assert got[2].sql == "/* block ; */ INSERT INTO a VALUES (';'), (\"x;y\"), ('it''s; \\' ok')"
    assert got[3].sql.startswith("CREATE PROCEDURE p() BEGIN") and got[3].sql.endswith("END")
    assert got[4].sql == "CREATE FUNCTION f() RETURNS INT BEGIN RETURN 1; END"
    assert got[-1].sql == "SELECT 1"


@pytest.mark.parametrize("text", ["SELECT 'open", "SELECT 1 /* open", "DELIMITER '\nSELECT 1'"])
def test_the_splitter_refuses_what_it_cannot_read(text):
    with pytest.raises(SplitError):
        split(text)


def test_the_history_table_is_flyways_and_the_lock_its_name():
    mysql = H.create_sql("orders_db", "flyway_schema_history", mariadb=False)
    assert "CONSTRAINT `flyway_schema_history_pk` PRIMARY KEY (`installed_rank`)" in mysql[0]
    assert mysql[1] == "CREATE INDEX `flyway_schema_history_s_idx` ON `orders_db`.`flyway_schema_history` (`success`)"
    assert "CONSTRAINT PRIMARY KEY (`installed_rank`)" in H.create_sql("d", "schema_version", mariadb=True)[0]
    assert H.java_hash("hello") == 99162322  # Java's "hello".hashCode()
    assert H.java_hash("") == 0
    assert H.lock_name("orders_db", "flyway_schema_history") == \
        f"Flyway-{H.java_hash('`orders_db`.`flyway_schema_history`')}"


def test_the_history_table_name_is_validated_in_the_config(tmp_path):
    from shared_mysql.config.load import load_config
    from shared_mysql.errors import ConfigError

    p = tmp_path / "c.yaml"
    p.write_text("tenants:\n  orders:\n    migrations: {table: schema_version, dir: migrations/orders}\n")
    m = load_config(p).config.tenants["orders"].migrations
    assert m.table == "schema_version" and m.dir == "migrations/orders"
    for bad in ("'a`b'", "'x; DROP'", "'1abc'", "''"):
        p.write_text(f"tenants:\n  orders:\n    migrations: {{table: {bad}}}\n")
        with pytest.raises(ConfigError, match="migrations.table"):
            load_config(p)


def _server(answers: dict):
    """A stand-in for the server's answers to ALTER ... ALGORITHM=X: {clause: error code or None (accepted)}."""
    from shared_mysql.errors import ServerError

    ran = []

    def run(sql):
        ran.append(sql)
        for clause, code in answers.items():
            if sql.endswith(clause):
                if code is None:
                    return
                raise ServerError(f"query failed: error {code}: refused")
        raise AssertionError(f"unexpected {sql}")

    return run, ran


def test_the_probe_takes_the_first_algorithm_the_server_accepts_mysql8():
    """MySQL 8 has no NOCOPY (error 1800) and refuses INSTANT with 1846: INPLACE, LOCK=NONE is what it does."""
    from shared_mysql.migrations.online import probe

    run, ran = _server({"ALGORITHM=INSTANT": 1846, "ALGORITHM=NOCOPY": 1800, "ALGORITHM=INPLACE, LOCK=NONE": None})
    assert probe(run, "`s`", "ADD INDEX i (v)") == ("INPLACE", "NONE", None)
    assert ran == ["ALTER TABLE `s` ADD INDEX i (v), ALGORITHM=INSTANT",
                   "ALTER TABLE `s` ADD INDEX i (v), ALGORITHM=NOCOPY",
                   "ALTER TABLE `s` ADD INDEX i (v), ALGORITHM=INPLACE, LOCK=NONE"]
    run, _ = _server({"ALGORITHM=INSTANT": 1846, "ALGORITHM=NOCOPY": 1800, "ALGORITHM=INPLACE, LOCK=NONE": 1846,
                      "ALGORITHM=INPLACE, LOCK=SHARED": 1845, "ALGORITHM=INPLACE, LOCK=EXCLUSIVE": 1845,
                      "ALGORITHM=COPY, LOCK=SHARED": None})
    assert probe(run, "`s`", "MODIFY n VARCHAR(20)") == ("COPY", "SHARED", None)
    run, _ = _server({"ALGORITHM=INSTANT": 1054})  # the statement itself is wrong: it would fail at run time
    assert probe(run, "`s`", "DROP COLUMN nope")[2] == "error 1054: refused"
    run, ran = _server({"ALGORITHM=INPLACE, LOCK=NONE": None})  # explicit: only what it names is tried
    assert probe(run, "`s`", "ADD INDEX i (v), ALGORITHM=INPLACE, LOCK=NONE") == ("INPLACE", "NONE", None)
    assert ran == ["ALTER TABLE `s` ADD INDEX i (v), ALGORITHM=INPLACE, LOCK=NONE"]
    # review: ALGORITHM=INPLACE alone, on a FULLTEXT index: the lock is found (SHARED), not taken as DEFAULT
    run, ran = _server({"ALGORITHM=INPLACE, LOCK=NONE": 1846, "ALGORITHM=INPLACE, LOCK=SHARED": None})
    assert probe(run, "`s`", "ADD FULLTEXT INDEX ft (v), ALGORITHM=INPLACE") == ("INPLACE", "SHARED", None)
    # DEFAULT clauses mean "the cheapest" and a column named locked_at is no LOCK clause
    run, ran = _server({"ALGORITHM=INSTANT": 1846, "ALGORITHM=NOCOPY": 1846, "ALGORITHM=INPLACE, LOCK=NONE": 1846,
                        "ALGORITHM=INPLACE, LOCK=SHARED": 1846, "ALGORITHM=INPLACE, LOCK=EXCLUSIVE": 1846,
                        "ALGORITHM=COPY, LOCK=SHARED": None})
    assert probe(run, "`s`", "MODIFY locked_at DATETIME(6), LOCK=DEFAULT") == ("COPY", "SHARED", None)
    assert ran[0] == "ALTER TABLE `s` MODIFY locked_at DATETIME(6), ALGORITHM=INSTANT"


@pytest.mark.parametrize("sql, want", [
    ("ALTER TABLE big ADD COLUMN c INT", ("big", "ADD COLUMN c INT")),
    ("alter online ignore table `we``ird` drop x", ("`we``ird`", "drop x")),
    ("ALTER TABLE orders_db.big FORCE", ("orders_db.big", "FORCE")),
    ("CREATE UNIQUE INDEX u ON big (v, n)", ("big", "ADD UNIQUE INDEX u (v, n)")),
    ("CREATE INDEX IF NOT EXISTS i USING BTREE ON big (v) ALGORITHM=INPLACE",
     ("big", "ADD INDEX i (v) ALGORITHM=INPLACE")),
    ("DROP INDEX i ON big", ("big", "DROP INDEX i")),
    ("OPTIMIZE TABLE big", ("big", "FORCE")),
    ("INSERT INTO big VALUES (1)", None), ("CREATE TABLE t (id INT)", None),
])
def test_table_changing_statements_become_alters(sql, want):
    from shared_mysql.migrations.online import as_alter

    got = as_alter(sql)
    assert (got if got is None else (got[0], " ".join(got[1].split()))) == want


@pytest.mark.parametrize("text", [
    "CREATE PROCEDURE p() BEGIN IF (1=0) THEN SELECT 1; END IF; END;\nSELECT 2;",
    "CREATE PROCEDURE p() BEGIN SELECT REPEAT('a',3); END;\nSELECT 2;",
    "CREATE PROCEDURE p() BEGIN CREATE TEMPORARY TABLE IF NOT EXISTS t (a INT); DROP TEMPORARY TABLE IF EXISTS t; "
    "END;\nSELECT 2;",
    "CREATE DEFINER=`a`@`%` PROCEDURE IF NOT EXISTS p() BEGIN SELECT 1; END;\nSELECT 2;",
    "CREATE AGGREGATE FUNCTION f(x INT) RETURNS INT BEGIN DECLARE s INT DEFAULT 0; DECLARE CONTINUE HANDLER FOR NOT "
    "FOUND RETURN s; LOOP FETCH GROUP NEXT ROW; SET s = s + x; END LOOP; END;\nSELECT 2;",
    "BEGIN NOT ATOMIC SELECT 1; SELECT 2; END;\nSELECT 2;",
    "DELIMITER // -- comment\nCREATE PROCEDURE p() BEGIN SELECT 1; END//\nDELIMITER ;\nSELECT 2;",
    "CREATE PROCEDURE p() BEGIN SELECT IF(1,2,3); WHILE x < 3 DO SET x = x + 1; END WHILE; REPEAT SET x = x - 1; "
    "UNTIL x = 0 END REPEAT; END;\nSELECT 2;",
])
def test_compound_bodies_stay_whole_review_cases(text):
    """Review: IF (cond) THEN read as the IF() function, REPEAT() as a loop, IF NOT EXISTS inside a body, AGGREGATE
    functions, BEGIN NOT ATOMIC and a commented DELIMITER line split bodies wrongly."""
    got = split(text)
    assert len(got) == 2 and got[1].sql == "SELECT 2"


@pytest.mark.parametrize("sql, want", [
    ("/* c */ ALTER TABLE big MODIFY v BIGINT", "ALTER TABLE big MODIFY v BIGINT"),
    ("-- c\nALTER TABLE big FORCE", "ALTER TABLE big FORCE"),
    ("/*!ALTER TABLE big MODIFY v BIGINT */", "ALTER TABLE big MODIFY v BIGINT"),
    ("/*!50100 ALTER TABLE big FORCE */", "ALTER TABLE big FORCE"),
])
def test_leading_comments_and_executable_comments_do_not_hide_a_statement(sql, want):
    from shared_mysql.migrations.online import normalize

    assert normalize(sql) == want


def test_optimize_of_several_tables_and_copies_by_select_are_seen():
    from shared_mysql.migrations.online import as_alters, copy_sources

    assert as_alters("OPTIMIZE TABLE big, `other`") == [("big", "FORCE"), ("`other`", "FORCE")]
    assert copy_sources("CREATE TABLE big3 AS SELECT * FROM big WHERE x = 'FROM nope'") == ["big"]
    assert copy_sources("INSERT INTO a SELECT * FROM b JOIN c ON 1") == ["b", "c"]
    assert copy_sources("INSERT INTO a VALUES (1)") == []
