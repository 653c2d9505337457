"""Exact SQL per flavor. MariaDB gets hashes (it logs statements verbatim); MySQL rewrites passwords itself."""

from shared_mysql.sql import MARIADB_10_11, MYSQL_8_0, detect_flavor
from shared_mysql.sql import statements as st
from shared_mysql.sql.passwords import ALPHABET, generate_password, native_hash
from shared_mysql.sql.quoting import (db_pattern_matches_exactly, escape_db_pattern, literal,
                                      unescape_db_pattern)

PW = "Abcdefghijklmnopqrstuvwxyz012345"
HASH = native_hash(PW)


def test_native_hash_known_vector():
    # mysql> SELECT PASSWORD('password');
    assert native_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"


def test_generated_passwords():
    pws = {generate_password() for _ in range(200)}
    assert len(pws) == 200
    for pw in pws:
        assert len(pw) == 32 and set(pw) <= set(ALPHABET)


def test_create_user_mariadb_uses_hash():
    s = st.create_user(MARIADB_10_11, "orders_user", "%", PW, require_ssl=True, max_connections=20)
    assert s.sql == (f"CREATE USER 'orders_user'@'%' IDENTIFIED BY PASSWORD '{HASH}' "
                     "REQUIRE SSL WITH MAX_USER_CONNECTIONS 20")
    assert PW not in s.sql
    assert s.safe == ("CREATE USER 'orders_user'@'%' IDENTIFIED BY PASSWORD '<redacted>' "
                      "REQUIRE SSL WITH MAX_USER_CONNECTIONS 20")


def test_create_user_mysql_uses_caching_sha2_and_is_redacted():
    s = st.create_user(MYSQL_8_0, "orders_user", "%", PW, require_ssl=True, max_connections=20)
    assert s.sql == (f"CREATE USER 'orders_user'@'%' IDENTIFIED WITH caching_sha2_password BY '{PW}' "
                     "REQUIRE SSL WITH MAX_USER_CONNECTIONS 20")
    assert PW not in s.safe and HASH not in s.safe


def test_set_password_both_flavors():
    assert st.set_password(MARIADB_10_11, "u", "%", PW).sql == f"ALTER USER 'u'@'%' IDENTIFIED BY PASSWORD '{HASH}'"
    assert st.set_password(MYSQL_8_0, "u", "%", PW).sql == \
        f"ALTER USER 'u'@'%' IDENTIFIED WITH caching_sha2_password BY '{PW}'"
    for f in (MARIADB_10_11, MYSQL_8_0):
        assert "<redacted>" in st.set_password(f, "u", "%", PW).safe


def test_alter_user_resets_every_property_the_config_owns_require_before_with():
    # MariaDB insists on REQUIRE before WITH; per-hour limits, statement time, expiry policy and lock all reset.
    assert st.alter_user_limits("u", "%", require_ssl=True, max_connections=5, flavor=MARIADB_10_11).sql == (
        "ALTER USER 'u'@'%' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 0 MAX_UPDATES_PER_HOUR 0 "
        "MAX_CONNECTIONS_PER_HOUR 0 MAX_USER_CONNECTIONS 5 MAX_STATEMENT_TIME 0 PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK")
    assert st.alter_user_limits("u", "%", require_ssl=True, max_connections=5, flavor=MYSQL_8_0).sql == (
        "ALTER USER 'u'@'%' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 0 MAX_UPDATES_PER_HOUR 0 "
        "MAX_CONNECTIONS_PER_HOUR 0 MAX_USER_CONNECTIONS 5 PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK")


def test_new_revoke_forms_per_flavor():
    assert st.revoke(MARIADB_10_11, frozenset({"FILE"}), "*.*", "PUBLIC", "").sql == "REVOKE FILE ON *.* FROM PUBLIC"
    assert st.revoke(MARIADB_10_11, frozenset({"privilege bits 0x10000000000"}), "*.*", "u", "%").sql == \
        "REVOKE ALL PRIVILEGES ON *.* FROM 'u'@'%'"
    assert st.revoke_routine(frozenset({"EXECUTE", "GRANT OPTION"}), "PROCEDURE", "billing_db", "leak", "u", "%").sql \
        == "REVOKE EXECUTE, GRANT OPTION ON PROCEDURE `billing_db`.`leak` FROM 'u'@'%'"
    assert st.revoke_routine(frozenset({"EXECUTE"}), "FUNCTION", "d", "f", "PUBLIC", "").sql == \
        "REVOKE EXECUTE ON FUNCTION `d`.`f` FROM PUBLIC"
    assert [x.sql for x in st.revoke_proxy("admin", "%", "u\\x", "%")] == [
        "DELETE FROM mysql.proxies_priv WHERE User = CONVERT(X'755c78' USING utf8mb4) AND Host = '%' AND "
        "Proxied_user = 'admin' AND Proxied_host = '%'", "FLUSH PRIVILEGES"]
    assert st.revoke_role(MARIADB_10_11, "r1", "", "PUBLIC", "").sql == "REVOKE `r1` FROM PUBLIC"
    assert st.set_default_role_none(MARIADB_10_11, "u", "%").sql == "SET DEFAULT ROLE NONE FOR 'u'@'%'"
    assert st.set_default_role_none(MYSQL_8_0, "u", "%").sql == "SET DEFAULT ROLE NONE TO 'u'@'%'"
    assert st.clear_mandatory_roles().sql == "SET PERSIST mandatory_roles = ''"


def test_account_names_from_the_server_are_quoted_whatever_they_hold():
    # A backslash is an escape in string literals (unless NO_BACKSLASH_ESCAPES): such names go as identifiers.
    assert st.drop_user("bad\\name", "%").sql == "DROP USER IF EXISTS `bad\\name`@'%'"
    assert st.drop_user("a`b\\", "h").sql == "DROP USER IF EXISTS `a``b\\`@'h'"
    assert st.drop_user("bad\nname", "%").sql == "DROP USER IF EXISTS 'bad\nname'@'%'"
    assert st.drop_user("", "localhost").sql == "DROP USER IF EXISTS ''@'localhost'"
    assert st.drop_user("o'brien", "%").sql == "DROP USER IF EXISTS 'o''brien'@'%'"


def test_grant_escapes_wildcards():
    for f in (MARIADB_10_11, MYSQL_8_0):
        assert st.grant_on_database(f, f.db_all_privileges, "service1_db", "service1_user", "%").sql == \
            "GRANT ALL PRIVILEGES ON `service1\\_db`.* TO 'service1_user'@'%'"
        assert st.grant_on_database(f, frozenset({"SELECT"}), "a_db", "a_readonly", "%").sql == \
            "GRANT SELECT ON `a\\_db`.* TO 'a_readonly'@'%'"


def test_revoke_forms():
    f = MARIADB_10_11
    assert st.revoke(f, frozenset({"SUPER", "PROCESS"}), "*.*", "u", "%").sql == \
        "REVOKE PROCESS, SUPER ON *.* FROM 'u'@'%'"
    assert st.revoke(f, f.db_all_privileges, st.scope_for_pattern("a_db"), "u", "%").sql == \
        "REVOKE ALL PRIVILEGES ON `a_db`.* FROM 'u'@'%'"
    assert st.revoke(f, frozenset({"INSERT"}), st.scope_for_table("a_db", "t"), "u", "%").sql == \
        "REVOKE INSERT ON `a_db`.`t` FROM 'u'@'%'"


def test_database_statements():
    assert st.create_database("a_db", "utf8mb4", "utf8mb4_unicode_ci").sql == \
        "CREATE DATABASE IF NOT EXISTS `a_db` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    assert st.drop_database("a_db").sql == "DROP DATABASE IF EXISTS `a_db`"
    assert st.drop_user("a_user", "%").sql == "DROP USER IF EXISTS 'a_user'@'%'"


def test_db_all_privileges_per_flavor():
    assert "DELETE HISTORY" in MARIADB_10_11.db_all_privileges
    assert "DELETE HISTORY" not in MYSQL_8_0.db_all_privileges
    assert "GRANT OPTION" not in MYSQL_8_0.db_all_privileges


def test_detect_flavor():
    f = detect_flavor("5.5.5-10.11.6-MariaDB-0+deb12u1-log")
    assert f.is_mariadb and f.version == (10, 11, 6)
    f = detect_flavor("8.0.35")
    assert not f.is_mariadb and f.version == (8, 0, 35)


def test_pattern_helpers():
    assert escape_db_pattern("a_b%c") == "a\\_b\\%c"
    assert db_pattern_matches_exactly("a\\_b") and not db_pattern_matches_exactly("a_b")
    assert not db_pattern_matches_exactly("a%")
    assert unescape_db_pattern("a\\_b") == "a_b"


def test_literal_quotes():
    assert literal("it's") == "'it''s'"


def test_revoke_columns_and_roles():
    assert st.revoke_columns(frozenset({"SELECT", "UPDATE"}), "a_db", "t", "c", "u", "%").sql == \
        "REVOKE SELECT (`c`), UPDATE (`c`) ON `a_db`.`t` FROM 'u'@'%'"
    assert st.revoke_role(MARIADB_10_11, "r_ops", "", "u", "%").sql == "REVOKE `r_ops` FROM 'u'@'%'"
    assert st.revoke_role(MYSQL_8_0, "r_ops", "%", "u", "%").sql == "REVOKE 'r_ops'@'%' FROM 'u'@'%'"
