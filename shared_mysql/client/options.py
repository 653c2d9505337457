"""What an application may pass on to PyMySQL through `connect(**kwargs)` / `engine(connect_args=...)`.

An allowlist: PyMySQL lets many of its options silently replace the verified SSLContext, the account or the
endpoint the client chose, so only options that shape results or the session pass; CA options map onto `ca=`;
everything else is refused with one line naming the option and the fix, before any secret is read."""

from __future__ import annotations

import enum
import os
import re
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SharedMySQLError

ROLES = ("app", "readonly")


class ClientError(SharedMySQLError):
    """A connection could not be made (the line names the tenant, the account and the endpoint), or was asked for
    with an option that would weaken it (the line names the option and the fix)."""


# -- what an application may pass through to PyMySQL ------------------------------------------------------
# An ALLOWLIST: each of these shapes results or the session, never where we connect, as whom, or how TLS is
# verified. Everything else is refused with one line before any secret is read or any socket opened, because
# PyMySQL lets many of its options silently replace the SSLContext, the account or the endpoint we chose.
PASS_THROUGH: dict[str, str] = {
    "autocommit": "transaction mode of the session",
    "binary_prefix": "how bytes parameters are quoted (_binary'...')",
    "charset": "the connection character set; charsets whose characters can end in a backslash are refused",
    "client_flag": "protocol options; only the bits in CLIENT_FLAGS (never LOCAL_FILES)",
    "collation": "the connection collation",
    "connect_timeout": "seconds per attempt; still capped by what is left of the deadline",
    "conv": "the application's own type converters",
    "cursorclass": "the shape of result rows",
    "init_command": "SQL run once after login, which the application could run itself",
    "max_allowed_packet": "a client-side size limit",
    "program_name": "a connection attribute (performance_schema.session_connect_attrs)",
    "read_timeout": "a socket timeout on the open connection",
    "sql_mode": "session SQL semantics, which the application could SET itself",
    "use_unicode": "str or bytes in results",
    "write_timeout": "a socket timeout on the open connection",
}

# client_flag bits an application may set: result semantics only. PyMySQL sets its CAPABILITIES (and SSL,
# CONNECT_WITH_DB) itself, so those bits are no-ops. LOCAL_FILES lets the server read files from this host;
# COMPRESS, DEPRECATE_EOF and SESSION_TRACK change the wire protocol in ways PyMySQL does not speak.
CLIENT_FLAGS = ("FOUND_ROWS", "IGNORE_SPACE", "INTERACTIVE", "MULTI_STATEMENTS", "MULTI_RESULTS", "PS_MULTI_RESULTS")

# Multibyte charsets where a character's second byte can be 0x5C (a backslash): with them a byte-level escaper can
# be tricked into a quote that ends the string (the classic GBK/SJIS injection; MySQL's docs warn about them).
# PyMySQL 2.x escapes str before encoding and sends bytes as hex, so this is defence in depth; the tenants' schemas
# are utf8mb4 anyway.
UNSAFE_CHARSETS = frozenset({"big5", "cp932", "gb18030", "gbk", "sjis"})

_VERIFIED = "shared-mysql always verifies; pass ca= for a different CA bundle"
_ENDPOINT = "shared-mysql connects to the host and port in the stored secret; change the secret (or instance.host)"
_ACCOUNT = ("shared-mysql logs in as the account in the stored secret, re-read after a rotation; "
            "pass user='readonly' for the read-only account or secret= for another secret")
_CLIENT_CERT = ("would replace the client's verified TLS context with PyMySQL's own; shared-mysql logs in with "
                "the stored secret and sends no client certificate; remove it")

# Options handled explicitly: what passing them would do, and the fix.
REFUSED: dict[str, str] = {
    "host": f"would change the endpoint; {_ENDPOINT}",
    "port": f"would change the endpoint; {_ENDPOINT}",
    "unix_socket": f"would connect through a socket, without TLS, to whatever listens there; {_ENDPOINT}",
    "named_pipe": f"would connect through a pipe, without TLS; {_ENDPOINT}",
    "bind_address": ("would choose the source address, and with it which user@host account the server matches; "
                     "remove it"),
    "user": f"would replace the stored account; {_ACCOUNT}",
    "password": f"would replace the stored credential; {_ACCOUNT}",
    "passwd": f"would replace the stored credential; {_ACCOUNT}",
    "auth_plugin_map": ("would change how the stored credential is sent; shared-mysql logs in with the secret's "
                        "password or IAM token; remove it"),
    "server_public_key": ("is for RSA password exchange without TLS; shared-mysql always uses verified TLS; "
                          "remove it"),
    "db": "is PyMySQL's old spelling; pass database=",
    "read_default_file": ("would read host, user, password, socket and ssl-* from an option file, overriding the "
                          "stored endpoint, account and TLS; remove it (pass ca= for a different CA bundle)"),
    "read_default_group": ("would read host, user, password, socket and ssl-* from an option file (/etc/my.cnf by "
                           "default), overriding the stored endpoint, account and TLS; remove it"),
    "local_infile": ("would let the server read files from this host (LOAD DATA LOCAL); shared-mysql never "
                     "enables it; remove it"),
    "defer_connect": ("would hand back an unconnected connection, outside the client's retries and credential "
                      "re-read; call connect() when the connection is needed"),
    "compress": "is not supported by PyMySQL; remove it",
    "ssl_cert": _CLIENT_CERT,
    "ssl_key": _CLIENT_CERT,
    "ssl_key_password": _CLIENT_CERT,
    "tenant": "belongs to engine() itself, not to connect_args",
    "secret": "belongs to engine() itself, not to connect_args",
}


# Refused options whose False is PyMySQL's default, so passing False asks for nothing.
_OFF_BY_DEFAULT = frozenset({"local_infile", "defer_connect", "compress", "named_pipe"})


@dataclass(frozen=True)
class Options:
    """An application's keyword arguments, checked: what goes to PyMySQL, and a CA given in any spelling."""

    pymysql: dict = field(default_factory=dict)
    ca: str | None = None
    ca_origin: str = "ca="
    connect_timeout: float | None = None


def _show(v: Any) -> str:
    return v.name if isinstance(v, enum.Enum) else repr(v)


def check_options(fn: str, kwargs: dict, *, ca: Any = None) -> Options:
    """Split `kwargs` into allowlisted PyMySQL options and a CA path, or raise one line naming the option and the
    fix. Pure: no file, secret or network is touched. `fn` prefixes messages ("connect():")."""
    cas: list[tuple[str, str]] = []

    def refuse(name: str, why: str):
        raise ClientError(f"{fn} {name} {why}")

    def ca_value(name: str, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            refuse(f"{name}={_show(value)}", "is not a CA bundle path; pass ca= a PEM file")
        cas.append((name if name.startswith("ssl[") else f"{name}=", os.fspath(value)))

    ca_value("ca", ca)
    passed: dict = {}
    timeout = None
    for opt, value in kwargs.items():
        if opt in ("ssl_verify_cert", "ssl_verify_identity"):
            # True asks for what the client always does; anything else would loosen it.
            if value is None or value is True or value == ssl.CERT_REQUIRED:
                continue
            what = "TLS verification" if opt == "ssl_verify_cert" else "host name checking"
            refuse(f"{opt}={_show(value)}", f"would turn {what} off; {_VERIFIED}")
        elif opt == "ssl_disabled":
            if value is None or value is False:
                continue
            refuse(f"{opt}={_show(value)}", f"would turn TLS off; {_VERIFIED}")
        elif opt == "ssl_ca":
            ca_value("ssl_ca", value)
        elif opt == "ssl":
            _check_ssl(value, refuse, ca_value)
        elif opt == "client_flag":
            _check_client_flag(value, refuse)
            passed[opt] = value
        elif opt == "charset":
            if not isinstance(value, str) or not _CHARSET_NAME.fullmatch(value):
                refuse(f"{opt}={_show(value)}", "is not a character set name; use utf8mb4, the default")
            if value.lower() in UNSAFE_CHARSETS:
                refuse(f"{opt}={_show(value)}", "is a charset whose characters can end in a backslash byte, "
                       f"where client-side escaping is unsafe ({', '.join(sorted(UNSAFE_CHARSETS))}); use utf8mb4, "
                       "the default")
            passed[opt] = value
        elif opt == "connect_timeout":
            _check_type(opt, value, refuse)
            timeout = value
        elif opt in PASS_THROUGH:
            _check_type(opt, value, refuse)
            passed[opt] = value
        elif opt in REFUSED:
            if value is None or (value is False and opt in _OFF_BY_DEFAULT):
                continue  # PyMySQL's own default: asks for nothing
            shown = f"{opt}={_show(value)}" if isinstance(value, bool) else f"{opt}="
            refuse(shown, REFUSED[opt])
        else:
            refuse(f"{opt}=", "is not an option shared-mysql passes to PyMySQL; allowed: "
                   f"{', '.join(sorted(PASS_THROUGH))}, ssl_ca (mapped to ca=)")
    if len({path for _, path in cas}) > 1:
        raise ClientError(f"{fn} {' and '.join(n for n, _ in cas)} name different CA bundles; give one, as ca=")
    origin, path = cas[0] if cas else ("ca=", None)
    return Options(passed, path, origin, timeout)


_CHARSET_NAME = re.compile(r"[A-Za-z0-9_]+")


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _cursor_class(v) -> bool:
    import pymysql.cursors

    return isinstance(v, type) and issubclass(v, pymysql.cursors.Cursor)


# What each pass-through value must be (None always means PyMySQL's default): checked here, so a wrong type is one
# line naming the option rather than an exception from deep inside PyMySQL.
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "autocommit": (lambda v: isinstance(v, bool), "True or False"),
    "binary_prefix": (lambda v: isinstance(v, bool), "True or False"),
    "use_unicode": (lambda v: isinstance(v, bool), "True or False"),
    "collation": (lambda v: isinstance(v, str) and _CHARSET_NAME.fullmatch(v) is not None, "a collation name"),
    "connect_timeout": (_positive, "a positive number of seconds"),
    "read_timeout": (_positive, "a positive number of seconds"),
    "write_timeout": (_positive, "a positive number of seconds"),
    "max_allowed_packet": (lambda v: _positive(v) and isinstance(v, int), "a positive number of bytes"),
    "conv": (lambda v: isinstance(v, dict), "a dict of converters"),
    "cursorclass": (_cursor_class, "a pymysql.cursors.Cursor subclass"),
    "init_command": (lambda v: isinstance(v, str), "a string of SQL"),
    "sql_mode": (lambda v: isinstance(v, str), "a string"),
    "program_name": (lambda v: isinstance(v, str), "a string"),
}


def _check_type(opt: str, value: Any, refuse: Callable) -> None:
    check = _TYPES.get(opt)
    if value is not None and check and not check[0](value):
        refuse(f"{opt}={_show(value)}", f"must be {check[1]}")


def _check_ssl(value: Any, refuse: Callable, ca_value: Callable) -> None:
    """`ssl=` may carry a CA (mapped onto ca=) and settings that ask for verification; nothing else."""
    if value is None:
        return
    if isinstance(value, ssl.SSLContext):
        refuse("ssl=<SSLContext>", f"would replace the client's verified TLS context; {_VERIFIED}")
    if not isinstance(value, dict):
        refuse(f"ssl={_show(value)}", f"would turn TLS verification off; {_VERIFIED}")
    for key, v in value.items():
        name = f"ssl[{key!r}]"
        if key == "ca":
            ca_value(name, v)
        elif key == "check_hostname":
            if v is not True:
                refuse(f"{name}={_show(v)}", f"would turn host name checking off; {_VERIFIED}")
        elif key == "verify_mode":
            if not (v is True or v == ssl.CERT_REQUIRED or (isinstance(v, str) and v.lower() == "required")):
                refuse(f"{name}={_show(v)}", f"would turn TLS verification off; {_VERIFIED}")
        elif key in ("cert", "key", "password"):
            refuse(f"{name}=", _CLIENT_CERT)
        elif key == "capath":
            refuse(f"{name}=", "would replace the client's verified TLS context; pass ca= a PEM bundle file instead")
        else:
            refuse(f"{name}=", f"would replace the client's verified TLS context (TLS 1.2+, CA and host name "
                   f"checked); {_VERIFIED}")


def _check_client_flag(value: Any, refuse: Callable) -> None:
    from pymysql.constants import CLIENT

    if not isinstance(value, int) or isinstance(value, bool):
        refuse(f"client_flag={_show(value)}", "is not an int of pymysql.constants.CLIENT bits")
    if value & CLIENT.LOCAL_FILES:
        refuse("client_flag=LOCAL_FILES", REFUSED["local_infile"])
    ok = CLIENT.CAPABILITIES | CLIENT.SSL | CLIENT.CONNECT_WITH_DB
    for name in CLIENT_FLAGS:
        ok |= getattr(CLIENT, name)
    extra = value & ~ok
    if extra:
        names = [n for n in dir(CLIENT) if n.isupper() and n != "CAPABILITIES" and getattr(CLIENT, n) & extra]
        refuse(f"client_flag={'|'.join(names) or hex(extra)}", "is not passed through; allowed bits: "
               f"{', '.join(CLIENT_FLAGS)}")


def _check_role(fn: str, user: str, secret: str | None) -> None:
    if secret and user != "app":
        raise ClientError(f"{fn} user={user!r} would be ignored: secret= names the account itself; pass the "
                          "read-only account's secret name instead")
    if user not in ROLES:
        raise ClientError(f"{fn} user={user!r} is not an account role; pass user='app' (the default) or "
                          "user='readonly'; the MySQL user name comes from the stored secret")


