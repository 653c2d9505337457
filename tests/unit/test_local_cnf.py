"""The embedded server's my.cnf, init file, certificates and child environment, without starting a server.

Hostile inputs sit next to the happy ones: a parameter or a state-dir path that tries to add a line or a comment,
a parameter that names a forced setting in any spelling mysqld reads, a certificate for the wrong host.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from shared_mysql.config import params
from shared_mysql.errors import LocalServerError
from shared_mysql.local import certs
from shared_mysql.local import server as srv
from shared_mysql.local import procfs
from shared_mysql.local.server import OWNED_MARKER, LocalServer, cnf_value_problem, option_forms, parse_cnf
from shared_mysql.sql.passwords import native_hash

# A few real option names (MariaDB 10.11), so that tests never run a binary.
KNOWN_OPTIONS = frozenset({"slow_query_log", "log_bin", "ssl", "port", "socket", "user", "max_connections",
                           "wait_timeout", "sql_mode"})


def server(tmp_path: Path, flavor: str = "mariadb", parameters: dict | None = None, host: str = "127.0.0.1",
           root: Path | None = None) -> LocalServer:
    binary = Path("/usr/sbin/mariadbd" if flavor == "mariadb" else "/usr/sbin/mysqld")
    s = LocalServer(root or tmp_path / "state", host=host, port=13306, parameters=parameters, binary=binary)
    s._version = "10.11.6-MariaDB" if flavor == "mariadb" else "8.0.35"
    s._option_names = KNOWN_OPTIONS
    return s


@pytest.fixture
def unchecked(monkeypatch):
    """The config layer's check switched off: what the server side refuses on its own (defense in depth)."""
    monkeypatch.setattr(params, "check_parameter", lambda name, value: None)


def settings(text: str) -> list[tuple[str, str]]:
    return [tuple(ln.split(" = ", 1)) for ln in text.splitlines() if " = " in ln and not ln.startswith("#")]


# -- the rendered file --------------------------------------------------------------------------------------
def test_default_cnf_user_parameters_first_owned_block_last(tmp_path):
    s = server(tmp_path, parameters={"max_connections": 300})
    text = s.render_cnf()
    head, owned = text.split(OWNED_MARKER + "\n")
    assert head.startswith("# Written by shared-mysql") and "\n[mariadbd]\n" in head
    assert "max_connections = 300" in head and "slow_query_log = ON" in head
    owned_names = [n for _, n, _ in s.owned_settings()]
    assert [n for n, _ in settings(owned)] == owned_names
    for name in ("require_secure_transport", "skip_name_resolve", "log_bin_trust_function_creators",
                 "secure_file_priv", "bind_address", "socket", "ssl_ca", "log_bin"):
        assert name in owned_names
    got = parse_cnf(text)
    assert got["require_secure_transport"] == "ON" and got["log_bin_trust_function_creators"] == "ON"
    assert got["secure_file_priv"] == str(s.paths.secure_files)
    assert got["tmpdir"] == str(s.paths.root / "tmp")
    assert got["socket"] == str(s.paths.root / "run" / "mysqld.sock")
    # every line is a comment, the section, or `name = value` with a clean value
    for line in text.splitlines():
        assert line.startswith(("#", "[mariadbd]")) or cnf_value_problem(line.split(" = ", 1)[1]) is None, line


def test_mysql_flavor_section_mysqlx_off_and_binlog_expiry(tmp_path):
    text = server(tmp_path, flavor="mysql").render_cnf()
    assert "\n[mysqld]\n" in text
    got = parse_cnf(text)
    assert got["mysqlx"] == "OFF" and got["binlog_expire_logs_seconds"] == str(14 * 86400)
    assert "server_audit" not in got and "expire_logs_days" not in got


def test_defaults_pass_the_config_checks():
    for name, value in srv.DEFAULT_PARAMETERS.items():
        params.check_parameter(name, value)


def test_time_zone_is_written_as_the_startup_option(tmp_path):
    got = parse_cnf(server(tmp_path, parameters={"time_zone": "+00:00"}).render_cnf())
    assert got["default_time_zone"] == "+00:00" and "time_zone" not in got


def test_other_flavor_parameter_is_refused(tmp_path):
    with pytest.raises(LocalServerError, match=r"^instance.parameters.max_execution_time: only MySQL has it"):
        server(tmp_path, parameters={"max_execution_time": 1000}).render_cnf()


@pytest.mark.parametrize("value", ["200\nskip_grant_tables", "200\rskip_grant_tables = ON", "x\x00y", "a\x0bb",
                                   "2 # comment", "ON\u2028skip_grant_tables", " 200", "200 ", "a\\nb", "'200'"])
def test_hostile_value_never_reaches_my_cnf(tmp_path, value):
    s = server(tmp_path, parameters={"max_connections": value})
    with pytest.raises(LocalServerError) as e:
        s.render_cnf()
    assert str(e.value).startswith("instance.parameters.max_connections: ") and "\n" not in str(e.value)


@pytest.mark.parametrize("value", ["200\nskip_grant_tables", "x # y", "OFF\n[client]", "a\\b", '"q"', " x"])
def test_hostile_value_refused_even_without_the_config_check(tmp_path, unchecked, monkeypatch, value):
    monkeypatch.setattr(params, "render_value", str)
    with pytest.raises(LocalServerError) as e:
        server(tmp_path, parameters={"sql_mode": value}).render_cnf()
    assert str(e.value).startswith("instance.parameters.sql_mode: ") and "my.cnf cannot hold" in str(e.value)


FORCED = ["require_secure_transport", "skip_name_resolve", "log_bin_trust_function_creators", "secure_file_priv",
          "bind_address", "socket", "ssl_ca", "ssl_key", "datadir", "log_bin", "server_audit_logging", "user"]


def forms_of(name: str) -> list[str]:
    out = [name] + [f"{p}_{name}" for p in srv.OPTION_PREFIXES] + ["loose_skip_" + name]
    if len(name) > 8:
        out.append(name[: len(name) - 3])  # an unambiguous abbreviation
    return out


@pytest.mark.parametrize("form", sorted({f for name in FORCED for f in forms_of(name)}))
def test_no_parameter_reaches_a_forced_setting_in_any_spelling(tmp_path, unchecked, form):
    with pytest.raises(LocalServerError) as e:
        server(tmp_path, parameters={form: "OFF"}).render_cnf()
    msg = str(e.value)
    assert msg.startswith(f"instance.parameters.{form}: shared-mysql owns ") and "remove" in msg


@pytest.mark.parametrize("name", ["ssl", "skip_ssl", "skip_grant_tables", "init_file", "skip_networking",
                                  "plugin_load", "mysqlx", "require_secure"])
def test_reserved_names_are_refused_by_the_config_check_too(tmp_path, name):
    with pytest.raises(LocalServerError, match=rf"^instance.parameters.{name}: .*owned by shared-mysql"):
        server(tmp_path, parameters={name: "OFF"}).render_cnf()


@pytest.mark.parametrize("name, owner", [("ssl_cipher", "ssl"), ("server_audit_excl_users", "server_audit"),
                                         ("log_bin_index", "log_bin_index"), ("skip_log_bin", "log_bin")])
def test_family_members_of_forced_settings_are_refused_without_the_config_check(tmp_path, unchecked, name, owner):
    with pytest.raises(LocalServerError, match=rf"^instance.parameters.{name}: shared-mysql owns {owner} "):
        server(tmp_path, parameters={name: "x"}).render_cnf()


def test_exact_option_is_not_an_abbreviation(tmp_path, unchecked):
    # slow_query_log is a prefix of the forced slow_query_log_file, but mysqld reads the exact name first.
    got = parse_cnf(server(tmp_path, parameters={"slow_query_log": False}).render_cnf())
    assert got["slow_query_log"] == "OFF"


def test_unreadable_option_list_falls_back_to_known_names(tmp_path, unchecked):
    s = server(tmp_path, parameters={"slow_query_log": False, "slow_query": True})
    s._option_names = frozenset()
    with pytest.raises(LocalServerError, match="^instance.parameters.slow_query: shared-mysql owns slow_query_log_"):
        s.render_cnf()
    s.parameters.pop("slow_query")
    assert parse_cnf(s.render_cnf())["slow_query_log"] == "OFF"


def test_option_forms_strip_every_prefix():
    assert option_forms("loose_skip_require_secure_transport") >= {"skip_require_secure_transport",
                                                                   "require_secure_transport"}
    assert option_forms("Disable-SSL") == {"disable_ssl", "ssl"}


@pytest.mark.parametrize("bad, problem", [("a\nb", "control character"), ("a#b", "'#'"), ("a\\b", "backslash"),
                                          ("tab\there", "control character"), ("it's", "quote")])
def test_state_dir_path_that_my_cnf_cannot_hold_is_refused(tmp_path, bad, problem):
    s = server(tmp_path, root=tmp_path / bad / "state")
    with pytest.raises(LocalServerError) as e:
        s.render_cnf()
    msg = str(e.value)
    assert msg.startswith("state directory ") and problem in msg and "move shared-mysql.yaml" in msg


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "localhost\nskip_grant_tables", "db.example.com",
                                  "127.0.0.1 # x"])
def test_non_loopback_or_hostile_host_is_refused(tmp_path, host):
    with pytest.raises(LocalServerError, match=r"^instance.host: .* is not a loopback address"):
        server(tmp_path, host=host).render_cnf()


@pytest.mark.parametrize("host", ["127.0.0.2", "::1", "localhost"])
def test_other_loopback_hosts_are_fine(tmp_path, host):
    assert parse_cnf(server(tmp_path, host=host).render_cnf())["bind_address"] == host


# -- the socket ---------------------------------------------------------------------------------------------
def test_long_state_path_gets_a_private_socket_dir_outside_it(tmp_path):
    deep = tmp_path / ("d" * 80) / ("e" * 40)
    s = server(tmp_path, root=deep)
    assert s.paths.socket_dir.parent == srv.SOCKET_TEMP_ROOT
    assert s.paths.socket_dir.name.startswith(f"shared-mysql-{os.geteuid()}-")
    assert len(os.fsencode(s.paths.socket)) <= srv.SOCKET_PATH_MAX
    assert server(tmp_path).paths.socket_dir == tmp_path / "state" / "run"


def test_private_dir_refuses_a_symlink_a_wide_mode_and_a_file(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(LocalServerError, match="is a symlink"):
        srv._private_dir(tmp_path / "link", fix_mode=False)
    wide = tmp_path / "wide"
    wide.mkdir()
    wide.chmod(0o777)
    with pytest.raises(LocalServerError, match="mode 777, not 700"):
        srv._private_dir(wide, fix_mode=False)
    srv._private_dir(wide, fix_mode=True)
    assert wide.stat().st_mode & 0o777 == 0o700
    (tmp_path / "file").write_text("")
    with pytest.raises(LocalServerError, match="not a directory"):
        srv._private_dir(tmp_path / "file", fix_mode=False)


# -- the init file ------------------------------------------------------------------------------------------
def test_init_file_has_no_plaintext_password_and_drops_dynamically(tmp_path):
    sql = server(tmp_path)._bootstrap_sql("Plaintext123secret")
    assert "Plaintext123secret" not in sql
    assert sql.startswith("SET sql_log_bin = 0;\n")
    assert "IDENTIFIED BY PASSWORD '*" in sql
    assert "FROM mysql.global_priv WHERE" in sql and "auth_or" in sql and "is_role" in sql
    assert "PREPARE shared_mysql_drop" in sql and "'DO 0'" in sql
    assert "'root'@" not in sql  # no fixed list of host names


def test_init_file_mysql_flavor(tmp_path):
    sql = server(tmp_path, flavor="mysql")._bootstrap_sql("pw")
    lines = sql.splitlines()
    assert lines[3] == ("CREATE USER IF NOT EXISTS 'admin'@'%' IDENTIFIED WITH mysql_native_password AS "
                        f"'{native_hash('pw')}' REQUIRE SSL;")
    assert lines[7] == (
        "SELECT GROUP_CONCAT(CONCAT('''', REPLACE(User, '''', ''''''), '''@''', REPLACE(Host, '''', ''''''), '''') "
        "SEPARATOR ', ') INTO @shared_mysql_drop FROM mysql.user WHERE NOT (User = 'admin' AND Host = '%') "
        "AND account_locked = 'N' AND (User = '' OR plugin IN ('unix_socket', 'auth_socket') "
        "OR (authentication_string = '' AND plugin IN ('', 'mysql_native_password', 'mysql_old_password', "
        "'ed25519', 'parsec', 'caching_sha2_password', 'sha256_password')));"
    )


# -- child environment --------------------------------------------------------------------------------------
def test_child_env_is_an_allowlist(monkeypatch):
    for k in ("SHARED_MYSQL_SECRETS_KEY", "AWS_SECRET_ACCESS_KEY", "MYSQL_PWD", "MYSQL_UNIX_PORT", "HOME"):
        monkeypatch.setenv(k, "x")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("TMPDIR", "/tmp")
    monkeypatch.setenv("MYSQLD_BOOTSTRAP", "/bin/sh")  # mariadb-install-db would run it instead of mariadbd
    env = srv.child_env()
    assert set(env) == {"PATH", "LANG", "LC_ALL", "TZ", "UMASK", "UMASK_DIR"} and env["TZ"] == "UTC"
    assert (env["UMASK"], env["UMASK_DIR"]) == ("0600", "0700")
    assert srv.child_env(Path("/state/tmp"))["TMPDIR"] == "/state/tmp"


def test_installer_error_is_the_line_that_says_why():
    out = ("Installing MariaDB/MySQL system tables in '/x' ...\nInstallation of system tables failed!\n"
           "2026-01-01 1 [Warning] Could not remove temporary table\nERROR: 1051  Unknown table 'mysql.tmp_user_sys'\n"
           "2026-01-01 0 [ERROR] Aborting\n")
    assert srv._install_error(out) == "ERROR: 1051  Unknown table 'mysql.tmp_user_sys'"
    assert srv._install_error("x\n2026 0 [ERROR] Can't create directory '/x' (Errcode: 13)\n") == \
        "Can't create directory '/x' (Errcode: 13)"


# -- /proc parsing ------------------------------------------------------------------------------------------
def test_proc_addresses():
    assert procfs._proc_address("0100007F:33F2") == "127.0.0.1:13298"
    assert procfs._proc_address("0200007F:0CEA") == "127.0.0.2:3306"
    assert procfs._proc_address("00000000000000000000000001000000:0CEA") == "[::1]:3306"
    assert procfs._proc_address("0000000000000000FFFF00000100007F:0CEA") == "127.0.0.1:3306"


def test_listening_of_this_process(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert f"127.0.0.1:{port}" in srv.listening_tcp(os.getpid())


def test_listening_unix_of_this_process(tmp_path):
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "s.sock"))
        s.listen()
        (tmp_path / "s.sock").unlink()  # still listed after the unlink, as the server's is
        assert str(tmp_path / "s.sock") in srv.listening_unix(os.getpid())
        assert not srv._unix_socket_reachable(tmp_path / "s.sock")


# -- certificates -------------------------------------------------------------------------------------------
def test_certificates_are_kept_while_usable(tmp_path):
    tls = tmp_path / "tls"
    certs.ensure_certificates(tls, ("127.0.0.1", "localhost"))
    before = {p.name: p.read_bytes() for p in tls.iterdir()}
    assert certs.renewal_reason(tls, ("127.0.0.1", "localhost")) is None
    certs.ensure_certificates(tls, ("localhost", "127.0.0.1"))
    assert {p.name: p.read_bytes() for p in tls.iterdir()} == before
    assert sorted(before) == ["ca.pem", "server-cert.pem", "server-key.pem"]  # no CA key kept


def test_new_host_regenerates_ca_and_certificate(tmp_path):
    tls = tmp_path / "tls"
    certs.ensure_certificates(tls, ("127.0.0.1", "localhost"))
    old_ca = (tls / "ca.pem").read_bytes()
    assert certs.renewal_reason(tls, ("127.0.0.2", "127.0.0.1")) == "server-cert.pem does not name 127.0.0.2"
    certs.ensure_certificates(tls, ("127.0.0.2", "127.0.0.1", "localhost"))
    assert (tls / "ca.pem").read_bytes() != old_ca
    assert certs.renewal_reason(tls, ("127.0.0.2", "127.0.0.1", "localhost")) is None


def test_expiring_or_corrupt_certificates_are_regenerated(tmp_path):
    tls = tmp_path / "tls"
    hosts = ("127.0.0.1",)
    certs.ensure_certificates(tls, hosts)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=certs.CERT_DAYS - 20)
    assert certs.renewal_reason(tls, hosts, now=later).startswith("server-cert.pem expires on ")
    (tls / "server-cert.pem").write_text("garbage")
    assert "cannot be read" in certs.renewal_reason(tls, hosts)
    certs.ensure_certificates(tls, hosts)
    assert certs.renewal_reason(tls, hosts) is None
    (tls / "server-key.pem").unlink()
    assert certs.renewal_reason(tls, hosts) == "server-key.pem missing"


def test_mismatched_key_and_foreign_ca_are_detected(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    certs.ensure_certificates(a)
    certs.ensure_certificates(b)
    (a / "server-key.pem").write_bytes((b / "server-key.pem").read_bytes())
    assert certs.renewal_reason(a, ("127.0.0.1",)) == "server-key.pem does not match server-cert.pem"
    certs.ensure_certificates(a)
    (a / "ca.pem").write_bytes((b / "ca.pem").read_bytes())
    assert certs.renewal_reason(a, ("127.0.0.1",)) == "server-cert.pem is not signed by ca.pem"
