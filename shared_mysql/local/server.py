"""The embedded server: find the binary, initialise a datadir, write its config, start/stop/status.

It is configured like the seed's parameter group (utf8mb4, max_connections, slow log at 2 s with queries not
using indexes, TLS required with a generated CA) plus a ROW binlog for point-in-time recovery and, on MariaDB,
the bundled audit plugin. Always started with `--defaults-file`, so `/etc/mysql` never leaks in, and with a
minimal environment, so the caller's secrets never reach it. As on RDS, TLS over TCP is the only way in: the Unix
socket lives in a private directory and is unlinked as soon as the server is ready.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalServerError
from ..locking import flock_within
from ..secrets.file import write_private
from ..sql import quoting
from ..sql.accounts import PASSWORD_PLUGINS, SERVER_ACCOUNTS, SOCKET_PLUGINS
from ..sql.passwords import native_hash
from .cnf import (DEFAULT_PARAMETERS, FORCED_PARAMETERS, OPTION_PREFIXES, OWNED_MARKER, RESERVED_NAMES,  # noqa: F401
                  CnfMixin, _cnf_changes, cnf_value_problem, option_forms, owned_block, parse_cnf)
from .procfs import _alive, _unix_socket_reachable, listening_tcp, listening_unix  # noqa: F401

SEARCH_PATH = ("/usr/sbin", "/usr/libexec", "/usr/local/mysql/bin", "/usr/local/bin", "/usr/bin")
SERVER_BINARIES = ("mariadbd", "mysqld")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
# Unix socket paths hold at most 107 bytes; longer state paths get a private directory under SOCKET_TEMP_ROOT.
SOCKET_PATH_MAX = 100
SOCKET_TEMP_ROOT = Path("/tmp")
# The only variables the server and its installer get from the caller's environment (an allowlist).
CHILD_ENV_PASSED = ("PATH", "TZ")


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


def child_env(tmpdir: Path | None = None) -> dict[str, str]:
    """The environment of mariadbd/mariadb-install-db: an allowlist, so that secret-store keys, AWS credentials,
    MYSQL_PWD or MYSQLD_BOOTSTRAP in the caller's environment never reach the server (it runs as root here)."""
    env = {k: os.environ[k] for k in CHILD_ENV_PASSED if os.environ.get(k)}
    env.setdefault("PATH", os.defpath)
    # The server creates its files (binlogs, logs, tables) with these modes; its default is 0660, its logs 0644.
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", UMASK="0600", UMASK_DIR="0700")
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return env


def _binary_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--no-defaults", "--version"], capture_output=True, text=True, timeout=30,
                         env=child_env())
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
    def secure_files(self) -> Path: return self.root / "secure-files"
    @property
    def tmpdir(self) -> Path: return self.root / "tmp"
    @property
    def cnf(self) -> Path: return self.root / "my.cnf"
    @property
    def pidfile(self) -> Path: return self.root / "mysqld.pid"
    @property
    def init_file(self) -> Path: return self.root / "init.sql"
    @property
    def start_lock(self) -> Path: return self.root / "server-start.lock"
    @property
    def ca(self) -> Path: return self.tls / "ca.pem"
    @property
    def error_log(self) -> Path: return self.logs / "error.log"
    @property
    def slow_log(self) -> Path: return self.logs / "slow.log"
    @property
    def audit_log(self) -> Path: return self.logs / "audit.log"
    @property
    def general_log(self) -> Path: return self.logs / "general.log"

    @property
    def socket_dir(self) -> Path:
        """A 0700 directory of ours: `run/` in the state dir, or a per-instance one in /tmp for deep state dirs."""
        local = self.root / "run"
        if len(os.fsencode(local / "mysqld.sock")) <= SOCKET_PATH_MAX:
            return local
        digest = hashlib.sha256(os.fsencode(self.root)).hexdigest()[:16]
        return SOCKET_TEMP_ROOT / f"shared-mysql-{os.geteuid()}-{digest}"

    @property
    def socket(self) -> Path:
        return self.socket_dir / "mysqld.sock"


class LocalServer(CnfMixin):
    """One embedded server instance rooted at a state directory."""

    def __init__(self, state_dir: Path, *, host: str, port: int, parameters: dict | None = None,
                 master_username: str = "admin", binary: Path | None = None):
        self.paths = Paths(Path(state_dir))
        self.host = host
        self.port = port
        self.parameters = dict(parameters or {})
        self.master_username = master_username
        self._binary = binary
        self._option_names: frozenset[str] | None = None

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

    def option_names(self) -> frozenset[str]:
        """Every option name the binary knows (from `--verbose --help`), `-` spelled `_`; empty if unreadable."""
        if self._option_names is None:
            try:
                out = subprocess.run([str(self.binary), "--no-defaults", "--verbose", "--help"], capture_output=True,
                                     text=True, timeout=30, env=child_env()).stdout
            except (OSError, subprocess.SubprocessError):
                out = ""
            # The table after "Variables (--variable-name=value)": one `name  value` row per option.
            table = out.split("Variables (--variable-name=value)", 1)[1] if "Variables (--" in out else ""
            rows = table.split("\n---", 1)[1].splitlines()[1:] if "\n---" in table else []
            self._option_names = frozenset(
                m.group(0).replace("-", "_") for m in (re.match(r"[a-z][a-z0-9_-]*(?=\s)", r) for r in rows) if m
            )
        return self._option_names

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
            stat_line = Path(f"/proc/{pid}/stat").read_text()
            if stat_line.rsplit(")", 1)[1].split()[0] == "Z":
                return None
        except (FileNotFoundError, IndexError):
            return None
        return pid

    def status(self) -> dict:
        """What runs and where; while running, what it really listens on (from /proc, no login) and whether
        it was started with the configuration `local up` would write now."""
        p = self.paths
        pid = self.pid()
        st = {
            "running": pid is not None,
            "pid": pid,
            "version": self.version if self.binary else None,
            "flavor": self.flavor_name,
            "host": self.host,
            "port": self.port,
            "datadir": str(p.datadir),
            "initialized": (p.datadir / "mysql").is_dir(),
            "ca": str(p.ca),
            "config_file": str(p.cnf),
            "binary": str(self.binary),
            "logs": {
                "error": str(p.error_log),
                "slow": str(p.slow_log),
                "audit": str(p.audit_log) if self.flavor_name == "mariadb" else None,
                "binlog": str(p.binlog_dir),
            },
            "listening": [],
            "unix_socket": {"path": str(p.socket), "reachable": False},
            "forced": {},
            "restart_needed": False,
            "restart_reason": None,
        }
        if pid is not None:
            st["listening"] = listening_tcp(pid)
            running_cnf = _read_text(p.cnf)
            st["forced"] = owned_block(running_cnf or "")
            # The socket the process really holds (/proc), else the one its my.cnf names.
            held = listening_unix(pid) or [parse_cnf(running_cnf or "").get("socket") or str(p.socket)]
            st["unix_socket"] = {"path": held[0], "reachable": _unix_socket_reachable(Path(held[0]))}
            st["restart_reason"] = self._restart_reason(running_cnf)
            st["restart_needed"] = st["restart_reason"] is not None
        else:
            try:
                st["forced"] = owned_block(self.render_cnf())
            except LocalServerError:
                pass
        return st

    def _restart_reason(self, running_cnf: str | None) -> str | None:
        """One line when the running server does not match what `local up` would start now, else None."""
        from .certs import renewal_reason

        hint = "run `shared-mysql local down` then `shared-mysql local up`"
        try:
            wanted = self.render_cnf()
        except LocalServerError as exc:
            return f"the configuration cannot be applied: {exc}"
        changes = _cnf_changes(parse_cnf(running_cnf or ""), parse_cnf(wanted))
        cert = renewal_reason(self.paths.tls, self.cert_hosts())
        if cert:
            changes.append(cert)
        if not changes:
            return None
        shown = "; ".join(changes[:3]) + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")
        return f"the running server was started with a different configuration ({shown}); {hint}"

    # -- config ------------------------------------------------------------------------------------------
    def cert_hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([self.host, "127.0.0.1", "localhost"]))

    def check_host(self) -> None:
        """The embedded server listens on loopback only (config refuses other hosts too; this is the backstop)."""
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost" and _resolves_to_loopback_only(self.host)
        if not loopback:
            raise LocalServerError(
                f"instance.host: {self.host!r} is not a loopback address; the embedded server listens on loopback "
                "only: set instance.host to 127.0.0.1 (or another 127.x address, ::1 or localhost)"
            )


    # -- lifecycle ---------------------------------------------------------------------------------------
    def _initialise(self) -> None:
        """Create the datadir in a temp dir and rename it into place: an interrupted init leaves nothing, and
        when another process wins the race its datadir is used and ours discarded."""
        p = self.paths
        if p.datadir.exists():  # only ever renamed into place complete, so it has the system schema now
            if (p.datadir / "mysql").is_dir():
                return
            # A datadir without the system schema is a leftover of an interrupted run of an older layout.
            raise LocalServerError(f"{p.datadir}: exists but is not an initialised datadir; remove it and re-run")
        self._remove_stale_init_dirs()
        try:  # data.init-<pid>-<random>, 0700: unique even for two threads of one process
            work = Path(tempfile.mkdtemp(prefix=f"data.init-{os.getpid()}-", dir=p.root))
            new, tmp = work / "data", work / "tmp"
            new.mkdir(mode=0o700)
            tmp.mkdir(mode=0o700)
        except OSError as exc:
            raise LocalServerError(f"cannot create a directory in {p.root}: {exc.strerror}; make it writable by this "
                                   "user and re-run") from None
        try:
            self._run_installer(new, tmp)
            try:
                os.rename(new, p.datadir)
            except OSError as exc:
                if (p.datadir / "mysql").is_dir():
                    return  # another process initialised it first: use theirs
                raise LocalServerError(
                    f"cannot move the new datadir into place at {p.datadir}: {exc.strerror}; remove {p.datadir} "
                    "and re-run"
                ) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run_installer(self, datadir: Path, tmpdir: Path) -> None:
        # Its own tmpdir: a bootstrap deletes every #sql* file in its tmpdir, so two installs (or an install and
        # any other server) sharing /tmp break each other's temporary tables.
        if self.flavor_name == "mariadb":
            installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
            if not installer:
                raise LocalServerError("mariadb-install-db not found; install the mariadb-server package")
            # root@localhost without a password only for the bootstrap file, which drops it before any TCP login.
            cmd = [installer, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
                   "--skip-test-db", "--skip-name-resolve", f"--user={_current_user()}", "--basedir=/usr",
                   f"--tmpdir={tmpdir}"]
        else:
            cmd = [str(self.binary), "--no-defaults", f"--datadir={datadir}", "--initialize-insecure",
                   f"--user={_current_user()}", f"--tmpdir={tmpdir}"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env(tmpdir))
        except (OSError, subprocess.SubprocessError) as exc:
            raise LocalServerError(f"initialising {self.paths.datadir} failed: {exc}") from None
        if res.returncode != 0:
            raise LocalServerError(f"initialising {self.paths.datadir} failed: "
                                   f"{_install_error(res.stdout + res.stderr)}; fix that and re-run")

    def _remove_stale_init_dirs(self) -> None:
        """Remove `data.init-<pid>` dirs whose process is gone; a live one belongs to a concurrent init."""
        for stale in self.paths.root.glob("data.init-*"):
            m = re.fullmatch(r"data\.init-(\d+)(-.*)?", stale.name)
            if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
                shutil.rmtree(stale, ignore_errors=True)

    def _bootstrap_sql(self, password: str) -> str:
        """Runs at every start (init_file): the master user matches the store (as a hash: no plaintext password
        is written anywhere), and every other account that logs in without a password, through the Unix socket
        plugin or anonymously is dropped, whatever its host."""
        acct = quoting.account(self.master_username, "%")
        hashed = quoting.literal(native_hash(password))
        master = f"User = {quoting.literal(self.master_username)} AND Host = '%'"
        quoted = "CONCAT('''', REPLACE(User, '''', ''''''), '''@''', REPLACE(Host, '''', ''''''), '''')"
        password_plugins = ", ".join(quoting.literal(x) for x in PASSWORD_PLUGINS)
        socket_plugins = ", ".join(quoting.literal(x) for x in SOCKET_PLUGINS)
        if self.flavor_name == "mariadb":
            auth = f"IDENTIFIED BY PASSWORD {hashed}"
            system = ", ".join(quoting.literal(x) for x in SERVER_ACCOUNTS)
            # MariaDB 10.4+: accounts live in mysql.global_priv as JSON; `IDENTIFIED VIA a OR b` keeps the last
            # method at the top level and the others in `auth_or` (`{}` marks the top level's place), so the
            # top level and every auth_or entry are checked. Roles (PUBLIC is one) cannot log in.
            where = (
                f"NOT ({master}) AND IFNULL(JSON_VALUE(Priv, '$.is_role'), '') NOT IN ('1', 'true') "
                f"AND NOT (User = 'PUBLIC' AND Host = '') "
                f"AND NOT (User IN ({system}) AND Host = 'localhost' "
                f"AND IFNULL(JSON_VALUE(Priv, '$.account_locked'), '') IN ('1', 'true')) "
                f"AND (User = '' OR EXISTS (SELECT 1 FROM JSON_TABLE(JSON_ARRAY_APPEND("
                f"IFNULL(JSON_QUERY(Priv, '$.auth_or'), '[]'), '$', JSON_OBJECT("
                f"'plugin', IFNULL(JSON_VALUE(Priv, '$.plugin'), ''), "
                f"'authentication_string', IFNULL(JSON_VALUE(Priv, '$.authentication_string'), ''))), "
                f"'$[*]' COLUMNS (plugin VARCHAR(64) PATH '$.plugin', auth TEXT PATH '$.authentication_string')) m "
                f"WHERE m.plugin IN ({socket_plugins}) "
                f"OR (m.plugin IN ({password_plugins}) AND IFNULL(m.auth, '') = '')))"
            )
            source = "mysql.global_priv"
        else:
            auth = f"IDENTIFIED WITH mysql_native_password AS {hashed}"
            # MySQL 8: roles and the system accounts are locked accounts; a locked account cannot log in.
            where = (
                f"NOT ({master}) AND account_locked = 'N' AND (User = '' OR plugin IN ({socket_plugins}) "
                f"OR (authentication_string = '' AND plugin IN ({password_plugins})))"
            )
            source = "mysql.user"
        return "\n".join([
            "SET sql_log_bin = 0;",
            # The quoting below doubles quotes only: make backslashes plain characters whatever sql_mode says.
            "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';",
            "SET SESSION group_concat_max_len = 16777216;",
            f"CREATE USER IF NOT EXISTS {acct} {auth} REQUIRE SSL;",
            f"ALTER USER {acct} {auth} REQUIRE SSL;",
            f"GRANT ALL PRIVILEGES ON *.* TO {acct} WITH GRANT OPTION;",
            "SET @shared_mysql_drop = NULL;",
            f"SELECT GROUP_CONCAT({quoted} SEPARATOR ', ') INTO @shared_mysql_drop FROM {source} WHERE {where};",
            "SET @shared_mysql_drop = IFNULL(CONCAT('DROP USER ', @shared_mysql_drop), 'DO 0');",
            "PREPARE shared_mysql_drop FROM @shared_mysql_drop;",
            "EXECUTE shared_mysql_drop;",
            "DEALLOCATE PREPARE shared_mysql_drop;",
            "SET @shared_mysql_drop = NULL;",
            "",
        ])

    def up(self, master_password: str) -> dict:
        """Start the server if it is not running; idempotent; recovers from stale pid files and crashes."""
        p = self.paths
        binary = self.binary
        self.check_host()
        self._prepare_state_dir()
        with self._start_lock():
            if self.pid() is not None:
                self._close_socket(parse_cnf(_read_text(p.cnf) or "").get("socket"))
                return self.status()
            if p.pidfile.exists():
                p.pidfile.unlink()  # stale: the process is gone (crash, kill -9, reboot)
            cnf = self.render_cnf()  # every parameter checked before anything is created
            self._check_port_free()
            _private_dir(p.socket_dir, fix_mode=p.socket_dir.parent == p.root)
            from .certs import ensure_certificates

            ensure_certificates(p.tls, hosts=self.cert_hosts())  # only while stopped
            self._initialise()
            write_private(p.cnf, cnf.encode())
            write_private(p.init_file, self._bootstrap_sql(master_password).encode())
            start_offset = p.error_log.stat().st_size if p.error_log.exists() else 0
            fd = os.open(p.logs / "console.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            os.fchmod(fd, 0o600)  # an older one may be 0644
            with os.fdopen(fd, "ab") as console:
                proc = subprocess.Popen(
                    [str(binary), f"--defaults-file={p.cnf}", f"--init-file={p.init_file}"],
                    stdin=subprocess.DEVNULL, stdout=console, stderr=console, start_new_session=True,
                    env=child_env(p.tmpdir),
                )
            try:
                self._wait_ready(proc, start_offset)
            finally:
                try:
                    p.init_file.unlink()
                except FileNotFoundError:
                    pass
            self._close_socket()
        return self.status()

    def check_state_path(self) -> None:
        """Refuse a state path the server's tools cannot handle, before anything is created."""
        if any(c.isspace() for c in str(self.paths.root)):
            # mariadb-install-db runs `chown $user $datadir` unquoted: a space split the path and chowned a sibling.
            raise LocalServerError(f"state directory {str(self.paths.root)!r}: its path has a space, which the "
                                   "server's installer cannot handle; move shared-mysql.yaml to a directory whose path "
                                   "has none (the state dir is .shared-mysql/ next to it)")

    def _prepare_state_dir(self) -> None:
        """The state dir and its private subdirectories exist, belong to us and are 0700."""
        p = self.paths
        self.check_state_path()
        try:
            from ..secrets.file import private_dirs

            private_dirs(p.root)
            st = p.root.stat()
        except OSError as exc:
            raise LocalServerError(f"cannot create the state directory {p.root}: {exc.strerror}; make its parent "
                                   "writable by this user and re-run") from None
        if st.st_uid != os.geteuid():
            raise LocalServerError(
                f"{p.root}: the state directory belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()}); "
                "run shared-mysql as its owner"
            )
        if stat.S_IMODE(st.st_mode) != 0o700:
            p.root.chmod(0o700)
        for d in (p.logs, p.binlog_dir, p.secure_files, p.tmpdir):
            _private_dir(d, fix_mode=True)

    @contextmanager
    def _start_lock(self):
        """One start at a time per state dir, even without the CLI's lock (library callers, tests)."""
        fd = os.open(self.paths.start_lock, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            if not flock_within(fd, START_TIMEOUT + 30):
                raise LocalServerError(
                    f"another process has been starting the server in {self.paths.root} for too long "
                    f"(lock {self.paths.start_lock}); check {self.paths.error_log}, then re-run"
                )
            yield
        finally:
            os.close(fd)

    def tidy_running(self) -> None:
        """For a server that is already running: finish what an interrupted start left (a `kill -9` between
        "ready" and the socket's removal kept the socket reachable and the bootstrap file on disk)."""
        p = self.paths
        self._close_socket(parse_cnf(_read_text(p.cnf) or "").get("socket"))
        try:
            p.init_file.unlink()
        except FileNotFoundError:
            pass

    def _close_socket(self, running: str | None = None) -> None:
        """Unlink the Unix socket (and MySQL's lock file): nobody, root included, can connect through it after
        this; the server keeps its TCP listener, and removes/recreates the path itself on stop/start. `running`:
        the socket a server started with an older my.cnf uses."""
        sock = Path(running) if running else self.paths.socket
        for path, kind in ((sock, stat.S_ISSOCK), (Path(f"{sock}.lock"), stat.S_ISREG)):
            try:
                if kind(os.lstat(path).st_mode):
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise LocalServerError(f"cannot remove {path}: {exc.strerror}; remove it by hand") from None

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
                raise LocalServerError(f"cannot bind {self.host}:{self.port}: {exc.strerror}; set instance.host to "
                                       "a loopback address this machine has (127.0.0.1)") from None

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
                self._remove_temp_socket_dir()
                return True
            time.sleep(0.05)
        raise LocalServerError(f"server (pid {pid}) did not stop within {STOP_TIMEOUT:.0f}s; see "
                               f"{self.paths.error_log}")

    def _remove_temp_socket_dir(self) -> None:
        """Leave nothing in /tmp once stopped: the per-instance socket dir there is removed when empty."""
        d = self.paths.socket_dir
        if d.parent == SOCKET_TEMP_ROOT:
            try:
                os.rmdir(d)
            except OSError:
                pass  # gone already, or not empty: not ours to clear

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.02)


# -- files and processes ---------------------------------------------------------------------------------------
def _private_dir(path: Path, *, fix_mode: bool) -> None:
    """`path` is a real directory (not a symlink), owned by us, mode 0700; created so if missing. A directory
    we did not just create in a shared place (fix_mode=False) is refused rather than repaired."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise LocalServerError(f"cannot create {path}: {exc.strerror}; check its parent is writable") from None
    st = os.lstat(path)
    problem = None
    if not stat.S_ISDIR(st.st_mode):
        problem = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
    elif st.st_uid != os.geteuid():
        problem = f"owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    elif stat.S_IMODE(st.st_mode) != 0o700:
        if fix_mode:
            os.chmod(path, 0o700)
        else:
            problem = f"mode {stat.S_IMODE(st.st_mode):o}, not 700"
    if problem:
        raise LocalServerError(f"{path}: is {problem}; the server's private directory must be a 0700 directory of "
                               "this user: remove it and re-run")


def _resolves_to_loopback_only(name: str) -> bool:
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _install_error(output: str) -> str:
    """The line of the installer's output that says what went wrong (it ends with a help text)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and "Aborting" not in ln]
    for needle in ("[ERROR]", "ERROR", "failed"):
        for ln in lines:
            if needle in ln:
                return ln.split("[ERROR]", 1)[-1].strip()
    return lines[-1] if lines else "no output"


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
