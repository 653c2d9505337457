"""The embedded server: find the binary, initialise a datadir, write its config, start/stop/status.

It is configured like the seed's parameter group (utf8mb4, max_connections, slow log at 2 s with queries not
using indexes, TLS required with a generated CA) plus a ROW binlog for point-in-time recovery and, on MariaDB,
the bundled audit plugin. Always started with `--defaults-file`, so `/etc/mysql` never leaks in.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalServerError
from ..secrets.file import write_private
from ..sql import quoting
from ..sql.passwords import native_hash

SEARCH_PATH = ("/usr/sbin", "/usr/libexec", "/usr/local/mysql/bin", "/usr/local/bin", "/usr/bin")
SERVER_BINARIES = ("mariadbd", "mysqld")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0

# The seed's parameter group, as server options. `require_secure_transport` cannot be turned off.
DEFAULT_PARAMETERS: dict[str, object] = {
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
    "max_connections": 200,
    "slow_query_log": 1,
    "long_query_time": 2,
    "log_queries_not_using_indexes": 1,
    "wait_timeout": 28800,
    "interactive_timeout": 28800,
}
FORCED_PARAMETERS: dict[str, object] = {"require_secure_transport": "ON"}


def find_server_binary() -> Path | None:
    """`mariadbd` or `mysqld`, from $PATH first, then the usual sbin/libexec places."""
    for name in SERVER_BINARIES:
        found = shutil.which(name)
        if found:
            return Path(found)
        for d in SEARCH_PATH:
            p = Path(d) / name
            if p.is_file() and os.access(p, os.X_OK):
                return p
    return None


def _binary_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--no-defaults", "--version"], capture_output=True, text=True, timeout=30)
    m = re.search(r"Ver\s+(\S+)", out.stdout)
    return m.group(1) if m else out.stdout.strip()


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def datadir(self) -> Path: return self.root / "data"
    @property
    def tls(self) -> Path: return self.root / "tls"
    @property
    def logs(self) -> Path: return self.root / "logs"
    @property
    def binlog_dir(self) -> Path: return self.root / "binlog"
    @property
    def cnf(self) -> Path: return self.root / "my.cnf"
    @property
    def pidfile(self) -> Path: return self.root / "mysqld.pid"
    @property
    def init_file(self) -> Path: return self.root / "init.sql"
    @property
    def ca(self) -> Path: return self.tls / "ca.pem"
    @property
    def error_log(self) -> Path: return self.logs / "error.log"
    @property
    def slow_log(self) -> Path: return self.logs / "slow.log"
    @property
    def audit_log(self) -> Path: return self.logs / "audit.log"

    @property
    def socket(self) -> Path:
        # Unix socket paths are limited to 107 bytes; deep state dirs fall back to a hashed name in /tmp.
        p = self.root / "mysqld.sock"
        if len(str(p)) < 100:
            return p
        return Path("/tmp") / f"shared-mysql-{hashlib.sha1(str(self.root).encode()).hexdigest()[:16]}.sock"


class LocalServer:
    """One embedded server instance rooted at a state directory."""

    def __init__(self, state_dir: Path, *, host: str, port: int, parameters: dict | None = None,
                 master_username: str = "admin", binary: Path | None = None):
        self.paths = Paths(Path(state_dir))
        self.host = host
        self.port = port
        self.parameters = dict(parameters or {})
        self.master_username = master_username
        self._binary = binary

    # -- discovery ---------------------------------------------------------------------------------------
    @property
    def binary(self) -> Path:
        if self._binary is None:
            found = find_server_binary()
            if found is None:
                raise LocalServerError(
                    "no MariaDB/MySQL server binary (mariadbd or mysqld) found; install one with "
                    "`apt-get install mariadb-server` (or run `make up`)"
                )
            self._binary = found
        return self._binary

    @property
    def flavor_name(self) -> str:
        return "mariadb" if "mariadb" in self.binary.name or "MariaDB" in self.version else "mysql"

    @property
    def version(self) -> str:
        if not hasattr(self, "_version"):
            self._version = _binary_version(self.binary)
        return self._version

    # -- status ------------------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of our running server, or None (a stale pid file or a reused pid do not count)."""
        try:
            pid = int(self.paths.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        if f"--defaults-file={self.paths.cnf}" not in cmdline:
            return None  # the pid now belongs to another process
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return None
        except (FileNotFoundError, IndexError):
            return None
        return pid

    def status(self) -> dict:
        pid = self.pid()
        return {
            "running": pid is not None,
            "pid": pid,
            "version": self.version if self.binary else None,
            "flavor": self.flavor_name,
            "host": self.host,
            "port": self.port,
            "datadir": str(self.paths.datadir),
            "initialized": (self.paths.datadir / "mysql").is_dir(),
            "ca": str(self.paths.ca),
            "config_file": str(self.paths.cnf),
            "binary": str(self.binary),
            "logs": {
                "error": str(self.paths.error_log),
                "slow": str(self.paths.slow_log),
                "audit": str(self.paths.audit_log) if self.flavor_name == "mariadb" else None,
                "binlog": str(self.paths.binlog_dir),
            },
        }

    # -- config ------------------------------------------------------------------------------------------
    def effective_parameters(self) -> dict[str, object]:
        params = dict(DEFAULT_PARAMETERS)
        params.update(self.parameters)
        params.update(FORCED_PARAMETERS)
        return params

    def render_cnf(self) -> str:
        p = self.paths
        section = "mariadbd" if self.flavor_name == "mariadb" else "mysqld"
        lines = [
            "# Written by shared-mysql; regenerated on every `local up`. Edit instance.parameters instead.",
            f"[{section}]",
            f"datadir = {p.datadir}",
            f"port = {self.port}",
            f"bind_address = {self.host}",
            f"socket = {p.socket}",
            f"pid_file = {p.pidfile}",
            f"log_error = {p.error_log}",
            "skip_name_resolve = ON",
            f"ssl_ca = {p.ca}",
            f"ssl_cert = {p.tls / 'server-cert.pem'}",
            f"ssl_key = {p.tls / 'server-key.pem'}",
            f"slow_query_log_file = {p.slow_log}",
            "# binary log for point-in-time recovery",
            "server_id = 1",
            f"log_bin = {p.binlog_dir / 'binlog'}",
            "binlog_format = ROW",
            "expire_logs_days = 14",
        ]
        if os.geteuid() == 0:
            lines.append("user = root")
        if self.flavor_name == "mariadb":
            lines += [
                "# audit log: connections, DDL and DCL (GRANT/REVOKE/CREATE USER), failed logins",
                "plugin_load_add = server_audit",
                "server_audit = FORCE_PLUS_PERMANENT",
                "server_audit_logging = ON",
                "server_audit_events = CONNECT,QUERY_DDL,QUERY_DCL",
                "server_audit_output_type = file",
                f"server_audit_file_path = {p.audit_log}",
                "server_audit_file_rotate_size = 10000000",
                "server_audit_file_rotations = 9",
            ]
        lines.append("# parameter group")
        for name, value in sorted(self.effective_parameters().items()):
            if isinstance(value, bool):
                value = "ON" if value else "OFF"
            lines.append(f"{name} = {value}")
        return "\n".join(lines) + "\n"

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _initialise(self) -> None:
        """Create the datadir in a temp dir and rename it into place: an interrupted init leaves nothing."""
        p = self.paths
        if (p.datadir / "mysql").is_dir():
            return
        if p.datadir.exists():
            # A datadir without the system schema is a leftover of an interrupted run of an older layout.
            raise LocalServerError(f"{p.datadir}: exists but is not an initialised datadir; remove it and re-run")
        tmp = p.root / f"data.init-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        for stale in p.root.glob("data.init-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True, mode=0o700)
        if self.flavor_name == "mariadb":
            installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
            if not installer:
                raise LocalServerError("mariadb-install-db not found; install the mariadb-server package")
            # root@localhost without a password only for the bootstrap file, which drops it before any TCP login.
            cmd = [installer, "--no-defaults", f"--datadir={tmp}", "--auth-root-authentication-method=normal",
                   "--skip-test-db", "--skip-name-resolve", f"--user={_current_user()}", "--basedir=/usr"]
        else:
            cmd = [str(self.binary), "--no-defaults", f"--datadir={tmp}", "--initialize-insecure",
                   f"--user={_current_user()}"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LocalServerError(f"initialising {p.datadir} failed: {tail[0]}")
        os.replace(tmp, p.datadir)

    def _bootstrap_sql(self, password: str) -> str:
        """Runs at every start (init_file): the master user matches the store; no passwordless root on TCP."""
        acct = quoting.account(self.master_username, "%")
        if self.flavor_name == "mariadb":
            auth = f"IDENTIFIED BY PASSWORD {quoting.literal(native_hash(password))}"
        else:
            auth = f"IDENTIFIED WITH mysql_native_password AS {quoting.literal(native_hash(password))}"
        hostname = socket.gethostname()
        drops = ", ".join(
            quoting.account(u, h)
            for u, h in [("root", "localhost"), ("root", "127.0.0.1"), ("root", "::1"), ("root", hostname),
                         ("root", "%"), ("", "localhost"), ("", hostname)]
        )
        return "\n".join([
            "SET sql_log_bin = 0;",
            f"CREATE USER IF NOT EXISTS {acct} {auth} REQUIRE SSL;",
            f"ALTER USER {acct} {auth} REQUIRE SSL;",
            f"GRANT ALL PRIVILEGES ON *.* TO {acct} WITH GRANT OPTION;",
            f"DROP USER IF EXISTS {drops};",
            "",
        ])

    def up(self, master_password: str) -> dict:
        """Start the server if it is not running; idempotent; recovers from stale pid files and crashes."""
        p = self.paths
        binary = self.binary
        p.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for d in (p.logs, p.binlog_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        from .certs import ensure_certificates

        ensure_certificates(p.tls, hosts=tuple(dict.fromkeys([self.host, "127.0.0.1", "localhost"])))
        if self.pid() is not None:
            return self.status()
        if p.pidfile.exists():
            p.pidfile.unlink()  # stale: the process is gone (crash, kill -9, reboot)
        self._check_port_free()
        self._initialise()
        write_private(p.cnf, self.render_cnf().encode())
        write_private(p.init_file, self._bootstrap_sql(master_password).encode())
        start_offset = p.error_log.stat().st_size if p.error_log.exists() else 0
        with open(p.logs / "console.log", "ab") as console:
            proc = subprocess.Popen(
                [str(binary), f"--defaults-file={p.cnf}", f"--init-file={p.init_file}"],
                stdin=subprocess.DEVNULL, stdout=console, stderr=console, start_new_session=True,
            )
        try:
            self._wait_ready(proc, start_offset)
        finally:
            try:
                p.init_file.unlink()
            except FileNotFoundError:
                pass
        return self.status()

    def _check_port_free(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.host, self.port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise LocalServerError(
                        f"port {self.port} on {self.host} is already in use by another process; set instance.port "
                        "in shared-mysql.yaml to a free port (or stop that process)"
                    ) from None
                raise LocalServerError(f"cannot bind {self.host}:{self.port}: {exc.strerror}") from None

    def _wait_ready(self, proc: subprocess.Popen, log_offset: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalServerError(f"server failed to start: {self._last_error(log_offset)}")
            # The listener is bound before init_file runs; "ready for connections" is logged after it.
            if self._logged_since(log_offset, "ready for connections") and self._port_open():
                return
            time.sleep(0.05)
        proc.terminate()
        raise LocalServerError(
            f"server did not become ready within {START_TIMEOUT:.0f}s; see {self.paths.error_log}"
        )

    def _logged_since(self, offset: int, needle: str) -> bool:
        try:
            with open(self.paths.error_log, "rb") as fh:
                fh.seek(offset)
                return needle.encode() in fh.read()
        except FileNotFoundError:
            return False

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _last_error(self, offset: int) -> str:
        try:
            with open(self.paths.error_log, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace")
        except FileNotFoundError:
            text = ""
        errors = [ln for ln in text.splitlines() if "[ERROR]" in ln]
        if errors:
            msg = errors[0].split("[ERROR]", 1)[1].strip()
            if "unknown variable" in msg:
                msg += " (check instance.parameters in shared-mysql.yaml)"
            return msg
        return f"see {self.paths.error_log}"

    def down(self) -> bool:
        """Stop cleanly (SIGTERM, wait); True when a server was running."""
        pid = self.pid()
        if pid is None:
            if self.paths.pidfile.exists():
                self.paths.pidfile.unlink()
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
        raise LocalServerError(f"server (pid {pid}) did not stop within {STOP_TIMEOUT:.0f}s; see {self.paths.error_log}")

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
