"""What an application may pass to connect() / engine(connect_args=...): an allowlist, CA spellings mapped onto
the client's own verified context, everything else refused with one line before any secret or socket is touched.
Bad CA bundles and certificate failures are one line, and a certificate failure is never retried. No server."""

import re
import inspect
import os
import ssl

import pymysql
import pytest

from shared_mysql.client import Client, ClientError
from shared_mysql.client import core
from shared_mysql.client.core import Source
from shared_mysql.client.options import PASS_THROUGH, REFUSED, check_options
from shared_mysql.db import tls_context

from ..throwaway_ca import write_ca

FIX = "shared-mysql always verifies; pass ca= for a different CA bundle"


@pytest.fixture
def cas(tmp_path):
    """Two CA bundles: `right` is what the stored secret names, `other` a different one."""
    return {"right": str(write_ca(tmp_path / "right.pem", "right CA")),
            "other": str(write_ca(tmp_path / "other.pem", "other CA"))}


@pytest.fixture
def untouchable(monkeypatch):
    """A client that fails the test if it reads a secret or opens a connection."""
    c = Client(config="/nonexistent/shared-mysql.yaml")

    def touched(*a, **k):
        raise AssertionError("a secret or the network was touched before the options were checked")

    monkeypatch.setattr(c, "_source", touched)
    monkeypatch.setattr(pymysql, "connect", touched)
    return c


class Recorder:
    """Stands in for pymysql.connect: records the keyword arguments, then returns or raises what it is told."""

    def __init__(self, result="conn"):
        self.calls: list[dict] = []
        self.result = result

    def __call__(self, **kw):
        self.calls.append(kw)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def client_with_secret(cas, monkeypatch, result="conn", **secret):
    """A Client whose tenant `orders` reads `secret` (host, port, account, the right CA) without any config."""
    rec = Recorder(result)
    monkeypatch.setattr(pymysql, "connect", rec)
    sleeps = []
    c = Client(sleep=sleeps.append)
    value = {"host": "db.example", "port": 3306, "username": "orders_user", "password": "pw", "dbname": "orders_db",
             "ssl_ca": cas["right"], **secret}
    c._sources[("orders", "app", None)] = Source("test-orders-db-credentials", "tenant orders (app)", lambda: value)
    return c, rec, sleeps


def ca_subjects(ctx) -> list[str]:
    return [dict(x[0] for x in c["subject"])["commonName"] for c in ctx.get_ca_certs()]


# -- refused, both entry points ---------------------------------------------------------------------------------
REFUSALS = [
    # (kwargs, how the option is shown, a phrase of the reason)
    ({"ssl_verify_cert": False}, "ssl_verify_cert=False", "would turn TLS verification off"),
    ({"ssl_verify_cert": ssl.CERT_NONE}, "ssl_verify_cert=CERT_NONE", "would turn TLS verification off"),
    ({"ssl_verify_cert": "optional"}, "ssl_verify_cert='optional'", "would turn TLS verification off"),
    ({"ssl_verify_identity": False}, "ssl_verify_identity=False", "would turn host name checking off"),
    ({"ssl_disabled": True}, "ssl_disabled=True", "would turn TLS off"),
    ({"ssl": {"verify_mode": ssl.CERT_NONE}}, "ssl['verify_mode']=CERT_NONE", "would turn TLS verification off"),
    ({"ssl": {"ca": "/x.pem", "verify_mode": False}}, "ssl['verify_mode']=False", "would turn TLS verification off"),
    ({"ssl": {"check_hostname": False}}, "ssl['check_hostname']=False", "would turn host name checking off"),
    ({"ssl": {"cert": "c.pem", "key": "k.pem"}}, "ssl['cert']=", "sends no client certificate"),
    ({"ssl": {"capath": "/etc/ssl/certs"}}, "ssl['capath']=", "pass ca= a PEM bundle file"),
    ({"ssl": {"cipher": "NULL"}}, "ssl['cipher']=", "would replace the client's verified TLS context"),
    ({"ssl": False}, "ssl=False", "would turn TLS verification off"),
    ({"ssl": True}, "ssl=True", "would turn TLS verification off"),
    ({"ssl": "required"}, "ssl='required'", "would turn TLS verification off"),
    ({"ssl_cert": "c.pem"}, "ssl_cert=", "sends no client certificate"),
    ({"ssl_key": "k.pem"}, "ssl_key=", "sends no client certificate"),
    ({"ssl_key_password": "hunter2"}, "ssl_key_password=", "sends no client certificate"),
    ({"host": "evil.example"}, "host=", "would change the endpoint"),
    ({"port": 1}, "port=", "would change the endpoint"),
    ({"unix_socket": "/run/mysqld/mysqld.sock"}, "unix_socket=", "without TLS"),
    ({"named_pipe": True}, "named_pipe=True", "without TLS"),
    ({"bind_address": "10.0.0.9"}, "bind_address=", "which user@host account"),
    ({"password": "hunter2"}, "password=", "would replace the stored credential"),
    ({"passwd": "hunter2"}, "passwd=", "would replace the stored credential"),
    ({"db": "other_db"}, "db=", "pass database="),
    ({"read_default_file": "~/.my.cnf"}, "read_default_file=", "overriding the stored endpoint, account and TLS"),
    ({"read_default_group": "client"}, "read_default_group=", "/etc/my.cnf by default"),
    ({"local_infile": True}, "local_infile=True", "read files from this host"),
    ({"client_flag": pymysql.constants.CLIENT.LOCAL_FILES}, "client_flag=LOCAL_FILES", "read files from this host"),
    ({"client_flag": pymysql.constants.CLIENT.COMPRESS}, "client_flag=COMPRESS", "allowed bits: FOUND_ROWS"),
    ({"client_flag": "2"}, "client_flag='2'", "is not an int"),
    ({"auth_plugin_map": {"mysql_clear_password": object}}, "auth_plugin_map=", "how the stored credential is sent"),
    ({"server_public_key": b"---"}, "server_public_key=", "always uses verified TLS"),
    ({"defer_connect": True}, "defer_connect=True", "outside the client's retries"),
    ({"compress": True}, "compress=True", "not supported"),
    ({"charset": "gbk"}, "charset='gbk'", "use utf8mb4"),
    ({"charset": "SJIS"}, "charset='SJIS'", "use utf8mb4"),
    ({"no_such_option": 1}, "no_such_option=", "is not an option shared-mysql passes to PyMySQL; allowed: autocommit"),
    ({"ssl_ca": "/a.pem", "ssl": {"ca": "/b.pem"}}, "ssl_ca= and ssl['ca']", "name different CA bundles"),
    ({"ssl_ca": 7}, "ssl_ca=7", "is not a CA bundle path"),
]


@pytest.mark.parametrize("kwargs,shown,reason", REFUSALS, ids=[s for _, s, _ in REFUSALS])
def test_connect_refuses_with_one_line_before_anything_is_touched(untouchable, kwargs, shown, reason):
    with pytest.raises(ClientError) as e:
        untouchable.connect("orders", **kwargs)
    msg = str(e.value)
    assert msg.startswith(f"connect(): {shown} ") and reason in msg and "\n" not in msg
    assert "hunter2" not in msg  # a refused password is never echoed
    assert untouchable.attempts == 0 and untouchable.fetches == 0


@pytest.mark.parametrize("kwargs,shown,reason", REFUSALS, ids=[s for _, s, _ in REFUSALS])
def test_engine_refuses_connect_args_when_called_not_at_first_checkout(untouchable, kwargs, shown, reason):
    with pytest.raises(ClientError) as e:
        untouchable.engine("orders", connect_args=kwargs)
    msg = str(e.value)
    assert msg.startswith(f"engine(): connect_args {shown} ") and reason in msg and "\n" not in msg
    assert "hunter2" not in msg


def test_the_exact_lines(untouchable):
    def line(fn, *a, **kw):
        with pytest.raises(ClientError) as e:
            fn(*a, **kw)
        return str(e.value)

    c = untouchable
    assert line(c.connect, "orders", ssl_verify_cert=False) == \
        "connect(): ssl_verify_cert=False would turn TLS verification off; " + FIX
    assert line(c.engine, "orders", connect_args={"ssl_verify_cert": False}) == \
        "engine(): connect_args ssl_verify_cert=False would turn TLS verification off; " + FIX
    assert line(c.connect, "orders", ssl=ssl.create_default_context()) == \
        "connect(): ssl=<SSLContext> would replace the client's verified TLS context; " + FIX
    assert line(c.connect, "orders", unix_socket="/tmp/mysql.sock") == (
        "connect(): unix_socket= would connect through a socket, without TLS, to whatever listens there; shared-mysql "
        "connects to the host and port in the stored secret; change the secret (or instance.host)")
    assert line(c.connect, "orders", ca="/a.pem", ssl_ca="/b.pem") == \
        "connect(): ca= and ssl_ca= name different CA bundles; give one, as ca="
    assert line(c.engine, "orders", creator=lambda: None) == (
        "engine(): creator= would replace the client's connect(), which verifies TLS and reads the stored secret; "
        "use Client.connect inside your own pool instead")


def test_an_sslcontext_with_verification_off_is_refused_on_both_entry_points(untouchable):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for call in (lambda: untouchable.connect("orders", ssl=ctx),
                 lambda: untouchable.engine("orders", connect_args={"ssl": ctx})):
        with pytest.raises(ClientError, match=r"ssl=<SSLContext> would replace the client's verified TLS context"):
            call()


@pytest.mark.parametrize("kw", ["creator", "async_creator", "pool"])
def test_engine_arguments_that_bypass_connect_are_refused(untouchable, kw):
    with pytest.raises(ClientError, match=rf"^engine\(\): {kw}= would replace the client's connect\(\)"):
        untouchable.engine("orders", **{kw: object()})


@pytest.mark.parametrize("args", [{"tenant": "billing"}, {"secret": "prod-admin"}, {"user": "admin"}])
def test_engine_connect_args_cannot_name_another_account(untouchable, args):
    with pytest.raises(ClientError, match=r"^engine\(\): connect_args (tenant|secret|user)= "):
        untouchable.engine("orders", connect_args=args)


def test_roles_are_app_or_readonly_and_secret_names_the_account(untouchable):
    with pytest.raises(ClientError, match=r"^connect\(\): user='orders_user' is not an account role; pass "):
        untouchable.connect("orders", user="orders_user")
    with pytest.raises(ClientError, match=r"^connect\(\): user='readonly' would be ignored: secret= names the"):
        untouchable.connect(secret="prod-orders-db-credentials", user="readonly")
    with pytest.raises(ClientError, match=r"^engine\(\): user='root' is not an account role"):
        untouchable.engine("orders", user="root")


# -- mapped and allowed -----------------------------------------------------------------------------------------
def test_ssl_ca_spellings_map_onto_the_clients_verified_context(cas, monkeypatch):
    c, rec, _ = client_with_secret(cas, monkeypatch)
    for kwargs in ({"ssl_ca": cas["other"]}, {"ssl": {"ca": cas["other"]}}, {"ca": cas["other"]},
                   {"ssl": {"ca": cas["other"], "check_hostname": True, "verify_mode": ssl.CERT_REQUIRED}},
                   {"ssl_ca": cas["other"], "ca": cas["other"], "ssl_verify_cert": True, "ssl_verify_identity": True},
                   {"ssl": {"ca": cas["other"], "verify_mode": True}}):
        c.connect("orders", **kwargs)
        kw = rec.calls[-1]
        ctx = kw["ssl"]
        assert isinstance(ctx, ssl.SSLContext) and ca_subjects(ctx) == ["other CA"], kwargs
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname, kwargs
        # none of PyMySQL's own TLS options reach it: they would rebuild the context from a dict
        assert not {k for k in kw if k.startswith("ssl_")}, kwargs
    c.connect("orders", ssl_verify_cert=True, ssl_verify_identity=True, ssl_disabled=False, ssl=None, ssl_ca=None)
    assert ca_subjects(rec.calls[-1]["ssl"]) == ["right CA"]  # no-ops: the secret's CA


def test_allowlisted_options_pass_through_after_the_clients_own(cas, monkeypatch):
    from pymysql.constants import CLIENT
    from pymysql.cursors import DictCursor

    c, rec, _ = client_with_secret(cas, monkeypatch)
    c.connect("orders")
    kw = rec.calls[-1]
    assert (kw["host"], kw["port"], kw["user"], kw["password"], kw["database"], kw["charset"]) == \
        ("db.example", 3306, "orders_user", "pw", "orders_db", "utf8mb4")
    assert kw["connect_timeout"] == 10.0
    opts = {"autocommit": True, "cursorclass": DictCursor, "init_command": "SET time_zone = '+00:00'",
            "sql_mode": "TRADITIONAL", "read_timeout": 30, "write_timeout": 30, "use_unicode": True,
            "binary_prefix": True, "max_allowed_packet": 1 << 20, "program_name": "orders-api", "charset": "latin1",
            "collation": "latin1_swedish_ci", "conv": dict(pymysql.converters.conversions),
            "client_flag": CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS}
    c.connect("orders", connect_timeout=3, database="other_db", **opts)
    kw = rec.calls[-1]
    assert {k: kw[k] for k in opts} == opts
    assert kw["connect_timeout"] == 3 and kw["database"] == "other_db"
    c.connect("orders", connect_timeout=60, deadline=5)
    assert rec.calls[-1]["connect_timeout"] == pytest.approx(5, abs=0.5)  # still capped by what is left of the deadline


def test_every_pymysql_option_is_decided():
    """Meta: each Connection.__init__ parameter is passed through, refused with a reason, or handled explicitly.
    A new PyMySQL option is refused as unknown until someone decides it here."""
    params = set(inspect.signature(pymysql.connections.Connection.__init__).parameters) - {"self"}
    handled = {"ssl", "ssl_ca", "ssl_verify_cert", "ssl_verify_identity", "ssl_disabled", "database"}
    assert params - set(PASS_THROUGH) - set(REFUSED) - handled == set()
    assert not set(PASS_THROUGH) & set(REFUSED)


@pytest.mark.parametrize("opt", sorted(PASS_THROUGH))
def test_no_allowlisted_option_changes_tls_endpoint_or_account(opt, cas):
    """Each pass-through option, handed to PyMySQL next to our context, leaves the context, host, port and user."""
    from pymysql.constants import CLIENT
    from pymysql.cursors import DictCursor

    samples = {"autocommit": True, "binary_prefix": True, "charset": "utf8mb4", "client_flag": CLIENT.FOUND_ROWS,
               "collation": "utf8mb4_bin", "connect_timeout": 5, "conv": dict(pymysql.converters.conversions),
               "cursorclass": DictCursor, "init_command": "SELECT 1", "max_allowed_packet": 1 << 20,
               "program_name": "x", "read_timeout": 5, "sql_mode": "ANSI", "use_unicode": False,
               "write_timeout": 5}
    ctx = tls_context(cas["right"])
    conn = pymysql.connections.Connection(host="db.example", port=3306, user="u", password="p", ssl=ctx,
                                          defer_connect=True, **{opt: samples[opt]})
    assert conn.ctx is ctx and conn._ssl_required
    assert (conn.host, conn.port, conn.user, conn.unix_socket) == ("db.example", 3306, "u", None)
    assert not conn.client_flag & CLIENT.LOCAL_FILES


def test_check_options_is_pure_and_keeps_connect_options_apart():
    opts = check_options("connect():", {"autocommit": True, "ssl_ca": "/ca.pem", "connect_timeout": 4})
    assert opts.pymysql == {"autocommit": True} and opts.ca == "/ca.pem" and opts.ca_origin == "ssl_ca="
    assert opts.connect_timeout == 4
    assert check_options("connect():", {"ssl": {"ca": "/ca.pem"}}).ca_origin == "ssl['ca']"


# -- CA bundles that cannot be used -----------------------------------------------------------------------------
FIX_CA = "point ca= at the PEM bundle that signed the server's certificate (for RDS, the regional bundle)"


def bad_cas(tmp_path, monkeypatch):
    missing = tmp_path / "missing.pem"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    der = tmp_path / "ca.der"
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    write_ca(tmp_path / "pem-for-der.pem")
    der.write_bytes(x509.load_pem_x509_certificate((tmp_path / "pem-for-der.pem").read_bytes())
                    .public_bytes(serialization.Encoding.DER))
    unreadable = write_ca(tmp_path / "unreadable.pem")
    if os.geteuid() == 0:  # root reads anything: make the read fail the way it does for other users
        real = core._tls.__wrapped__

        def tls(ca):
            if ca == str(unreadable):
                raise PermissionError(13, "Permission denied")
            return real(ca)

        monkeypatch.setattr(core, "_tls", tls)
    else:
        unreadable.chmod(0)
    return [(missing, "does not exist"), (tmp_path, "is a directory, not a PEM file"),
            (garbage, "holds no usable PEM certificate (NO_CERTIFICATE_OR_CRL_FOUND)"),
            (empty, "holds no usable PEM certificate (NO_CERTIFICATE_OR_CRL_FOUND)"),
            (der, "holds no usable PEM certificate"),
            (unreadable, "cannot be read by this process (permission denied)")]


def test_a_bad_ca_given_by_the_application_is_one_line_before_any_secret_is_read(untouchable, tmp_path, monkeypatch):
    for path, problem in bad_cas(tmp_path, monkeypatch):
        for fn, call in (("connect()", lambda: untouchable.connect("orders", ca=str(path))),
                         ("connect()", lambda: untouchable.connect("orders", ssl_ca=path)),
                         ("engine()", lambda: untouchable.engine("orders", connect_args={"ssl": {"ca": str(path)}}))):
            with pytest.raises(ClientError) as e:
                call()
            msg = str(e.value)
            assert msg.startswith(f"{fn}: CA bundle {path} (from ") and problem in msg, msg
            assert msg.endswith("(for RDS, the regional bundle)") and "\n" not in msg
    with pytest.raises(ClientError) as e:
        untouchable.connect("orders", ca=str(tmp_path / "missing.pem"))
    assert str(e.value) == f"connect(): CA bundle {tmp_path / 'missing.pem'} (from ca=) does not exist; {FIX_CA}"


def test_a_bad_ca_in_the_secret_names_the_account_and_where_the_ca_came_from(cas, tmp_path, monkeypatch):
    c, rec, _ = client_with_secret(cas, monkeypatch, ssl_ca=str(tmp_path / "gone.pem"))
    with pytest.raises(ClientError) as e:
        c.connect("orders")
    assert str(e.value) == (
        f"tenant orders (app): cannot connect as orders_user to db.example:3306: CA bundle {tmp_path / 'gone.pem'} "
        "(from the secret's ssl_ca) does not exist; point the secret's ssl_ca at the PEM bundle that signed the "
        "server's certificate (for RDS, the regional bundle)")
    assert rec.calls == []


# -- certificate failures: one line, not retried ----------------------------------------------------------------
def tls_error(verify_message: str, code: int = 20):
    """What PyMySQL raises when the handshake's certificate check fails: 2003 wrapping the ssl error."""
    orig = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                           f"{verify_message} (_ssl.c:1006)")
    orig.verify_message, orig.verify_code, orig.reason = verify_message, code, "CERTIFICATE_VERIFY_FAILED"
    exc = pymysql.err.OperationalError(2003, f"Can't connect to MySQL server on 'db.example' ({orig})")
    exc.original_exception = orig
    return exc


def test_a_certificate_that_does_not_verify_is_one_line_and_not_retried(cas, monkeypatch):
    c, rec, sleeps = client_with_secret(cas, monkeypatch, result=tls_error("unable to get local issuer certificate"))
    with pytest.raises(ClientError) as e:
        c.connect("orders", ssl_ca=cas["other"])
    assert str(e.value) == (
        "tenant orders (app): cannot connect as orders_user to db.example:3306: TLS verification failed against CA "
        f"bundle {cas['other']} (from ssl_ca=): unable to get local issuer certificate; check that this bundle "
        "signed the server's certificate (for RDS, the regional bundle), or pass ca= another; not retried")
    assert c.attempts == 1 and len(rec.calls) == 1 and sleeps == []


def test_a_certificate_for_another_host_is_one_line_and_not_retried(cas, monkeypatch):
    err = tls_error("Hostname mismatch, certificate is not valid for 'db.example'.", 62)
    c, rec, sleeps = client_with_secret(cas, monkeypatch, result=err)
    with pytest.raises(ClientError) as e:
        c.connect("orders")
    assert str(e.value).endswith(
        "TLS verification failed: the server's certificate does not name db.example (Hostname mismatch, certificate "
        "is not valid for 'db.example'.); connect through a name the certificate lists (not retried)")
    assert c.attempts == 1 and sleeps == []


def test_a_pymysql_without_original_exception_is_still_not_retried(cas, monkeypatch):
    exc = pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'db.example' ([SSL: "
                                             "CERTIFICATE_VERIFY_FAILED] certificate verify failed)")
    c, _, sleeps = client_with_secret(cas, monkeypatch, result=exc)
    with pytest.raises(ClientError, match="TLS verification failed against CA bundle .* not retried$"):
        c.connect("orders")
    assert c.attempts == 1 and sleeps == []


def test_a_handshake_cut_short_is_a_failover_symptom_and_is_retried(cas, monkeypatch):
    orig = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    exc = pymysql.err.OperationalError(2003, f"Can't connect to MySQL server on 'db.example' ({orig})")
    exc.original_exception = orig
    c, _, sleeps = client_with_secret(cas, monkeypatch, result=exc)
    with pytest.raises(ClientError, match=r"error 2003 after \d+ attempts .*is the server up\?$"):
        c.connect("orders", deadline=2)
    assert c.attempts > 1 and sleeps


def test_engine_checkouts_go_through_connect_with_the_mapped_ca(cas, monkeypatch):
    c, rec, _ = client_with_secret(cas, monkeypatch, result=pymysql.err.OperationalError(1044, "denied"))
    eng = c.engine("orders", connect_args={"ssl_ca": cas["other"], "ssl_verify_cert": True, "autocommit": True,
                                           "database": "orders_db", "deadline": 3})
    assert rec.calls == []  # nothing happens until a checkout
    with pytest.raises(ClientError, match="error 1044: denied"):
        eng.connect()
    kw = rec.calls[-1]
    assert ca_subjects(kw["ssl"]) == ["other CA"] and kw["autocommit"] is True and kw["database"] == "orders_db"
    assert not {k for k in kw if k.startswith("ssl_")}


def test_pymysql_defaults_of_refused_options_ask_for_nothing(cas, monkeypatch):
    c, rec, _ = client_with_secret(cas, monkeypatch)
    c.connect("orders", host=None, unix_socket=None, password=None, ssl_cert=None, read_default_file=None,
              local_infile=False, defer_connect=False, compress=None, named_pipe=None, client_flag=0)
    kw = rec.calls[-1]
    assert kw["host"] == "db.example" and kw["password"] == "pw" and kw["client_flag"] == 0
    assert not {"unix_socket", "local_infile", "defer_connect", "read_default_file", "ssl_cert"} & set(kw)


@pytest.mark.parametrize("kwargs, needle", [
    ({"charset": "gbk "}, "charset='gbk ' is not a character set name"),
    ({"cursorclass": dict}, "cursorclass=<class 'dict'> must be a pymysql.cursors.Cursor subclass"),
    ({"read_timeout": -1}, "read_timeout=-1 must be a positive number of seconds"),
    ({"connect_timeout": "x"}, "connect_timeout='x' must be a positive number of seconds"),
    ({"autocommit": "yes"}, "autocommit='yes' must be True or False"),
    ({"max_allowed_packet": 1.5}, "must be a positive number of bytes"),
])
def test_wrong_types_are_one_line_naming_the_option(kwargs, needle):
    with pytest.raises(ClientError, match=re.escape(needle)):
        check_options("connect():", kwargs)


def test_wrong_deadline_and_connect_args_types_are_one_line():
    c = Client(config="/nonexistent/shared-mysql.yaml")
    with pytest.raises(ClientError, match="deadline='x' must be a number of seconds"):
        c.connect("orders", deadline="x")
    with pytest.raises(ClientError, match="connect_args must be a dict of connect\\(\\) options, not str"):
        c.engine("orders", connect_args="x")
