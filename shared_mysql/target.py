"""Binds a loaded config to its state directory, secret store, exports, server and admin connection.

  local   the embedded server on 127.0.0.1, started by us; master credential created by us
  server  any MySQL 8.0+/MariaDB 10.6+ reached by host/port; master credential imported into the store
  aws     the RDS instance (endpoint from the config or RDS); master credential in Secrets Manager

Everything instance-specific lives under `.shared-mysql/<identifier>/` next to the config.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import time
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from .config import LoadedConfig
from .db import ConnectionInfo, PyMySQLExecutor
from .errors import ConfigError, SecretStoreError, ServerError, SharedMySQLError
from .locking import flock_within
from .secrets import CURRENT, PENDING, secret_json
from .secrets.file import private_dirs
from .sql.quoting import as_text
from .sql.passwords import generate_password


# Commands that wait for the lock (local up/down, credentials --import) give up after this many seconds;
# apply/up fail at once when another command holds it.
LOCK_WAIT = 120.0
_HELD: dict[Path, int] = {}  # state dirs whose lock this process holds, with the re-entry depth


def _lock_holder(path: Path) -> str:
    try:
        pid, _, what = path.read_text().strip().partition(" ")
        return f" (pid {int(pid)}: {what})" if what else f" (pid {int(pid)})"
    except (OSError, ValueError):
        return ""


def check_owned_dirs(state_dir: Path) -> None:
    """The state directory and `.shared-mysql/` above it must be real directories of this user: in a directory
    someone else controls, they could swap in links to files we would then write as ourselves."""
    me = os.geteuid()
    for d in (state_dir.parent, state_dir):
        st = os.lstat(d)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != me:
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory" if not stat.S_ISDIR(st.st_mode) \
                else f"owned by uid {st.st_uid}"
            raise SharedMySQLError(f"{d}: {what}, not a directory of this user (uid {me}); the state directory "
                                   "must be this user's own: remove it (or run shared-mysql as its owner) and re-run")


def check_master_json(value, label: str = "master credential") -> None:
    """A credential to import: RDS secret JSON with string username/password (one line otherwise)."""
    example = 'give RDS secret JSON such as {"username": "admin", "password": "..."}'
    if not isinstance(value, dict):
        raise SharedMySQLError(f"{label}: expected a JSON object; {example}")
    missing = [k for k in ("username", "password") if not value.get(k)]
    if missing:
        raise SharedMySQLError(f"{label}: missing {', '.join(missing)}; {example}")
    for k in ("username", "password", "host", "engine", "dbname", "database", "ssl_ca"):
        v = value.get(k)
        if v is not None and (not isinstance(v, str) or not v.isprintable()):
            raise SharedMySQLError(f"{label}: {k} must be a string of printable characters; {example}")
    port = value.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise SharedMySQLError(f"{label}: port must be a number from 1 to 65535; {example}")


# SSM parameter (under the exports prefix) where the infra stack publishes the tenant rotation function's ARN.
ROTATION_FUNCTION_PARAMETER = "rotation-function-arn"


def _meta(ex) -> str | None:
    """The operator lock's name: GET_LOCK needs no privilege, so any tenant could take a name it can guess and
    stall every apply and rotation. The name carries a random salt kept in the tool's own schema, which only the
    admin can read. None when the admin may not create that schema (the plain name is used then)."""
    import hashlib
    import secrets as _secrets

    from .sql.quoting import string
    from .tenants.model import META_DATABASE

    db = f"`{META_DATABASE}`"
    try:
        rows = ex.query(f"SELECT salt FROM {db}.operator_lock WHERE id = 1")
    except SharedMySQLError:
        rows = []
    if not rows:
        try:
            ex.query(f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            ex.query(f"CREATE TABLE IF NOT EXISTS {db}.operator_lock (id TINYINT PRIMARY KEY, salt CHAR(64) NOT NULL, "
                     "conn BIGINT UNSIGNED NULL, holder VARCHAR(255) NULL, command VARCHAR(255) NULL, "
                     "since DATETIME NULL) ENGINE=InnoDB")
            ex.query(f"INSERT IGNORE INTO {db}.operator_lock (id, salt) VALUES (1, "
                     f"{string(_secrets.token_hex(32))})")  # racing operators: the first salt stays
            rows = ex.query(f"SELECT salt FROM {db}.operator_lock WHERE id = 1")
        except SharedMySQLError:
            return None
    return hashlib.sha256(f"{as_text(rows[0][0])}".encode()).hexdigest()[:40]


def _server_lock_holder(ex, name: str, salted: bool) -> str:
    """` (held by alice@build-7 running `shared-mysql rotate --due` since 2026-11-26 10:15:02 UTC; connection 42:
    admin from 10.0.0.5:51234)`: who and what from the holder's own record in the tool's schema (written right after
    it took the lock, readable by the admin only), the session from the processlist."""
    from .sql.quoting import string
    from .tenants.model import META_DATABASE

    try:
        conn_id = ex.query(f"SELECT IS_USED_LOCK({string(name)})")[0][0]
        if conn_id is None:
            return ""
        rows = ex.query(f"SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = {int(conn_id)}")
        record = ex.query("SELECT conn, holder, command, DATE_FORMAT(since, '%Y-%m-%d %H:%i:%s') "
                          f"FROM `{META_DATABASE}`.operator_lock WHERE id = 1") if salted else []
    except SharedMySQLError:
        return ""
    session = f"connection {conn_id}" + (f": {as_text(rows[0][0])} from {as_text(rows[0][1])}" if rows else "")
    if record and record[0][0] is not None and int(record[0][0]) == int(conn_id):
        _, holder, command, since = record[0]
        return f" (held by {as_text(holder)} running `{as_text(command)}` since {as_text(since)} UTC; {session})"
    return f" (held by {session})"


class Target:
    kind = "base"

    def __init__(self, loaded: LoadedConfig):
        self.loaded = loaded
        self.config = loaded.config
        self.state_dir: Path = loaded.state_dir

    # -- backends ------------------------------------------------------------------------------------------
    @cached_property
    def store(self):
        if self.config.secrets_backend == "aws":
            from .aws import client_for
            from .secrets.aws import AwsSecretStore

            s = self.config.secrets
            return AwsSecretStore(client_for(self.config, "secretsmanager"), name_prefix=f"{self.config.environment}-",
                                  kms_key_id=s.kms_key_id, recovery_window_days=s.recovery_window_days)
        from .secrets.file import FileSecretStore

        return FileSecretStore(self.state_dir / "secrets.enc", self.state_dir / "secrets.key")

    @cached_property
    def exports(self):
        from .exports import open_exports

        return open_exports(self)

    # -- endpoint ------------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def ca(self) -> str:
        path = self.loaded.resolve(self.config.instance.ca_bundle)
        if not path.is_file():
            raise ConfigError(f"{self.loaded.path}: instance.ca_bundle: {path} does not exist; point it at the CA "
                              "bundle that signed the server's certificate")
        return str(path)

    def prepare(self) -> dict | None:
        """Make the target reachable (the local target starts its server); returns a status or None."""
        return None

    # -- master credential ---------------------------------------------------------------------------------
    def master_secret(self) -> dict:
        cur = self.store.get(self.config.master_secret_name, CURRENT)
        if cur is None:
            raise SecretStoreError(self._no_master_hint())
        return cur

    def _no_master_hint(self) -> str:
        return (f"no master credential {self.config.master_secret_name} in the secret store; import it with "
                f"`shared-mysql credentials --admin --import < master.json` (RDS secret JSON)")

    def master_password(self) -> str:
        return self.master_secret()["password"]

    def import_master(self, value: dict) -> str | None:
        """Store the master credential (RDS secret JSON, at least username and password) as current, once a login
        with it succeeds. Returns why it could not be verified (server unreachable), or None."""
        check_master_json(value)
        from .db import connect
        from .tenants.model import derived_user_names

        if any(value["username"] in derived_user_names(t) for t in self.config.tenants):
            raise SharedMySQLError(f"master credential: {value['username'][:64]!r} is a tenant's account, not the "
                                   "master; nothing was stored")
        # A real login first: a wrong password stored as current would lock this tool out of the server. A server
        # that cannot be reached (not up yet, another network) cannot say no: stored, and said so.
        unverified = None
        try:
            connect(ConnectionInfo(self.host, self.port, value["username"], value["password"], ca=self.ca)).close()
        except SharedMySQLError as exc:
            why = str(exc).split(": ", 1)[-1]
            if "error 1045" in why or "error 1698" in why:
                raise SharedMySQLError(f"master credential: it does not log in ({why}); nothing was stored") from None
            unverified = why
        # RDS secret JSON: what was given wins; host/port/engine default to this target's.
        full = {"engine": "mysql", "host": self.config.host, "port": self.config.port, "dbname": None, **value}
        tags = {"managed-by": "shared-mysql", "instance": self.config.identifier,
                "environment": self.config.environment, "role": "master"}
        with self.lock(wait=LOCK_WAIT):
            self.store.reload()  # under the lock: what another command wrote before us is kept
            self.store.put_pending({self.config.master_secret_name: (full, tags)})
            self.store.promote([self.config.master_secret_name])
        return unverified

    def import_tenant(self, tenant: str, role: str, value: dict) -> str:
        """Adopt the password a running service already uses: `value` (RDS secret JSON) must log in as the tenant's
        account over verified TLS; it is then stored as the current version, so the next apply keeps it rather
        than setting a new one. Fields this tool does not write are kept. Returns the secret's name."""
        from .db import connect
        from .tenants.model import account_secret, user_fields

        name, problem = account_secret(self.config, self.loaded.path, tenant, role)
        if problem:
            raise SharedMySQLError(problem)
        label = f"credential for tenant {tenant} ({role})"
        check_master_json(value, label)
        if self.config.tenants[tenant].auth == "iam":
            raise SharedMySQLError(f"{label}: tenant {tenant} logs in with IAM tokens, so there is no password to "
                                   "import; set auth: password first")
        with self.executor() as ex:
            flavor = ex.flavor
        desired = self.desired(flavor)
        [acc] = [a for t in desired.tenants if t.name == tenant for a in t.accounts if a.role == role]
        if value["username"] not in acc.names:
            raise SharedMySQLError(f"{label}: username {value['username'][:64]!r} is not the account this config "
                                   f"gives it ({' or '.join(acc.names)}); nothing was stored")
        # A real login, as the service will make it: verified TLS, its own database.
        try:
            conn = connect(ConnectionInfo(self.host, self.port, value["username"], value["password"], ca=self.ca,
                                          database=acc.database))
        except SharedMySQLError as exc:
            why = "access denied (error 1045)" if "error 1045" in str(exc) else str(exc).split(": ", 1)[-1]
            raise SharedMySQLError(f"{label}: the password does not log in as {value['username'][:64]} ({why}); "
                                   "nothing was stored") from None
        conn.close()
        full = {**user_fields(value), **desired.secret_meta[acc.secret], "username": value["username"],
                "password": value["password"]}
        tags = {**desired.tags, "tenant": tenant, "role": role, "rotation": acc.rotation}
        with self.lock(wait=LOCK_WAIT):
            self.store.reload()
            pending = self.store.get(name, PENDING)
            if pending is not None and pending.get("password") != value["password"]:
                raise SharedMySQLError(f"{label}: a rotation of {name} is in flight (a pending password for "
                                       f"{str(pending.get('username'))[:64]}); run `shared-mysql rotate {tenant}"
                                       f"{' --user readonly' if role == 'readonly' else ''}` to finish it first; "
                                       "nothing was stored")
            self.store.put_pending({name: (full, tags)})
            self.store.promote([name])
        return name

    @contextmanager
    def server_lock(self, ex, wait: float = 0.0, what: str = "apply"):
        """One operator at a time across machines: a lock held by the admin session on the server itself
        (GET_LOCK; released with the session, so a killed command never leaves it behind), under a name tenants
        cannot guess (_meta). Fails after `wait` seconds with one line naming the holder: the operator's machine
        user and host, the command, since when, and the session."""
        from .db import OPERATOR_ATTRS, set_operator
        from .sql.quoting import string
        from .tenants.model import META_DATABASE

        if not OPERATOR_ATTRS:  # a library caller: the CLI sets its command line
            set_operator(f"shared-mysql {what}")
        salt = _meta(ex)
        name = (f"shared-mysql:{salt}" if salt else f"shared-mysql:{self.config.identifier}")[:64]
        got = ex.query(f"SELECT GET_LOCK({string(name)}, {max(0, int(wait))})")[0][0]
        if got != 1:
            raise SharedMySQLError(f"another shared-mysql command is changing {self.config.identifier}"
                                   f"{_server_lock_holder(ex, name, bool(salt))}; {what} waited {int(wait)} s "
                                   "(--lock-timeout); re-run when it is done")
        try:
            if salt:
                who = f"{OPERATOR_ATTRS.get('os_user', '?')}@{OPERATOR_ATTRS.get('os_host', '?')}"
                ex.query(f"UPDATE `{META_DATABASE}`.operator_lock SET conn = CONNECTION_ID(), holder = "
                         f"{string(who[:255])}, command = {string(OPERATOR_ATTRS.get('command', what)[:255])}, "
                         "since = UTC_TIMESTAMP() WHERE id = 1")
            yield
        finally:
            try:
                ex.query(f"SELECT RELEASE_LOCK({string(name)})")
            except SharedMySQLError:
                pass  # the session is gone, and the lock with it

    def rotate(self, selection, *, master: bool = False, due: bool = False, now: float | None = None,
               force: bool = False, lock_wait: float = 0.0, test_login=None) -> list:
        """Rotate credentials: `selection` is [(tenant, role), ...] or "all"; `due` keeps only those older than
        their rotation_days. Returns RotationResult (or RotationError) per account, the master's first."""
        from .rotation import age_days, discard_old_passwords, rotate_accounts, rotate_master

        now = time.time() if now is None else now
        out: list = []
        with self.lock(wait=lock_wait):
            with self.executor() as ex:
                with self.server_lock(ex, lock_wait, "rotate"):
                    finished = getattr(self, "finished_master_rotation", None)
                    if master and finished is not None:
                        out.append(finished)  # connecting finished a killed master rotation: that was this one
                    elif master:
                        out.append(rotate_master(self, ex, now=now, test_login=test_login))
                    from .tenants import blocks

                    blocked = blocks.read(ex)
                    # --all/--due leave blocked tenants out: the CLI says which, and why
                    self.rotation_skipped = ({k: v for k, v in sorted(blocked.items()) if k in self.config.tenants}
                                             if selection == "all" else {})
                    named = sorted({t for t, _ in selection if t in blocked}) if selection != "all" else []
                    if named:  # a rotation unlocks the twin it makes current: it would lift the block
                        raise SharedMySQLError(f"tenant {named[0]} is blocked ({blocked[named[0]]['reason']}); its "
                                               "accounts stay locked until that is resolved, so it is not rotated")
                    desired = self.desired(ex.flavor, frozenset(blocked))
                    # --all/--due: IAM accounts have no password to rotate and are left out; named, they fail.
                    # Blocked tenants (an unverified refresh) are left out too.
                    accounts = [a for t in desired.tenants for a in t.accounts
                                if (selection == "all" and a.auth != "iam" and a.tenant not in blocked) or
                                (selection != "all" and (a.tenant, a.role) in selection)]
                    if due:
                        self.store.reload()
                        names = self.store.names()  # once, not once per account
                        # Due, or a rotation of it was interrupted (a pending version waits): cron finishes it.
                        accounts = [a for a in accounts if a.auth != "iam" and
                                    ((age_days(self.store, a.secret, now, names) or 0.0) >= a.rotation_days or
                                     PENDING in names.get(a.secret, {}).get("stages", ()))]
                    if accounts:
                        out += rotate_accounts(self, ex, desired, accounts, now=now, force=force,
                                               test_login=test_login)
                    discard_old_passwords(ex, desired, self.store, now)
                    self._sync_exports(desired)
        return out

    def _sync_exports(self, desired) -> None:
        """Exports follow what rotation changed (the published username of an alternating account)."""
        from .exports import owns_instance_level, plan_exports

        self.store.reload()
        want, have = self._exports_state(desired)
        actions = plan_exports(want, have, self.config.exports_prefix, owns_instance_level(self.config))
        put = {a.detail["name"]: a.detail["value"] for a in actions
               if a.kind == "put_export" and a.detail["value"] is not None}
        if put:
            self.exports.write(put, [])

    def admin_info(self, read_timeout: float | None = None) -> ConnectionInfo:
        m = self.master_secret()
        user = m.get("username") or self.config.instance.master_username
        return ConnectionInfo(self.host, self.port, user, m["password"], ca=self.ca, read_timeout=read_timeout)

    def executor(self, read_timeout: float | None = None) -> PyMySQLExecutor:
        try:
            return PyMySQLExecutor.open(self.admin_info(read_timeout))
        except ServerError as exc:
            if "error 1045" not in str(exc):
                raise
            ex = self._finish_master_rotation()
            if ex is None:
                raise
            return ex

    def _finish_master_rotation(self) -> PyMySQLExecutor | None:
        """The current master password is refused, and a pending one waits: a master rotation was killed after
        its ALTER USER. A login with the pending password proves it; it then becomes current (finishSecret)."""
        name = self.config.master_secret_name
        pending = self.store.get(name, PENDING)
        if not pending or not pending.get("password"):
            return None
        user = pending.get("username") or self.config.instance.master_username
        try:
            ex = PyMySQLExecutor.open(ConnectionInfo(self.host, self.port, user, pending["password"], ca=self.ca))
        except ServerError:
            return None
        with self.lock(wait=LOCK_WAIT):
            self.store.reload()
            if self.store.get(name, PENDING) == pending:
                from .rotation import ROTATED_AT, RotationResult

                old, new = self.store.version_id(name, CURRENT), self.store.version_id(name, PENDING)
                self.store.promote([name], tags={ROTATED_AT: f"{time.time():.0f}"})
                # `rotate --master` reports this as the rotation it finished, and starts no second one.
                self.finished_master_rotation = RotationResult(None, "master", name, "single", user, user, old, new,
                                                               steps=["testSecret", "finishSecret"], resumed=True)
        return ex

    @contextmanager
    def lock(self, wait: float = 0.0):
        """One state-writing command at a time per instance from this checkout (apply, up, local up/down,
        credentials --import). Re-entrant within a process; `wait` seconds before giving up (0: fail at once,
        as Terraform's default lock timeout does)."""
        held = _HELD.get(self.state_dir)
        if held:
            _HELD[self.state_dir] = held + 1
            try:
                yield
            finally:
                _HELD[self.state_dir] -= 1
            return
        private_dirs(self.state_dir)
        check_owned_dirs(self.state_dir)
        path = self.state_dir / "apply.lock"
        try:
            # Never through a symlink, and only a regular file of ours: a planted link made root truncate and
            # overwrite whatever it pointed to.
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SharedMySQLError(f"cannot open the lock {path}: {exc.strerror}; remove it and re-run") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            raise SharedMySQLError(f"{path}: not a regular file of this user (uid {os.geteuid()}); remove it and "
                                   "re-run")
        try:
            if not flock_within(fd, wait):
                raise SharedMySQLError(
                    f"another shared-mysql command{_lock_holder(path)} is changing {self.config.identifier} "
                    f"(lock {path}); wait for it to finish, then re-run"
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {' '.join(sys.argv[1:3])}\n".encode(), 0)
            _HELD[self.state_dir] = 1
            try:
                yield
            finally:
                _HELD.pop(self.state_dir, None)
        finally:
            os.close(fd)

    # -- tenants -------------------------------------------------------------------------------------------
    def desired(self, flavor, blocked: frozenset[str] = frozenset()):
        from .tenants import build_desired

        extra = {}
        admins: tuple[str, ...] = ()
        try:  # the master account as the store knows it (it may differ from instance.master_username)
            name = self.master_secret().get("username")
            admins = (name,) if isinstance(name, str) and name else ()
        except SharedMySQLError:
            pass
        if self.config.secrets_backend == "aws":
            # Secrets Manager's multi-user rotation finds the master credential through `masterarn`.
            arn = self.store.reference(self.config.master_secret_name)
            if arn:
                extra["masterarn"] = arn
        # Only the local target's CA is ours to publish; elsewhere the bundle path is the operator's, and
        # clients take the CA from their config, ca= or $SHARED_MYSQL_CA_BUNDLE.
        ca = self.ca if self.kind == "local" else None
        if self.proxy_endpoint:  # the client's connect(via="proxy") and `credentials` read it from the secret
            extra["proxy_host"] = self.proxy_endpoint
        return build_desired(self.config, flavor, host=self.host, port=self.port, ca=ca, extra_meta=extra,
                             admin_users=admins, rotation_function=self.rotation_function, blocked=blocked)

    @cached_property
    def proxy_endpoint(self) -> str | None:
        """instance.proxy_endpoint, else the RDS Proxy's (aws, enable_rds_proxy); None without a proxy."""
        from .proxy import endpoint

        return endpoint(self.config)

    @cached_property
    def rotation_function(self) -> str | None:
        """secrets.rotation_schedule: the rotation function's ARN, configured or the one the infra stack exported
        to SSM ({exports prefix}/rotation-function-arn)."""
        s = self.config.secrets
        if not s.rotation_schedule:
            return None
        if s.rotation_function_arn:
            return s.rotation_function_arn
        from .aws import client_for, describe_error, error_code

        name = f"{self.config.exports_prefix}/{ROTATION_FUNCTION_PARAMETER}"
        try:
            value = client_for(self.config, "ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except Exception as exc:  # noqa: BLE001 - botocore errors, translated
            why = "not found" if error_code(exc) == "ParameterNotFound" else describe_error(exc)
            raise SharedMySQLError(
                f"secrets.rotation_schedule: cannot read the rotation function's ARN from SSM {name} ({why}); deploy "
                "the infra stack with secrets.rotation_schedule on (it exports it), or set "
                "secrets.rotation_function_arn") from None
        if not re.fullmatch(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?",
                            value):
            raise SharedMySQLError(f"SSM {name}: {value[:80]!r} is not a Lambda function ARN; redeploy the infra "
                                   "stack, or set secrets.rotation_function_arn")
        return value

    def plan(self, ex):
        """Tenants (server + store) and exports, diffed into one Plan."""
        from dataclasses import replace

        from .exports import owns_instance_level, plan_exports, unmanaged
        from .tenants import build_plan, inspect_secrets
        from .tenants import blocks
        from .tenants.inspect import start_inspect

        self.store.reload()
        blocked = frozenset(blocks.read(ex))  # tenants kept locked (an unverified refresh)
        # The server's reads run on a thread while the store, the config and the exports are read here.
        reading = start_inspect(ex)
        try:
            desired = self.desired(ex.flavor, blocked)
            want, have = self._exports_state(desired)
            secrets = inspect_secrets(self.store, self.config.identifier)
        except BaseException:
            reading.join()  # the connection is the thread's until it is done
            raise
        actual = reading.result()
        actual.secrets = secrets.secrets
        plan = build_plan(desired, actual)
        prefix, mine = self.config.exports_prefix, owns_instance_level(self.config)
        extra = tuple(plan_exports(want, have, prefix, mine))
        from . import proxy

        if proxy.managed(self.config):
            extra += tuple(proxy.plan_actions(self, desired))
        return replace(plan, actions=plan.actions + extra,
                       unmanaged_exports=tuple(unmanaged(have, prefix))), desired

    def _exports_state(self, desired):
        from .exports import desired_exports

        names = [a.secret for t in desired.tenants for a in t.accounts]
        names += [self.config.master_secret_name, self.config.connection_secret_name]
        refs = {n: self.store.reference(n) for n in names}
        return desired_exports(self, desired, refs, self.active_users(desired)), self.exports.read()

    def active_users(self, desired) -> dict[str, str]:
        """secret name -> the twin its current version names, for alternating accounts (rotation moves it)."""
        out = {}
        for t in desired.tenants:
            for a in t.accounts:
                if a.alt:
                    cur = self.store.get(a.secret)
                    user = cur.get("username") if cur else None
                    if user in a.names:
                        out[a.secret] = user
        return out

    def apply(self, ex, plan, desired, *, allow_destructive: bool = False):
        from .exports import owns_instance_level, plan_exports
        from .tenants import apply_plan

        result = apply_plan(plan, desired, ex, self.store, allow_destructive=allow_destructive)
        # Exports last: secret ARNs are known now. Re-diffed, so a re-run after a crash converges.
        self.store.reload()
        want, have = self._exports_state(desired)
        actions = plan_exports(want, have, self.config.exports_prefix, owns_instance_level(self.config))
        put = {a.detail["name"]: a.detail["value"] for a in actions
               if a.kind == "put_export" and a.detail["value"] is not None}
        delete = [a.detail["name"] for a in actions if a.kind == "delete_export" and allow_destructive]
        if put or delete:
            self.exports.write(put, delete)
        from . import proxy

        if proxy.managed(self.config):
            proxy.apply(self, desired, allow_destructive=allow_destructive)
        return result


class LocalTarget(Target):
    kind = "local"

    @cached_property
    def server(self):
        from .local import LocalServer

        inst = self.config.instance
        return LocalServer(self.state_dir, host=self.host, port=self.port, parameters=inst.parameters,
                           master_username=inst.master_username)

    @property
    def ca(self) -> str:
        return str(self.server.paths.ca)

    def ensure_master_secret(self) -> str:
        """The master password, created (pending, then current) on first use; an interrupted change is finished."""
        name = self.config.master_secret_name
        if self.store.get(name, PENDING) is None and self.store.get(name, CURRENT) is None:
            value = secret_json(engine=self.server.flavor_name, host=self.host, port=self.port,
                                username=self.config.instance.master_username, password=generate_password(),
                                dbname=None, ssl_ca=self.ca)
            tags = {"managed-by": "shared-mysql", "instance": self.config.identifier,
                    "environment": self.config.environment, "role": "master"}
            self.store.put_pending({name: (value, tags)})
        # The server is (re)started with the bootstrap file, which sets the master to this password.
        self.store.promote([name])
        return self.store.get(name, CURRENT)["password"]

    def _no_master_hint(self) -> str:
        return f"no master credential {self.config.master_secret_name} yet; run `shared-mysql local up` first"

    def local_up(self) -> dict:
        _ = self.server.binary  # fail early with the install hint, before touching the store
        self.server.check_state_path()
        private_dirs(self.state_dir)
        # A second `local up` on a fresh directory waits for the first, then finds the server running.
        with self.lock(wait=LOCK_WAIT):
            if self.server.pid() is not None:
                self.server.tidy_running()
                return self.server.status()
            self.store.reload()
            # Only while the server is down: the bootstrap file applies the (possibly new) master password.
            return self.server.up(self.ensure_master_secret())

    def local_down(self) -> bool:
        with self.lock(wait=LOCK_WAIT):
            return self.server.down()

    prepare = local_up

    def executor(self, read_timeout: float | None = None) -> PyMySQLExecutor:
        if not Path(self.ca).exists():
            raise SharedMySQLError(f"{self.ca}: no CA certificate yet; run `shared-mysql local up` first")
        return super().executor(read_timeout)


class ServerTarget(Target):
    kind = "server"


class AwsTarget(Target):
    kind = "aws"

    @cached_property
    def _endpoint(self) -> tuple[str, int]:
        inst = self.config.instance
        if inst.host:
            return inst.host, self.config.port
        from .aws import client_for, describe_error

        try:
            db = client_for(self.config, "rds").describe_db_instances(
                DBInstanceIdentifier=self.config.db_instance_identifier)["DBInstances"][0]
        except Exception as exc:  # noqa: BLE001 - botocore errors, translated
            raise SharedMySQLError(
                f"cannot look up RDS instance {self.config.db_instance_identifier}: {describe_error(exc)}; "
                "set instance.host, or deploy the instance first"
            ) from None
        ep = db.get("Endpoint") or {}
        if not ep.get("Address"):
            raise SharedMySQLError(f"RDS instance {self.config.db_instance_identifier} has no endpoint yet "
                                   f"(status {db.get('DBInstanceStatus')}); wait until it is available")
        return ep["Address"], int(inst.port or ep.get("Port") or 3306)

    @property
    def host(self) -> str:
        return self._endpoint[0]

    @property
    def port(self) -> int:
        return self._endpoint[1]

    def _no_master_hint(self) -> str:
        return (f"no master credential {self.config.master_secret_name} in Secrets Manager; the infra stack "
                "creates it, or import it with `shared-mysql credentials --admin --import < master.json`")


def open_target(loaded: LoadedConfig) -> Target:
    return {"local": LocalTarget, "server": ServerTarget, "aws": AwsTarget}[loaded.config.target](loaded)
