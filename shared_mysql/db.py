"""Executor protocol (query/execute), the PyMySQL-backed executor, and a FakeExecutor for unit tests.

Every statement runs through an Executor, so unit tests can count and assert the exact SQL, and debug logging
only ever sees `Statement.safe` (the redacted form).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from .errors import ServerError
from .sql import Flavor, Statement

log = logging.getLogger("shared_mysql.sql")

# Driver error codes translated to one actionable line at the boundary.
_CONNECT_HINTS = {
    2003: "the server is not reachable; for the embedded server run `shared-mysql local up`",
    2013: "the connection was lost; check the server's error log",
    1045: "access denied; the stored credential does not match the server's",
    3159: "the server requires TLS (require_secure_transport)",
    1226: "the account has reached its MAX_USER_CONNECTIONS limit",
    1040: "the server has reached max_connections",
}


class Executor(Protocol):
    flavor: Flavor

    def query(self, sql: str) -> list[tuple]: ...

    def execute(self, stmt: Statement) -> None: ...

    def execute_many(self, stmts: Sequence[Statement], *, keep_going: bool = False) -> list[str]: ...

    def query_later(self, sql: str) -> Callable[[], list[tuple]]: ...


@dataclass
class ConnectionInfo:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ca: str | None = None
    database: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float | None = None  # a stalled server: fail after this many seconds (the exporter)

    def __str__(self) -> str:  # never shows the password
        return f"{self.user}@{self.host}:{self.port}"


def _code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


# Who runs this process (machine user, host, command): recorded beside the server-side operator lock, so that an
# operator who waits on it is told who holds it (Target.server_lock). Set by the CLI.
OPERATOR_ATTRS: dict[str, str] = {}


def set_operator(command: str) -> None:
    import getpass
    import socket

    def clean(v: str) -> str:  # printable and short: it is shown in another operator's one-line error
        return "".join(ch if ch.isprintable() else "?" for ch in v)[:120]

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (a container's uid): the number will do
        import os

        user = str(os.getuid())
    OPERATOR_ATTRS.update(program_name="shared-mysql", os_user=clean(user), os_host=clean(socket.gethostname()),
                          command=clean(command))


def connect(info: ConnectionInfo, *, multi_statements: bool = False):
    """A PyMySQL connection with verified TLS (PyMySQL falls back to unverified TLS unless told)."""
    import pymysql
    from pymysql.constants import CLIENT

    try:
        ctx = tls_context(info.ca) if info.ca else None
        return pymysql.connect(
            host=info.host, port=info.port, user=info.user, password=info.password, database=info.database,
            ssl=ctx,
            connect_timeout=info.connect_timeout, read_timeout=info.read_timeout, write_timeout=info.read_timeout,
            autocommit=True, charset="utf8mb4",
            client_flag=CLIENT.MULTI_STATEMENTS if multi_statements else 0,
        )
    except pymysql.err.MySQLError as exc:
        code = _code(exc)
        raise ServerError(f"cannot connect as {info}: {connect_hint(code, exc, info.ca)}") from None
    except OSError as exc:  # TLS file problems and the like
        raise ServerError(f"cannot connect as {info}: {exc.__class__.__name__}: {exc}") from None


def connect_hint(code: int | None, exc: BaseException, ca: str | None) -> str:
    """What failed, in words: PyMySQL reports refused connections, timeouts and TLS failures all as 2003."""
    msg = str(exc.args[-1]) if getattr(exc, "args", None) else str(exc)
    if code == 2003:
        if "CERTIFICATE_VERIFY_FAILED" in msg or "SSL" in msg or "certificate" in msg:
            reason = msg.split("certificate verify failed:", 1)[-1].split(")")[0].strip() if \
                "certificate verify failed" in msg else "TLS handshake failed"
            return (f"error 2003: TLS verification failed ({reason}) against CA {ca}; the server's certificate "
                    "does not match this CA or host name (embedded server: `shared-mysql local down` then "
                    "`local up` regenerates it)")
        if "refused" in msg.lower():
            return ("error 2003: connection refused: nothing listens there; for the embedded server run "
                    "`shared-mysql local up`")
        if "timed out" in msg.lower():
            return "error 2003: timed out; check the host, port, firewall or security group"
    return f"error {code}: {_CONNECT_HINTS.get(code or 0, 'check host, port and credentials')}"


def tls_context(ca: str):
    """A verifying TLS context: CA pinned, hostname checked, TLS 1.2+.

    PyMySQL 1.2 falls back to unverified TLS by default, and its `ssl_verify_cert=` argument silently replaces
    an `ssl={"ca": ...}` dict (dropping the CA), so we hand it a finished SSLContext instead.
    """
    import ssl

    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# Statements per round trip when applying: multi-statement batches keep apply close to the raw-SQL floor.
BATCH_SIZE = 200


class PyMySQLExecutor:
    """Runs statements on one PyMySQL connection (opened with MULTI_STATEMENTS for batched apply)."""

    def __init__(self, conn, flavor: Flavor, target: str = "", info: ConnectionInfo | None = None):
        self.conn = conn
        self.flavor = flavor
        self.target = target
        self.queries = 0
        self._info = info

    @classmethod
    def open(cls, info: ConnectionInfo) -> "PyMySQLExecutor":
        from .sql import detect_flavor

        conn = connect(info, multi_statements=True)
        flavor = detect_flavor(conn.get_server_info())
        return cls(conn, flavor, str(info), info)

    def query_later(self, sql: str) -> Callable[[], list[tuple]]:
        """Start `sql` now on a second connection and return a function that waits for its rows.

        For a query whose time is the server's (information_schema.VIEWS/TRIGGERS open every database's
        directory: ~0.25 s at 10,000 databases) while this connection's queries and their parsing go on. When no
        second connection can be had (max_connections, say), the query runs here when its rows are asked for."""
        import threading

        self.queries += 1
        if self._info is None:
            return lambda: self._query(sql)
        out: dict = {}

        def run() -> None:
            try:
                conn = connect(self._info)
            except ServerError:
                return  # answered on the main connection instead
            try:
                log.debug("query (second connection): %s", sql)
                out["rows"] = self._fetch(conn, sql)
            except ServerError as exc:
                out["error"] = exc
            finally:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - closing a broken connection is not an error worth reporting
                    pass

        worker = threading.Thread(target=run, name="shared-mysql-query", daemon=True)
        worker.start()

        def wait() -> list[tuple]:
            worker.join()
            if "error" in out:
                raise out["error"]
            return out["rows"] if "rows" in out else self._query(sql)

        return wait

    def query(self, sql: str) -> list[tuple]:
        self.queries += 1
        return self._query(sql)

    def _query(self, sql: str) -> list[tuple]:
        log.debug("query: %s", sql)
        return self._fetch(self.conn, sql)

    def _fetch(self, conn, sql: str) -> list[tuple]:
        import pymysql

        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        except pymysql.err.MySQLError as exc:
            raise ServerError(f"query failed on {self.target}: error {_code(exc)}: {exc.args[-1]}") from exc

    def execute(self, stmt: Statement) -> None:
        self.execute_many([stmt])

    def execute_many(self, stmts: Sequence[Statement], *, keep_going: bool = False) -> list[str]:
        """Run `stmts` in multi-statement batches. The server stops a batch at its first error: by default that
        raises; with `keep_going`, the failure is recorded and the next statement runs, so one statement the server
        refuses (a grant it cannot revoke) does not shield the rest. Returns the failures, one line each."""
        import pymysql

        failures: list[str] = []
        i = 0
        while i < len(stmts):
            batch = stmts[i:i + BATCH_SIZE]
            for s in batch:
                log.debug("execute: %s", s.safe)
            self.queries += 1
            done = 0
            try:
                with self.conn.cursor() as cur:
                    cur.execute(";\n".join(s.sql for s in batch))
                    done = 1
                    while cur.nextset():
                        done += 1
            except pymysql.err.MySQLError as exc:
                failed = batch[min(done, len(batch) - 1)]
                # The message is the server's text; statements with secrets are shown only redacted.
                msg = exc.args[-1] if failed.redacted is None else "(statement redacted)"
                line = f"error {_code(exc)}: {msg}: {failed.safe}"
                if not keep_going:
                    raise ServerError(f"statement failed on {self.target}: {line}") from None
                failures.append(line)
                i += min(done, len(batch) - 1) + 1
                continue
            i += len(batch)
        return failures

    def __enter__(self) -> "PyMySQLExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection is not an error worth reporting
            pass


class FakeExecutor:
    """Records statements; answers queries from canned responses keyed by a substring of the SQL."""

    def __init__(self, flavor: Flavor, responses: dict[str, Iterable[tuple] | Callable[[], Iterable[tuple]]] | None = None):
        self.flavor = flavor
        self.responses = responses or {}
        self.queries: list[str] = []
        self.executed: list[Statement] = []
        self.fail_on: str | None = None  # statements containing this text fail (to test keep_going)

    def query(self, sql: str) -> list[tuple]:
        self.queries.append(sql)
        for key, rows in self.responses.items():
            if key in sql:
                return list(rows() if callable(rows) else rows)
        return []

    def query_later(self, sql: str) -> Callable[[], list[tuple]]:
        rows = self.query(sql)
        return lambda: rows

    def execute(self, stmt: Statement) -> None:
        self.executed.append(stmt)

    def execute_many(self, stmts: Sequence[Statement], *, keep_going: bool = False) -> list[str]:
        failing = [s for s in stmts if self.fail_on and self.fail_on in s.sql]
        self.executed.extend(s for s in stmts if s not in failing)
        if failing and not keep_going:
            raise ServerError(f"statement failed: {failing[0].safe}")
        return [f"error 0: refused by the fake: {s.safe}" for s in failing]

    @property
    def sql(self) -> list[str]:
        return [s.sql for s in self.executed]

