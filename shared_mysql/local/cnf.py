"""The embedded server's my.cnf: the seed's parameter group, instance.parameters re-checked, then the settings
shared-mysql owns, written last so that none of them can be changed. Every line is checked before it is written:
a value that could end a line, start a comment or be read as an escape never reaches the file."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from ..errors import LocalServerError

# The seed's parameter group, as server options; instance.parameters override these.
DEFAULT_PARAMETERS: dict[str, object] = {
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
    "max_connections": 200,
    "slow_query_log": True,
    "long_query_time": 2,
    "log_queries_not_using_indexes": True,
    "wait_timeout": 28800,
    "interactive_timeout": 28800,
}

# Settings the security model rests on; with the paths, binlog and audit settings they form the owned block
# that render_cnf writes after instance.parameters, and that no parameter may name in any form.
FORCED_PARAMETERS: dict[str, object] = {
    "require_secure_transport": "ON",
    "skip_name_resolve": "ON",
    "log_bin_trust_function_creators": "ON",
}

# Not written, but never accepted from instance.parameters either: each one switches authentication or TLS off,
# runs SQL as root at start, or opens a transport that skips TLS.
RESERVED_NAMES: dict[str, str] = {
    "ssl": "turns TLS off",
    "init_file": "runs SQL with all privileges at every start",
    "grant_tables": "skip_grant_tables turns authentication off",
    "skip_grant_tables": "turns authentication off",
    "networking": "skip_networking turns TCP off",
    "named_pipe": "a transport that skips TLS",
    "shared_memory": "a transport that skips TLS",
    "extra_port": "a second listener",
    "mysqlx": "the X protocol listener",
    "admin_address": "a second listener",
    "plugin_load": "loads server plugins",
    "plugin_dir": "where server plugins are loaded from",
}

# my_getopt accepts these in front of any option name (and any unambiguous prefix of a name).
OPTION_PREFIXES = ("loose", "skip", "disable", "enable", "maximum", "autoset", "plugin")

_PARAMETER_NAME = re.compile(r"[a-z][a-z0-9_]*")


# -- my.cnf ---------------------------------------------------------------------------------------------------
OWNED_MARKER = "# owned by shared-mysql: written after instance.parameters, so none of them can change these"


def _params_module():
    from ..config import params

    return params


def _known_names() -> frozenset[str]:
    return frozenset(DEFAULT_PARAMETERS) | frozenset(_params_module().ALLOWED)


def option_forms(name: str) -> set[str]:
    """`name` and every name my_getopt reads it as once loose_/skip_/... prefixes are taken off (`-` is `_`)."""
    forms = {name.lower().replace("-", "_")}
    todo = list(forms)
    while todo:
        n = todo.pop()
        for prefix in OPTION_PREFIXES:
            if n.startswith(prefix + "_") and len(n) > len(prefix) + 1:
                rest = n[len(prefix) + 1:]
                if rest not in forms:
                    forms.add(rest)
                    todo.append(rest)
    return forms


def cnf_value_problem(value: str) -> str | None:
    """What in `value` my.cnf's parser would read differently than written, or None. The parser ends a line at a
    newline, starts a comment at `#` (outside quotes), strips surrounding quotes and spaces (including bytes it
    takes for latin1 spaces) and unescapes backslashes."""
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return f"a control character (U+{ord(ch):04X})"
    if "#" in value:
        return "a '#' (it starts a comment in my.cnf)"
    if "\\" in value:
        return "a backslash (my.cnf reads it as an escape)"
    if "'" in value or '"' in value:
        return "a quote (my.cnf strips or pairs quotes)"
    if value != value.strip():
        return "leading or trailing spaces (my.cnf drops them)"
    if value and not (value[0].isascii() and value[-1].isascii()):
        return "a non-ASCII first or last character (my.cnf may strip it)"
    return None


def parse_cnf(text: str) -> dict[str, str]:
    """`name = value` lines of a file render_cnf wrote (later lines win, as in the server)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("[") or line.startswith("#") or " = " not in line:
            continue
        name, value = line.split(" = ", 1)
        out.pop(name, None)
        out[name] = value
    return out


def owned_block(text: str) -> dict[str, str]:
    """The owned settings of a file render_cnf wrote: what the server started from it is forced to."""
    return parse_cnf(text.split(OWNED_MARKER, 1)[1]) if OWNED_MARKER in text else {}


def _cnf_changes(running: dict[str, str], wanted: dict[str, str]) -> list[str]:
    changes = []
    for name in dict.fromkeys([*running, *wanted]):
        old, new = running.get(name), wanted.get(name)
        if old != new:
            changes.append(f"{name}: {'(unset)' if old is None else old} -> {'(unset)' if new is None else new}")
    return changes


class CnfMixin:
    """Rendering and checking of my.cnf, for LocalServer (which provides paths, host, port, flavor_name,
    parameters and option_names)."""

    def owned_settings(self) -> list[tuple[str | None, str, object]]:
        """(comment, name, value) in file order: what shared-mysql owns, written after instance.parameters."""
        p = self.paths
        mariadb = self.flavor_name == "mariadb"
        out: list[tuple[str | None, str, object]] = [
            ("where things live (the state dir, next to shared-mysql.yaml)", "datadir", p.datadir),
            (None, "pid_file", p.pidfile),
            (None, "log_error", p.error_log),
            (None, "slow_query_log_file", p.slow_log),
            (None, "general_log_file", p.general_log),  # written only when instance.parameters turns general_log on
            ("TCP on loopback only", "bind_address", self.host),
            (None, "port", self.port),
            ("in a private directory, and unlinked once the server is ready: socket logins skip REQUIRE SSL",
             "socket", p.socket),
            ("TLS is the only way in", "ssl_ca", p.ca),
            (None, "ssl_cert", p.tls / "server-cert.pem"),
            (None, "ssl_key", p.tls / "server-key.pem"),
            (None, "require_secure_transport", FORCED_PARAMETERS["require_secure_transport"]),
            (None, "skip_name_resolve", FORCED_PARAMETERS["skip_name_resolve"]),
            ("LOAD DATA INFILE / SELECT ... INTO OUTFILE only in this private directory",
             "secure_file_priv", p.secure_files),
            ("no file outside the datadir: without this a tenant's CREATE TABLE ... DATA DIRECTORY='/anywhere' "
             "(or INDEX DIRECTORY) makes the server write files there, as its user", "symbolic_links", "OFF"),
            ("LOAD DATA LOCAL would let the server read files from clients", "local_infile", "OFF"),
            ("temporary tables and files stay private, never in the shared /tmp (a server deletes every #sql* file "
             "in its tmpdir when it starts)", "tmpdir", p.tmpdir),
            ("binary log for point-in-time recovery", "server_id", 1),
            (None, "log_bin", p.binlog_dir / "binlog"),
            (None, "binlog_format", "ROW"),
            (None, "expire_logs_days", 14) if mariadb else (None, "binlog_expire_logs_seconds", 14 * 86400),
            ("tenants hold TRIGGER and CREATE ROUTINE but not SUPER: with the binlog on, their triggers and "
             "functions fail with error 1419 unless this is ON (RDS parameter groups set it too); "
             "the ROW binlog format makes it safe",
             "log_bin_trust_function_creators", FORCED_PARAMETERS["log_bin_trust_function_creators"]),
        ]
        if os.geteuid() == 0:
            out.append(("mariadbd refuses to run as root unless told to", "user", "root"))
        if mariadb:
            out += [
                ("audit log: connections, DDL and DCL (GRANT/REVOKE/CREATE USER), failed logins",
                 "plugin_load_add", "server_audit"),
                (None, "server_audit", "FORCE_PLUS_PERMANENT"),
                (None, "server_audit_logging", "ON"),
                (None, "server_audit_events", "CONNECT,QUERY_DDL,QUERY_DCL"),
                (None, "server_audit_output_type", "file"),
                (None, "server_audit_file_path", p.audit_log),
                (None, "server_audit_file_rotate_size", 10000000),
                (None, "server_audit_file_rotations", 9),
            ]
        else:
            out.append(("no X protocol listener: one TLS port, as on RDS", "mysqlx", "OFF"))
        return out

    def render_cnf(self) -> str:
        """my.cnf: instance.parameters over the defaults, then the owned block. Every line is checked so that
        nothing (a parameter, the state dir path, the host) can add a line, a comment or an override."""
        self.check_host()
        owned = self.owned_settings()
        reserved = {name: "written by shared-mysql" for _, name, _ in owned}
        reserved.update(RESERVED_NAMES)
        params_mod = _params_module()
        reserved.update(params_mod.OWNED)
        section = "mariadbd" if self.flavor_name == "mariadb" else "mysqld"
        lines = [
            "# Written by shared-mysql; regenerated on every `local up`. Edit instance.parameters instead.",
            f"[{section}]",
            "# the seed's parameter group, then instance.parameters",
        ]
        merged = dict(DEFAULT_PARAMETERS)
        merged.update(self.parameters)
        for name, value in sorted(merged.items(), key=lambda kv: str(kv[0])):
            lines.append(self._parameter_line(name, value, reserved, params_mod, user=name in self.parameters))
        lines.append(OWNED_MARKER)
        for comment, name, value in owned:
            if comment:
                lines.append(f"# {comment}")
            lines.append(self._owned_line(name, value))
        return "\n".join(lines) + "\n"

    def _parameter_line(self, name, value, reserved: dict[str, str], params_mod, *, user: bool) -> str:
        where = f"instance.parameters.{name}"
        if not isinstance(name, str) or not _PARAMETER_NAME.fullmatch(name):
            raise LocalServerError(f"instance.parameters: {str(name)!r} is not a server variable name; use names "
                                   "such as max_connections (lower case, digits, _)")
        if user:
            try:
                params_mod.check_parameter(name, value)
            except ValueError as exc:
                msg = " ".join(str(exc).split())
                raise LocalServerError(msg if msg.startswith(where) else f"{where}: {msg}") from None
        spec = params_mod.ALLOWED.get(name)
        if spec is not None and spec.only and spec.only != self.flavor_name:
            flavor = "MariaDB" if self.flavor_name == "mariadb" else "MySQL"
            raise LocalServerError(f"{where}: only {'MySQL' if spec.only == 'mysql' else 'MariaDB'} has it and the "
                                   f"embedded server is {flavor} {self.version}; remove it from instance.parameters")
        option = (spec.option if spec is not None and spec.option else None) or name  # time_zone: default_time_zone
        for form in dict.fromkeys([name, option]):
            clash = self._collision(form, reserved)
            if clash:
                raise LocalServerError(
                    f"{where}: shared-mysql owns {clash} ({reserved[clash]}); remove {name} from instance.parameters "
                    "in shared-mysql.yaml"
                )
        try:
            rendered = params_mod.render_value(value)
        except (ValueError, TypeError) as exc:
            raise LocalServerError(f"{where}: {' '.join(str(exc).split())}; change the value in shared-mysql.yaml"
                                   ) from None
        problem = cnf_value_problem(rendered)
        if problem:
            raise LocalServerError(f"{where}: the value has {problem}, which my.cnf cannot hold; change the value "
                                   "in shared-mysql.yaml")
        return f"{option} = {rendered}"

    def _owned_line(self, name: str, value: object) -> str:
        rendered = ("ON" if value else "OFF") if isinstance(value, bool) else str(value)
        problem = cnf_value_problem(rendered)
        if problem is None:
            return f"{name} = {rendered}"
        if name in ("bind_address",):
            raise LocalServerError(f"instance.host: {self.host!r} has {problem}; set instance.host to 127.0.0.1")
        if isinstance(value, Path):
            raise LocalServerError(
                f"state directory {str(self.paths.root)!r}: its path has {problem}, which my.cnf cannot hold; move "
                "shared-mysql.yaml to a directory whose path has none (the state dir is .shared-mysql/ next to it)"
            )
        raise LocalServerError(f"{name}: the value {rendered!r} has {problem}; this is a bug in shared-mysql")

    def _collision(self, name: str, reserved: dict[str, str]) -> str | None:
        """The reserved option `name` would set in any spelling my_getopt accepts: itself, with a loose_/skip_/
        disable_/enable_/maximum_/autoset_/plugin_ prefix, or as an unambiguous prefix of a longer name; or a
        member of a reserved name's family (`ssl_cipher` of `ssl`), as config/params.py has it."""
        for form in sorted(option_forms(name)):
            if form in reserved:
                return form
            family = sorted((r for r in reserved if form.startswith(r + "_")), key=len)
            if family:
                return family[-1]
            longer = sorted(r for r in reserved if r.startswith(form))
            # An exact option name never resolves to a longer one (slow_query_log vs slow_query_log_file). The
            # binary's own list decides; if it cannot be read, the names shared-mysql writes or allows do.
            if longer and form not in (self.option_names() or _known_names()):
                return longer[0]
        return None
