"""Credential rotation in Secrets Manager's four steps, crash-safe, for tenants' accounts and the master.

  createSecret  AWSPENDING gets a new password and the username it belongs to (one durable store write)
  setSecret     the database accepts it (MariaDB gets the hashed form, never the plaintext); skipped when the
                pending credential already logs in, so a re-run never changes a password twice
  testSecret    a real login over verified TLS with the pending credential, into its own database; the app
                account must be able to create a (temporary) table there, the read-only account must not
  finishSecret  AWSPENDING becomes AWSCURRENT, the old current AWSPREVIOUS; the secret is tagged `rotated-at`

A kill -9 anywhere leaves at most a pending version; the next run finds it and finishes that same rotation with the
same password. Strategies (per tenant, `rotation:`):
  alternating    the twin AWSCURRENT does not name gets the new password: the previous credential keeps logging
                 in until the next rotation, so a client holding a cached secret never fails
  dual-password  MySQL 8.0.14+: RETAIN CURRENT PASSWORD, then DISCARD OLD PASSWORD once the grace has passed
  single         one account, one ALTER USER: logins with the old password fail from setSecret on
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from .db import ConnectionInfo, Executor, connect
from .errors import ServerError, SharedMySQLError
from .secrets import CURRENT, PENDING, PREVIOUS
from .sql import Statement, statements as st
from .sql.passwords import generate_password
from .sql.accounts import ROTATION_SUFFIX
from .sql.quoting import as_text as _s, string as quote_string

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
ROTATED_AT = "rotated-at"


class RotationError(SharedMySQLError):
    pass


@dataclass
class RotationResult:
    tenant: str | None  # None: the master
    role: str
    secret: str
    strategy: str
    old_username: str
    new_username: str
    old_version: str | None
    new_version: str | None
    steps: list[str] = field(default_factory=list)  # the steps this run did (a resumed run skips some)
    resumed: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def rotated_at(tags: dict) -> float | None:
    try:
        return float(tags.get(ROTATED_AT, ""))
    except (TypeError, ValueError):
        return None


def age_days(store, name: str, now: float, names: dict | None = None) -> float | None:
    """How old the current credential is: since its last rotation, else since the secret's current version was
    written (None when unknown). `names`: store.names(), read once by a caller asking about many secrets."""
    info = (store.names() if names is None else names).get(name)
    if info is None:
        return None
    when = rotated_at(info["tags"]) or store.created(name, CURRENT)
    return None if when is None else (now - when) / 86400.0


# -- tenants' accounts -----------------------------------------------------------------------------------------
def rotate_accounts(target, ex: Executor, desired, accounts, *, now: float | None = None, force: bool = False,
                    test_login=None, workers: int = 2) -> list[RotationResult | RotationError]:
    """Rotate tenant accounts' credentials, each step as one phase over all of them: one durable store write for
    createSecret, one batch of statements for setSecret, logins in parallel for testSecret, one write for
    finishSecret. An account that cannot be rotated gets a RotationError in its place; the others go on.
    `ex` is the admin connection; `test_login(info)` opens a connection (default: verified TLS)."""
    started = time.monotonic()
    now = time.time() if now is None else now
    store = target.store
    flavor = ex.flavor
    store.reload()
    names = store.names()
    out: dict[str, RotationResult | RotationError] = {}
    todo: list[tuple] = []  # (acc, result, pending value)
    fresh: dict[str, tuple[dict, dict]] = {}
    need = [(acc, _next_user(acc, store.get(acc.secret, CURRENT))) for acc in accounts]
    existing = _existing_accounts(ex, {(user, acc.host) for acc, user in need})
    for acc, new_user in need:
        name = acc.secret
        try:
            cur = _precheck(acc, flavor, store.get(name, CURRENT))
            old_user = cur.get("username") if cur.get("username") in acc.names else acc.user
            res = RotationResult(acc.tenant, acc.role, name, acc.rotation, old_user, new_user,
                                 store.version_id(name, CURRENT), None)
            pending = store.get(name, PENDING)
            if pending is not None:
                if pending.get("username") != new_user or pending.get("password") == cur.get("password"):
                    raise RotationError(f"secret {name}: a pending version from an interrupted apply is waiting; "
                                        "run `shared-mysql apply` (it finishes it), then rotate")
                res.resumed = True
            else:
                last = rotated_at(names.get(name, {}).get("tags", {}))
                if last is not None and now - last < acc.grace_s and not force and acc.rotation != "single":
                    raise RotationError(
                        f"secret {name} was rotated {int((now - last) // 60)} min ago, within its grace period "
                        f"({int(acc.grace_s // 60)} min): clients may still use the previous credential, which a "
                        "second rotation would change; wait, or pass --force")
                if (new_user, acc.host) not in existing:
                    raise RotationError(f"tenant {acc.tenant}: account {new_user}@{acc.host} does not exist yet; run "
                                        "`shared-mysql apply` first (it creates the rotation twins)")
                pending = {**cur, "username": new_user, "password": generate_password()}
                fresh[name] = (pending, {})
                res.steps.append("createSecret")
            todo.append((acc, res, pending))
        except RotationError as exc:
            out[name] = exc
    # 1. createSecret: every new pending version in one durable write (a resumed one keeps its password).
    store.put_pending(fresh)
    for acc, res, _ in todo:
        res.new_version = store.version_id(acc.secret, PENDING)

    login = test_login or connect

    def info(acc, pending) -> ConnectionInfo:
        return ConnectionInfo(target.host, target.port, pending["username"], pending["password"], ca=target.ca,
                              database=acc.database)

    # 2. setSecret: one batch. RETAIN CURRENT PASSWORD twice would drop the old password, so a resumed
    # dual-password rotation whose pending credential already logs in skips it.
    stmts = []
    for acc, res, pending in todo:
        if res.resumed and acc.rotation == "dual-password" and _logs_in(login, info(acc, pending)):
            continue
        stmts += _set_statements(flavor, acc, pending["username"], pending["password"])
        res.steps.append("setSecret")
    failed = ex.execute_many(stmts, keep_going=True)
    # 3. testSecret: real logins, in parallel.
    from concurrent.futures import ThreadPoolExecutor

    def test(item):
        acc, res, pending = item
        try:
            _test(login, info(acc, pending), acc)
            return None
        except RotationError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
        verdicts = list(pool.map(test, todo)) if todo else []
    passed = []
    for (acc, res, pending), err in zip(todo, verdicts):
        if err is not None:
            mine = [f for f in failed if f"'{pending['username']}'@" in f]
            why = f" (setSecret was refused: {mine[0]})" if mine else ""
            out[acc.secret] = RotationError(f"{err}{why}")
        else:
            res.steps.append("testSecret")
            passed.append((acc, res))
    # 4. finishSecret: one write; the old current becomes AWSPREVIOUS (the idle twin's, still logging in).
    store.promote([acc.secret for acc, _ in passed], tags={ROTATED_AT: f"{now:.0f}"})
    for acc, res in passed:
        res.steps.append("finishSecret")
        res.seconds = time.monotonic() - started
        out[acc.secret] = res
    return [out[a.secret] for a in accounts if a.secret in out]


def _next_user(acc, cur: dict | None) -> str:
    if not acc.alt:
        return acc.user
    old = (cur or {}).get("username")
    return acc.user if old == acc.alt else acc.alt


def _precheck(acc, flavor, cur: dict | None) -> dict:
    label = f"{acc.tenant} ({acc.role})"
    if acc.auth == "iam":
        raise RotationError(f"tenant {label} logs in with IAM tokens: there is no password to rotate")
    if acc.rotation == "dual-password" and flavor.is_mariadb:
        raise RotationError(f"tenant {acc.tenant}: rotation: dual-password needs MySQL 8.0.14+ (RETAIN CURRENT "
                            f"PASSWORD); this server is {flavor.label}: use alternating or single")
    if cur is None or not cur.get("password"):
        raise RotationError(f"secret {acc.secret}: no current credential to rotate; run `shared-mysql apply` first")
    return cur


def _existing_accounts(ex: Executor, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    if not wanted:
        return set()
    table = "mysql.global_priv" if ex.flavor.is_mariadb else "mysql.user"
    users = ", ".join(sorted({quote_string(u) for u, _ in wanted}))
    rows = ex.query(f"SELECT User, Host FROM {table} WHERE User IN ({users})")
    return {(_s(u), _s(h)) for u, h in rows} & wanted


def _set_statements(flavor, acc, user: str, password: str) -> list[Statement]:
    if acc.rotation == "dual-password":
        s = st.set_password(flavor, user, acc.host, password)
        return [Statement(s.sql + " RETAIN CURRENT PASSWORD", (s.redacted or s.sql) + " RETAIN CURRENT PASSWORD")]
    out = [st.set_password(flavor, user, acc.host, password)]
    if acc.alt:
        # The twin that becomes current gets the tenant's full limit (and TLS, unlocked) before anyone uses it.
        out.append(st.alter_user_limits(user, acc.host, require_ssl=acc.require_ssl,
                                        max_connections=acc.max_connections, flavor=flavor))
    return out


def _logs_in(login, info: ConnectionInfo) -> bool:
    try:
        conn = login(info)
    except ServerError:
        return False
    conn.close()
    return True


def _test(login, info: ConnectionInfo, acc) -> None:
    """A real login with the pending credential, proving it can use its own database (app) or cannot write
    there (readonly)."""
    import pymysql

    try:
        conn = login(info)
    except ServerError as exc:
        raise RotationError(f"testSecret: the pending credential of {acc.secret} does not log in "
                            f"({str(exc).split(': ', 1)[-1]}); the current one is untouched; re-run rotate") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER(), DATABASE()")
            who, db = cur.fetchone()
            if who != f"{info.user}@{acc.host}" or db != acc.database:
                raise RotationError(f"testSecret: logged in as {who} into {db}, expected {info.user}@{acc.host} "
                                    f"into {acc.database}")
            probe = "CREATE TEMPORARY TABLE `_shared_mysql_rotation_probe` (i INT)"
            if acc.role == "readonly":
                try:
                    cur.execute(probe)
                except pymysql.err.MySQLError:
                    return  # refused, as it must be
                raise RotationError(f"testSecret: the read-only account {info.user} can create tables in "
                                    f"{acc.database}; fix its grants (shared-mysql apply) before rotating")
            try:
                cur.execute(probe)
                cur.execute("DROP TEMPORARY TABLE `_shared_mysql_rotation_probe`")
            except pymysql.err.MySQLError as exc:
                raise RotationError(f"testSecret: {info.user} cannot create a table in {acc.database} (error "
                                    f"{exc.args[0]}); fix its grants (shared-mysql apply) before rotating") from None
    finally:
        conn.close()


def discard_old_passwords(ex: Executor, desired, store, now: float) -> list[str]:
    """dual-password accounts whose grace has passed: DISCARD OLD PASSWORD (MySQL). Returns the accounts."""
    done = []
    if ex.flavor.is_mariadb:
        return done
    names = store.names()
    stmts = []
    for t in desired.tenants:
        for a in t.accounts:
            if a.rotation != "dual-password" or a.auth == "iam":
                continue
            last = rotated_at(names.get(a.secret, {}).get("tags", {}))
            if last is not None and now - last >= a.grace_s:
                stmts.append(Statement(f"ALTER USER {st.account(a.user, a.host)} DISCARD OLD PASSWORD"))
                done.append(a.user)
    ex.execute_many(stmts)  # one batch for all of them
    return done


# -- the master -----------------------------------------------------------------------------------------------
MASTER_WAIT_S = 900.0  # aws: how long rotate --master waits for Secrets Manager or RDS


def rotate_master(target, ex: Executor, *, now: float | None = None, test_login=None, wait_s: float = MASTER_WAIT_S,
                  sleep=time.sleep) -> RotationResult:
    """The master credential. local/server: ALTER USER through the current master login. aws: when Secrets
    Manager rotates the master secret (the infra stack sets that up), RotateSecret and wait until the new version
    logs in; otherwise ModifyDBInstance (MasterUserPassword), wait until the instance is available again and the
    new password logs in. Either way verified by a real login before promotion, and resumable: the pending
    password is stored first. One account: new logins with the old password fail from the change on (only
    operators and this tool log in as the master)."""
    started = time.monotonic()
    now = time.time() if now is None else now
    store = target.store
    name = target.config.master_secret_name
    store.reload()
    cur = store.get(name, CURRENT)
    if cur is None:
        raise RotationError(f"no master credential {name} to rotate")
    user = cur.get("username") or target.config.instance.master_username
    res = RotationResult(None, "master", name, "single", user, user, store.version_id(name, CURRENT), None)
    login = test_login or connect
    if target.kind == "aws":
        scheduled = _master_rotation_function(target, name)
        if scheduled:
            return _rotate_master_by_secrets_manager(target, res, cur, login, wait_s, sleep, started)
    pending = store.get(name, PENDING)
    if pending is not None and pending.get("username", user) == user and pending.get("password"):
        res.resumed = True
    else:
        pending = {**cur, "password": generate_password()}
        store.put_pending({name: (pending, {})})
        res.steps.append("createSecret")
    res.new_version = store.version_id(name, PENDING)
    info = ConnectionInfo(target.host, target.port, user, pending["password"], ca=target.ca)
    # Only a resumed rotation asks whether the server already took the pending password: a fresh one knows it
    # has not, and a probe would be a failed login the server counts (the seed alarms at 10 in 5 minutes).
    if not (res.resumed and _logs_in(login, info)):
        if target.kind == "aws":
            _modify_master_password(target, info, login, wait_s, sleep)
        else:
            host = ex.query("SELECT CURRENT_USER()")[0][0].rpartition("@")[2]
            ex.execute_many([st.set_password(ex.flavor, user, host, pending["password"])])
        res.steps.append("setSecret")
    try:
        login(info).close()
    except ServerError as exc:
        raise RotationError(f"testSecret: the new master password does not log in ({exc}); the store keeps it "
                            "as pending; re-run rotate --master") from None
    res.steps.append("testSecret")
    store.promote([name], tags={ROTATED_AT: f"{now:.0f}"})
    res.steps.append("finishSecret")
    res.seconds = time.monotonic() - started
    return res


def _master_rotation_function(target, name: str) -> str | None:
    """The function Secrets Manager rotates the master secret with, when rotation is on for it."""
    from .aws import client_for, describe_error

    try:
        desc = client_for(target.config, "secretsmanager").describe_secret(SecretId=name)
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise RotationError(f"Secrets Manager DescribeSecret {name}: {describe_error(exc)}") from None
    return desc.get("RotationLambdaARN") if desc.get("RotationEnabled") else None


def _wait_until(check, wait_s: float, sleep, what: str):
    """Poll `check()` (truthy: done) with backoff from 2 s to 15 s until `wait_s` has passed."""
    deadline, pause = time.monotonic() + wait_s, 2.0
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise RotationError(f"{what}: not done after {int(wait_s)} s; re-run rotate --master (it resumes)")
        sleep(pause)
        pause = min(pause * 1.5, 15.0)


def _rotate_master_by_secrets_manager(target, res: RotationResult, cur: dict, login, wait_s, sleep, started):
    """RotateSecret (Secrets Manager runs the master's own rotation function: the four steps), then wait until
    AWSCURRENT is the new version and it logs in. A rotation already under way (AWSPENDING) is waited for, not
    started again."""
    from .aws import client_for, describe_error

    name = target.config.master_secret_name
    sm = client_for(target.config, "secretsmanager")

    def stages() -> dict[str, str]:
        desc = sm.describe_secret(SecretId=name)
        return {st: vid for vid, sts in (desc.get("VersionIdsToStages") or {}).items() for st in sts}

    try:
        token = stages().get(PENDING)
        if token:
            res.resumed = True
        else:
            token = sm.rotate_secret(SecretId=name, RotateImmediately=True)["VersionId"]
            res.steps.append("rotate_secret")
        res.new_version = token
        _wait_until(lambda: stages().get(CURRENT) == token, wait_s, sleep,
                    f"Secrets Manager's rotation of {name} (version {token})")
        new = json.loads(sm.get_secret_value(SecretId=name, VersionStage=CURRENT)["SecretString"])
    except RotationError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise RotationError(f"Secrets Manager rotation of {name}: {describe_error(exc)}") from None
    res.steps.append("wait")
    user = new.get("username") or res.new_username
    info = ConnectionInfo(target.host, target.port, user, new.get("password", ""), ca=target.ca)
    try:
        login(info).close()
    except ServerError as exc:
        raise RotationError(f"testSecret: Secrets Manager made a master password current that does not log in "
                            f"({exc}); check the rotation function's log") from None
    res.steps.append("testSecret")
    res.new_username = user
    target.store.reload()
    res.seconds = time.monotonic() - started
    return res


def _modify_master_password(target, info: ConnectionInfo, login, wait_s: float, sleep) -> None:
    """setSecret on RDS without a rotation function: ModifyDBInstance, then wait until the instance is available
    and the new password logs in (RDS applies it asynchronously)."""
    from .aws import client_for, describe_error

    rds = client_for(target.config, "rds")
    ident = target.config.db_instance_identifier
    try:
        rds.modify_db_instance(DBInstanceIdentifier=ident, MasterUserPassword=info.password, ApplyImmediately=True)

        def ready() -> bool:
            db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
            return db.get("DBInstanceStatus") == "available" and _logs_in(login, info)

        _wait_until(ready, wait_s, sleep, f"RDS ModifyDBInstance {ident} (master password)")
    except RotationError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise RotationError(f"RDS ModifyDBInstance {ident}: {describe_error(exc)}; the store keeps the new "
                            "password as pending; re-run rotate --master") from None


# -- Secrets Manager's rotation Lambda ---------------------------------------------------------------------------
def lambda_handler(event, context=None, *, sm=None, connect_fn=None) -> None:
    """Secrets Manager's rotation contract for a tenant secret: event {SecretId, ClientRequestToken, Step}.

    The secret carries what the function needs: `masterarn` (the master secret, as in AWS's multi-user rotation),
    host, port, dbname, and the tags `rotation` (alternating or single) and `role`. The CA bundle is the secret's
    `ssl_ca` or $SHARED_MYSQL_CA_BUNDLE (the regional RDS bundle packaged with the function). Every step is
    idempotent: Secrets Manager retries steps, and a re-run finds what the last one did."""
    import os

    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    if sm is None:
        import boto3

        sm = boto3.client("secretsmanager")
    login = connect_fn or connect
    desc = sm.describe_secret(SecretId=arn)
    versions = desc.get("VersionIdsToStages") or {}
    stages = versions.get(token)
    if stages is None and step != "createSecret":
        raise RotationError(f"secret {arn}: version {token} is not a version of it")
    if stages is not None and CURRENT in stages:
        return  # already current: this rotation is done
    if stages is not None and PENDING not in stages:
        raise RotationError(f"secret {arn}: version {token} is not AWSPENDING")
    tags = {t["Key"]: t["Value"] for t in desc.get("Tags") or []}
    strategy = tags.get("rotation", "single")
    if strategy == "dual-password":
        raise RotationError(f"secret {arn}: dual-password rotation runs from `shared-mysql rotate`, not the Lambda")

    def value(**kw) -> dict:
        return json.loads(sm.get_secret_value(SecretId=arn, **kw)["SecretString"])

    current = value(VersionStage=CURRENT)
    if step == "createSecret":
        try:
            value(VersionId=token, VersionStage=PENDING)
            return  # a retried createSecret: the pending version exists
        except Exception as exc:  # noqa: BLE001 - botocore's ResourceNotFoundException
            if type(exc).__name__ != "ResourceNotFoundException" and "ResourceNotFound" not in str(exc):
                raise
        user = current["username"]
        if strategy == "alternating":
            user = user[: -len(ROTATION_SUFFIX)] if user.endswith(ROTATION_SUFFIX) else user + ROTATION_SUFFIX
        pending = {**current, "username": user, "password": generate_password()}
        sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending),
                            VersionStages=[PENDING])
        return
    ca = current.get("ssl_ca") or os.environ.get("SHARED_MYSQL_CA_BUNDLE")
    if step in ("setSecret", "testSecret"):
        pending = value(VersionId=token, VersionStage=PENDING)
        info = ConnectionInfo(pending["host"], int(pending["port"]), pending["username"], pending["password"],
                              ca=ca, database=pending.get("dbname"))
        acc = _LambdaAccount(tags.get("tenant", ""), tags.get("role", "app"), pending.get("dbname") or "", arn)
        if step == "setSecret":
            if _logs_in(login, info):
                return  # done by an earlier attempt
            master = json.loads(sm.get_secret_value(SecretId=pending["masterarn"])["SecretString"])
            admin = login(ConnectionInfo(pending["host"], int(pending["port"]), master["username"],
                                         master["password"], ca=ca))
            try:
                _lambda_set(admin, strategy, current["username"], pending["username"], pending["password"])
            finally:
                admin.close()
            return
        _test(login, info, acc)
        return
    if step == "finishSecret":
        now = time.time()
        current_vid = next((v for v, st in versions.items() if CURRENT in st), None)
        sm.tag_resource(SecretId=arn, Tags=[{"Key": ROTATED_AT, "Value": f"{now:.0f}"}])
        sm.update_secret_version_stage(SecretId=arn, VersionStage=CURRENT, MoveToVersionId=token,
                                       RemoveFromVersionId=current_vid)
        return
    raise RotationError(f"unknown rotation step {step!r}")


@dataclass
class _LambdaAccount:
    tenant: str
    role: str
    database: str
    secret: str
    host: str = "%"


def _lambda_set(conn, strategy: str, current_user: str, user: str, password: str) -> None:
    """ALTER USER through the master login; an alternating twin also gets the current twin's limit, TLS and
    an unlocked account before anyone uses it."""
    from .sql import detect_flavor

    flavor = detect_flavor(conn.get_server_info())
    stmts = [st.set_password(flavor, user, "%", password)]
    if strategy == "alternating" and user != current_user:
        with conn.cursor() as cur:
            if flavor.is_mariadb:
                cur.execute("SELECT JSON_VALUE(Priv, '$.max_user_connections') FROM mysql.global_priv "
                            f"WHERE User = {quote_string(current_user)} AND Host = '%'")
            else:
                cur.execute(f"SELECT max_user_connections FROM mysql.user WHERE User = {quote_string(current_user)} "
                            "AND Host = '%'")
            row = cur.fetchone()
        limit = int(row[0]) if row and row[0] is not None else 1
        stmts.append(st.alter_user_limits(user, "%", require_ssl=True, max_connections=max(1, limit), flavor=flavor))
    with conn.cursor() as cur:
        for s in stmts:
            cur.execute(s.sql)


__all__ = ["STEPS", "RotationError", "RotationResult", "rotate_accounts", "rotate_master", "age_days", "lambda_handler",
           "discard_old_passwords", "ROTATION_SUFFIX", "PREVIOUS"]
