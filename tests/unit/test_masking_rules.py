"""Masking rules: parsing (config), and what each becomes against a schema (pure; no server)."""

from __future__ import annotations

import pytest

from shared_mysql.config.load import load_config
from shared_mysql.errors import ConfigError
from shared_mysql.masking.plan import ColumnInfo, MaskingError, TableInfo, build
from shared_mysql.masking.rules import Rule, RuleError, merge, parse_rule, parse_rules


@pytest.mark.parametrize("key, text, want", [
    ("users.email", "email", Rule("users", "email", "email")),
    ("users.name", " hash ", Rule("users", "name", "hash")),
    ("users.phone", "fixed('010-0000-0000')", Rule("users", "phone", "fixed", "010-0000-0000")),
    ("users.phone", 'fixed("it\'s")', Rule("users", "phone", "fixed", "it's")),
    ("users.phone", "fixed('it''s')", Rule("users", "phone", "fixed", "it's")),
    ("users.age", "fixed(0)", Rule("users", "age", "fixed", 0)),
    ("users.score", "fixed(-1.5)", Rule("users", "score", "fixed", -1.5)),
    ("payments.card", "null", Rule("payments", "card", "null")),
    ("sessions.*", "truncate", Rule("sessions", None, "truncate")),
    ("`my table`.`e``mail`", "hash", Rule("my table", "e`mail", "hash")),
    ("t$1.c_2", "shuffle", Rule("t$1", "c_2", "shuffle")),
])
def test_rules_parse(key, text, want):
    assert parse_rule(key, text) == want


@pytest.mark.parametrize("key, text, fragment", [
    ("users", "hash", "is not `table.column`"),
    ("users.email.x", "hash", "is not `table.column`"),
    ("users.email\n", "hash", "is not `table.column`"),
    ("users.em ail", "hash", "is not `table.column`"),
    ("users.email", "md5", "unknown rule 'md5'"),
    ("users.email", "HASH", "unknown rule"),
    ("users.email", "fixed(x)", "must be quoted"),
    ("users.email", "fixed('a'b')", "must be doubled"),
    ("users.email", "fixed(NULL)", "use the rule null"),
    ("users.email", 7, "the rule must be text"),
    ("users.*", "hash", "`table.*` takes only truncate"),
    ("`a `.b", "hash", "without trailing spaces"),
    ("`" + "x" * 65 + "`.b", "hash", "1-64 characters"),
])
def test_bad_rules_are_one_line_naming_the_key(key, text, fragment):
    with pytest.raises(RuleError) as e:
        parse_rule(key, text)
    assert fragment in str(e.value) and "\n" not in str(e.value).rstrip("\n")


def test_a_truncated_table_takes_no_other_rule_and_a_column_one_rule():
    with pytest.raises(RuleError, match="is truncated"):
        parse_rules({"s.*": "truncate", "s.token": "hash"})
    with pytest.raises(RuleError, match="given twice"):
        parse_rules({"users.email": "hash", "users.EMAIL": "email"})  # columns: case-insensitive
    assert len(parse_rules({"users.email": "hash", "users.EMAIL": "hash"})) == 1
    # tables: case-sensitive (on Linux `Users` and `users` are two tables)
    assert len(parse_rules({"users.email": "hash", "USERS.email": "email"})) == 2


def test_two_configs_rules_are_merged_and_a_conflict_is_refused():
    assert merge(None, None, "x") is None
    assert merge({}, None, "x") == {}
    assert merge({"u.a": "hash"}, {"u.b": "null"}, "x") == {"u.a": "hash", "u.b": "null"}
    with pytest.raises(RuleError, match="is hash in this config but email in the source's"):
        merge({"u.a": "hash"}, {"u.a": "email"}, "tenants.t.masking")


def test_the_config_names_the_tenant_and_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("tenants:\n  orders:\n    masking:\n      users.email: emial\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "tenants.orders.masking" in str(e.value) and "users.email: unknown rule 'emial'" in str(e.value)
    p.write_text("tenants:\n  orders:\n    masking:\n      users.email: [hash]\n")
    with pytest.raises(ConfigError):
        load_config(p)
    p.write_text("tenants:\n  orders:\n    masking: {}\n")
    assert load_config(p).config.tenants["orders"].masking == {}
    p.write_text("tenants:\n  orders: {}\n")
    assert load_config(p).config.tenants["orders"].masking is None


def _users(**over) -> dict[str, TableInfo]:
    cols = {
        "id": ColumnInfo("id", "int", "int(11)", False, None),
        "email": ColumnInfo("email", "varchar", "varchar(100)", False, 100),
        "short": ColumnInfo("short", "varchar", "varchar(10)", True, 10),
        "tok": ColumnInfo("tok", "varbinary", "varbinary(16)", True, 16),
        "big": ColumnInfo("big", "bigint", "bigint(20) unsigned", True, None),
        "age": ColumnInfo("age", "int", "int(11)", True, None),
        "gen": ColumnInfo("gen", "varchar", "varchar(100)", True, 100, generated=True),
        "js": ColumnInfo("js", "json", "longtext", True, 2**32),
    }
    t = TableInfo("users", cols, ("id",), (("email",),), 1000, **over)
    return {"users": t}


def test_expressions_are_exact_and_read_the_salt_from_a_session_variable():
    [tp] = build("t", parse_rules({"users.email": "email", "users.tok": "hash", "users.big": "hash",
                                    "users.age": "fixed(7)", "users.short": "null"}), _users())
    by = {c.column: c for c in tp.columns}
    assert by["email"].expr == ("IF(`email` IS NULL, NULL, CONCAT('u', LEFT(SHA2(CONCAT(@smr_salt, CONVERT(`email` "
                                "USING utf8mb4)), 256), 32), '@example.com'))")
    assert by["tok"].expr == "IF(`tok` IS NULL, NULL, UNHEX(LEFT(SHA2(CONCAT(@smr_salt, `tok`), 256), 32)))"
    assert by["big"].expr.endswith("16), 16, 10) AS UNSIGNED))")
    assert by["age"].expr == "IF(`age` IS NULL, NULL, 7)"
    assert by["short"].expr == "NULL"
    assert all("@smr_salt" in c.expr or c.rule.kind in ("fixed", "null") for c in tp.columns)


@pytest.mark.parametrize("rules, fragment", [
    ({"users.short": "hash"}, "holds 10 characters; hash needs at least 16"),
    ({"users.short": "email"}, "email needs a text column of at least 29"),
    ({"users.age": "hash"}, "hash needs a text column"),
    ({"users.js": "hash"}, "hash needs a text column"),
    ({"users.gen": "hash"}, "generated column"),
    ({"users.id": "null"}, "primary key"),
    ({"users.email": "fixed('a')"}, "unique index"),
    ({"users.email": "shuffle"}, "unique index"),
    ({"users.email": "null"}, "NOT NULL"),
    ({"users.age": "fixed('x')"}, "give a number"),
    ({"users.age": "fixed(1.5)"}, "whole number"),
    ({"users.short": "fixed('12345678901')"}, "longer than varchar(10)"),
    ({"nope.x": "hash"}, "no table nope"),
    ({"users.nope": "hash"}, "has no column nope"),
])
def test_rules_that_cannot_apply_name_the_key(rules, fragment):
    with pytest.raises(MaskingError) as e:
        build("orders", parse_rules(rules), _users())
    assert fragment in str(e.value) and str(e.value).startswith(f'tenants.orders.masking."{next(iter(rules))}"')


def test_a_table_with_update_triggers_carries_them_to_be_set_aside():
    [tp] = build("t", parse_rules({"users.email": "email"}), _users(triggers=("audit_upd",)))
    assert tp.triggers == ("audit_upd",)


def test_table_and_column_names_match_without_case():
    [tp] = build("t", parse_rules({"USERS.Email": "email"}), _users())
    assert tp.table == "users" and tp.columns[0].column == "email"


def test_tables_differing_only_in_case_are_matched_exactly():
    """`Mixed` and `mixed` are two tables on Linux: a rule for one never masks the other, and a name matching
    both only by case is refused."""
    tables = _users()
    cols = {"id": ColumnInfo("id", "int", "int(11)", False, None),
            "email": ColumnInfo("email", "varchar", "varchar(100)", True, 100)}
    tables["Mixed"] = TableInfo("Mixed", cols, ("id",), (), 1)
    tables["mixed"] = TableInfo("mixed", cols, ("id",), (), 1)
    [a, _] = build("t", parse_rules({"Mixed.email": "email", "users.email": "email"}), tables)
    assert a.table == "Mixed"
    with pytest.raises(MaskingError, match="tables Mixed and mixed differ from MIXED only in case"):
        build("t", parse_rules({"MIXED.email": "email"}), tables)


def test_a_column_referencing_a_masked_column_must_be_masked_the_same_way():
    tables = _users()
    orders = TableInfo("orders", {"id": ColumnInfo("id", "int", "int(11)", False, None),
                                  "email": ColumnInfo("email", "varchar", "varchar(100)", True, 100)},
                       ("id",), (), 10, references=(("email", "users", "email"),))
    tables["orders"] = orders
    with pytest.raises(MaskingError, match=r'orders.email references users.email, and orders.email is not masked: the '
                                           r'two hold the same values; add "orders.email": email'):
        build("t", parse_rules({"users.email": "email"}), tables)
    # the other way round: the child masked, the parent it references not
    with pytest.raises(MaskingError, match=r'and users.email is not masked.*add "users.email": email'):
        build("t", parse_rules({"orders.email": "email"}), tables)
    with pytest.raises(MaskingError, match="is hash"):
        build("t", parse_rules({"users.email": "email", "orders.email": "hash"}), tables)
    assert len(build("t", parse_rules({"users.email": "email", "orders.email": "email"}), tables)) == 2
    assert len(build("t", parse_rules({"users.email": "email", "orders.*": "truncate"}), tables)) == 2


def test_the_rule_checks_are_case_sensitive_on_both_flavors():
    rules = parse_rules({"users.email": "email"})
    [maria] = build("t", rules, _users())
    [mysql] = build("t", rules, _users(), mysql=True)
    assert maria.columns[0].violation == ("`email` IS NOT NULL AND CAST(`email` AS BINARY) NOT REGEXP "
                                          "'^u[0-9a-f]{32}@example[.]com$'")
    # MySQL 8's ICU refuses REGEXP on binary strings (error 3995): REGEXP_LIKE with the case-sensitive flag
    assert mysql.columns[0].violation == ("`email` IS NOT NULL AND NOT REGEXP_LIKE(`email`, "
                                          "'^u[0-9a-f]{32}@example[.]com$', 'c')")


@pytest.mark.parametrize("col, rule, fragment", [
    (ColumnInfo("amt", "decimal", "decimal(10,2)", True, None), "fixed(1e20)", "does not fit decimal(10,2)"),
    (ColumnInfo("amt", "decimal", "decimal(10,2) unsigned", True, None), "fixed(-1)", "does not fit"),
    (ColumnInfo("n", "tinyint", "tinyint(4)", True, None), "fixed(300)", "does not fit tinyint(4) (-128..127)"),
    (ColumnInfo("n", "int", "int(10) unsigned", True, None), "fixed(-1)", "(0..4294967295)"),
    (ColumnInfo("d", "date", "date", True, None), "fixed('notadate')", "is not a date value"),
    (ColumnInfo("d", "date", "date", True, None), "fixed(20000101)", "give a quoted value"),
    (ColumnInfo("t", "time", "time", True, None), "fixed('25 hours')", "is not a time value"),
    (ColumnInfo("e", "enum", "enum('a','it''s')", True, 4), "fixed('b')", "is not one of enum('a','it''s')"),
    # review 2
    (ColumnInfo("amt", "decimal", "decimal(5,2)", True, None), "fixed(999.999)", "does not fit decimal(5,2)"),
    (ColumnInfo("y", "year", "year(4)", True, None), "fixed(1800)", "is not a YEAR"),
    (ColumnInfo("d", "date", "date", True, None), "fixed('2000-13-45')", "is not a date value"),
    (ColumnInfo("t", "time", "time", True, None), "fixed('999:00:00')", "is not a time value"),
    (ColumnInfo("ts", "timestamp", "timestamp", True, None), "fixed('1960-01-01')", "is not a timestamp value"),
    (ColumnInfo("f", "float", "float", True, None), "fixed(1e300)", "does not fit float"),
    (ColumnInfo("l", "varchar", "varchar(10)", True, 10, charset="latin1"), "fixed('한국')", "latin1 l cannot hold"),
    (ColumnInfo("b", "bit", "bit(8)", True, None), "fixed('abc')", "give a number"),
    (ColumnInfo("b", "bit", "bit(8)", True, None), "fixed(256)", "does not fit bit(8)"),
])
def test_a_fixed_value_that_does_not_fit_is_refused_before_anything_changes(col, rule, fragment):
    tables = {"t": TableInfo("t", {"id": ColumnInfo("id", "int", "int(11)", False, None), col.name: col}, ("id",),
                             (), 1)}
    with pytest.raises(MaskingError) as e:
        build("x", parse_rules({f"t.{col.name}": rule}), tables)
    assert fragment in str(e.value)


def test_fixed_values_that_fit_and_yaml_null():
    cols = {"id": ColumnInfo("id", "int", "int(11)", False, None),
            "d": ColumnInfo("d", "date", "date", True, None),
            "e": ColumnInfo("e", "enum", "enum('a','it''s')", True, 4),
            "amt": ColumnInfo("amt", "decimal", "decimal(10,2)", True, None)}
    tables = {"t": TableInfo("t", cols, ("id",), (), 1)}
    [tp] = build("x", parse_rules({"t.d": "fixed('2000-01-01')", "t.e": "fixed('it''s')", "t.amt": "fixed(0.5)"}),
                 tables)
    assert len(tp.columns) == 3
    assert parse_rule("t.card", None).kind == "null"
    with pytest.raises(RuleError, match="out of range"):
        parse_rule("t.amt", "fixed(1e999)")


def test_yaml_null_is_the_null_rule(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("tenants:\n  orders:\n    masking:\n      payments.card: null\n")
    assert load_config(p).config.tenants["orders"].masking == {"payments.card": "null"}
