import errno
import json
import logging
import os

import boto3
import pytest
from moto import mock_aws

from shared_mysql.exports import managed, plan_exports, unmanaged
from shared_mysql.exports.files import FileExports
from shared_mysql.exports.ssm import SsmExports

P = "/shared/rds/dev"


def test_plan_exports_diff():
    want = {f"{P}/endpoint": "h2", f"{P}/port": "3306", f"{P}/tenants/a/secret-arn": None,
            f"{P}/tenants/b/username": "b_user"}
    have = {f"{P}/endpoint": "h1", f"{P}/port": "3306", f"{P}/tenants/b/username": "b_user",
            f"{P}/tenants/gone/username": "gone_user", f"{P}/someone-elses": "x"}
    acts = plan_exports(want, have, P)
    assert [(a.kind, a.op, a.detail["name"]) for a in acts] == [
        ("put_export", "update", f"{P}/endpoint"),
        ("put_export", "create", f"{P}/tenants/a/secret-arn"),
        ("delete_export", "delete", f"{P}/tenants/gone/username"),
    ]
    assert acts[1].detail["value"] is None  # known after apply
    assert acts[2].tenant == "gone" and acts[2].destructive


def test_managed_names():
    assert managed(f"{P}/endpoint", P) and managed(f"{P}/tenants/x/username", P)
    assert not managed(f"{P}/other", P) and not managed("/shared/rds/devx/endpoint", P)
    # on AWS the infrastructure layer owns the instance-level names: never deleted by the CLI
    assert not managed(f"{P}/endpoint", P, instance_level=False)
    acts = plan_exports({}, {f"{P}/endpoint": "h", f"{P}/tenants/x/username": "x_user"}, P, instance_level=False)
    assert [a.detail["name"] for a in acts] == [f"{P}/tenants/x/username"]
    assert unmanaged([f"{P}/endpoint", f"{P}/other", f"{P}/tenants/x/username"], P) == [f"{P}/other"]


def test_files_backend_writes_parameters_and_env(tmp_path):
    f = FileExports(tmp_path / "exports", P)
    f.write({f"{P}/endpoint": "127.0.0.1", f"{P}/port": "13306", f"{P}/tenants/a/database-name": "a_db",
             f"{P}/tenants/a/username": "a_user", f"{P}/tenants/a/secret-arn": "dev-a-db-credentials"}, [])
    assert f.read()[f"{P}/port"] == "13306"
    env = (tmp_path / "exports" / "a.env").read_text()
    assert env == ("DB_HOST=127.0.0.1\nDB_PORT=13306\nDB_NAME=a_db\nDB_USERNAME=a_user\n"
                   "DB_SECRET_ARN=dev-a-db-credentials\n")
    f.write({}, [f"{P}/tenants/a/database-name", f"{P}/tenants/a/username", f"{P}/tenants/a/secret-arn"])
    assert not (tmp_path / "exports" / "a.env").exists()


@pytest.fixture
def ssm(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("ssm", region_name="ap-northeast-2")


def test_ssm_backend_round_trip_with_pagination(ssm):
    e = SsmExports(ssm, P, tags={"managed-by": "shared-mysql"})
    values = {f"{P}/tenants/t{i:02d}/username": f"t{i:02d}_user" for i in range(25)}
    e.write({**values, f"{P}/endpoint": "db.example"}, [])
    assert e.read() == {**values, f"{P}/endpoint": "db.example"}
    e.write({f"{P}/endpoint": "db2.example"}, [f"{P}/tenants/t{i:02d}/username" for i in range(12)])
    got = e.read()
    assert got[f"{P}/endpoint"] == "db2.example" and len(got) == 14
    p = ssm.get_parameter(Name=f"{P}/endpoint")["Parameter"]
    assert p["Type"] == "String"
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{P}/tenants/t20/username")["TagList"]
    assert {"Key": "managed-by", "Value": "shared-mysql"} in tags


def test_botocore_parameter_errors_never_echo_values():
    from botocore.exceptions import ParamValidationError

    from shared_mysql.aws import describe_error

    exc = ParamValidationError(report="Invalid type for parameter SecretString, value: hunter2-SECRET")
    assert "hunter2" not in describe_error(exc) and "ParamValidationError" in describe_error(exc)


def test_unparsable_responses_never_echo_the_body_and_errors_are_one_line():
    """A response botocore cannot parse is quoted whole in its message: for Secrets Manager, a secret value."""
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    from shared_mysql.aws import describe_error

    exc = ResponseParserError('Unable to parse response, invalid JSON received:\nb\'{"SecretString": "hunter2"\'')
    assert "hunter2" not in describe_error(exc) and "\n" not in describe_error(exc)
    exc = ClientError({"Error": {"Code": "X", "Message": "line one\nline two " + "y" * 500}}, "Op")
    assert "\n" not in describe_error(exc) and len(describe_error(exc)) <= 300


# -- files backend: read() reports what exists, not what was meant ---------------------------------------
TENANT = {"database-name": "a_db", "username": "a_user", "secret-arn": "dev-a-db-credentials"}
A_ENV = "DB_HOST=127.0.0.1\nDB_PORT=13306\nDB_NAME=a_db\nDB_USERNAME=a_user\nDB_SECRET_ARN=dev-a-db-credentials\n"


def _want(*tenants):
    out = {f"{P}/endpoint": "127.0.0.1", f"{P}/port": "13306"}
    for t in tenants:
        out.update({f"{P}/tenants/{t}/{k}": v.replace("a_", f"{t}_").replace("-a-", f"-{t}-")
                    for k, v in TENANT.items()})
    return out


def _converge(f, want):
    """What apply does: diff want against read(), write the puts; returns the names that were put."""
    acts = plan_exports(want, f.read(), P)
    put = {a.detail["name"]: a.detail["value"] for a in acts if a.kind == "put_export"}
    if put:
        f.write(put, [])
    return sorted(put)


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_files_backend_converges_and_is_then_idempotent(tmp_path):
    f = FileExports(tmp_path / "exports", P)
    assert _converge(f, _want("a", "b")) == sorted(_want("a", "b"))
    assert f.read() == _want("a", "b") and _converge(f, _want("a", "b")) == []
    assert _files(tmp_path / "exports") == ["a.env", "b.env", "parameters.json"]


@pytest.mark.parametrize("damage", [
    pytest.param(lambda env: env.unlink(), id="env-missing"),
    pytest.param(lambda env: env.write_text(A_ENV.replace("13306", "3306")), id="env-stale"),
    pytest.param(lambda env: env.write_text(A_ENV[:20]), id="env-truncated"),
    pytest.param(lambda env: (env.unlink(), os.mkfifo(env)), id="env-is-a-fifo"),
    pytest.param(lambda env: (env.unlink(), env.symlink_to(env.parent.parent / "elsewhere")), id="env-is-a-symlink"),
])
def test_a_missing_or_stale_env_file_is_planned_again(tmp_path, damage):
    """Regression: a `.env` whose write failed (disk full) was never rewritten, because plan compared the config
    with parameters.json (what was meant to be written), not with the files that exist."""
    (tmp_path / "elsewhere").write_text("not ours\n")
    f = FileExports(tmp_path / "exports", P)
    _converge(f, _want("a", "b"))
    damage(tmp_path / "exports" / "a.env")
    have = f.read()
    assert have == {n: v for n, v in _want("a", "b").items() if "/tenants/a/" not in n}  # b is untouched
    assert _converge(f, _want("a", "b")) == sorted(n for n in _want("a") if "/tenants/a/" in n)
    assert (tmp_path / "exports" / "a.env").read_text() == A_ENV
    assert not (tmp_path / "exports" / "a.env").is_symlink()
    assert (tmp_path / "elsewhere").read_text() == "not ours\n"  # a symlink is replaced, never written through
    assert f.read() == _want("a", "b") and _converge(f, _want("a", "b")) == []


def _same_size_edit_with_old_times(env):
    st = env.stat()
    with open(env, "r+b") as fh:  # in place: same inode, same size
        fh.seek(st.st_size - 3)
        fh.write(b"XY\n")
    os.utime(env, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime set back; ctime cannot be


@pytest.mark.parametrize("damage", [
    pytest.param(lambda env: env.unlink(), id="env-missing"),
    pytest.param(lambda env: env.write_text(A_ENV.replace("13306", "03306")), id="env-rewritten-same-size"),
    pytest.param(_same_size_edit_with_old_times, id="env-edited-in-place-times-restored"),
    pytest.param(lambda env: (env.unlink(), env.symlink_to(env.parent.parent / "elsewhere")), id="env-is-a-symlink"),
    pytest.param(lambda env: (env.unlink(), os.mkfifo(env)), id="env-is-a-fifo"),
])
def test_the_stat_index_skips_reading_unchanged_env_files_and_never_hides_a_changed_one(tmp_path, monkeypatch,
                                                                                         damage):
    import time

    import shared_mysql.exports.files as files_mod

    (tmp_path / "elsewhere").write_text(A_ENV)  # a symlink to the right content is still refused
    f = FileExports(tmp_path / "exports", P)
    _converge(f, _want("a", "b"))
    time.sleep(0.15)  # older than the racy window: the next read may remember them
    assert f.read() == _want("a", "b")
    index = json.loads((tmp_path / files_mod.INDEX_NAME).read_text())
    assert sorted(index["files"]) == ["a", "b"] and index["params"]

    reads = []
    real = files_mod.read_regular
    monkeypatch.setattr(files_mod, "read_regular", lambda path: (reads.append(path.name), real(path))[1])
    assert f.read() == _want("a", "b")
    assert reads == ["exports-index.json", "parameters.json"]  # no .env read: lstat and the index answered

    damage(tmp_path / "exports" / "a.env")
    assert f.read() == {n: v for n, v in _want("a", "b").items() if "/tenants/a/" not in n}
    assert _converge(f, _want("a", "b")) == sorted(n for n in _want("a") if "/tenants/a/" in n)
    assert (tmp_path / "exports" / "a.env").read_text() == A_ENV
    assert f.read() == _want("a", "b")


def test_a_corrupt_index_or_parameters_edit_falls_back_to_full_checks(tmp_path):
    import time

    import shared_mysql.exports.files as files_mod

    f = FileExports(tmp_path / "exports", P)
    _converge(f, _want("a"))
    time.sleep(0.15)
    f.read()
    (tmp_path / files_mod.INDEX_NAME).write_text("{not json")
    assert f.read() == _want("a")
    # parameters.json edited by hand (the port): a.env no longer holds what it derives, whatever its lstat says.
    time.sleep(0.15)
    f.read()
    f.path.write_text(json.dumps({**_want("a"), f"{P}/port": "3307"}))
    assert f.read() == {n: v for n, v in _want("a").items() if "/tenants/a/" not in n} | {f"{P}/port": "3307"}
    # A hostile entry added by hand changes the bytes: the entries are checked again and it is skipped.
    f.path.write_text(json.dumps({**_want("a"), **HOSTILE}))
    assert f.read() == _want("a")


def test_env_files_are_written_before_parameters_json(tmp_path, monkeypatch):
    import shared_mysql.exports.files as files_mod
    from shared_mysql.errors import StateError
    from shared_mysql.secrets.file import write_private

    order = []

    def recording(path, data, **kw):
        order.append(path.name)
        write_private(path, data, **kw)

    monkeypatch.setattr(files_mod, "write_private", recording)
    f = FileExports(tmp_path / "exports", P)
    _converge(f, _want("a", "b"))
    assert order == ["a.env", "b.env", "parameters.json"]

    real_replace = os.replace

    def full_at_parameters_json(src, dst):
        if str(dst).endswith("parameters.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_at_parameters_json)
    with pytest.raises(StateError) as err:
        _converge(f, _want("a", "b", "c"))  # c.env is written, parameters.json (the commit) fails
    assert str(err.value) == (f"cannot write {f.path}: No space left on device; free space and re-run "
                              "(the file was not changed)")
    monkeypatch.undo()
    assert (tmp_path / "exports" / "c.env").exists() and f.read() == _want("a", "b")  # not committed
    assert _converge(f, _want("a", "b", "c")) == sorted(n for n in _want("c") if "/tenants/c/" in n)
    assert f.read() == _want("a", "b", "c")


def test_a_failed_env_write_is_one_line_and_commits_nothing(tmp_path, monkeypatch):
    from shared_mysql.errors import StateError

    f = FileExports(tmp_path / "exports", P)
    _converge(f, _want("a"))
    before = f.path.read_bytes()
    real_replace = os.replace

    def full_at_b_env(src, dst):
        if str(dst).endswith("b.env"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_at_b_env)
    with pytest.raises(StateError, match=f"^cannot write {tmp_path / 'exports' / 'b.env'}: No space left on device"):
        _converge(f, _want("a", "b"))
    monkeypatch.undo()
    assert f.path.read_bytes() == before and f.read() == _want("a")
    assert _files(tmp_path / "exports") == ["a.env", "parameters.json"]  # no temp file left behind
    _converge(f, _want("a", "b"))
    assert f.read() == _want("a", "b")


@pytest.mark.parametrize("content", [
    pytest.param(b"", id="empty"),
    pytest.param(b'{"/shared/rds/dev/endpoint": "127.0.0.1", ', id="truncated"),
    pytest.param(b"\xff\xfe\x00", id="not-utf8"),
    pytest.param(b"[1, 2]", id="a-list"),
    pytest.param(b'"a string"', id="a-string"),
    pytest.param(b'{"/shared/rds/dev/port": 13306}', id="a-number-value"),
    pytest.param(b'{"/shared/rds/dev/tenants/a/username": null}', id="a-null-value"),
])
def test_a_corrupt_parameters_json_reads_as_absent_and_is_rewritten(tmp_path, caplog, content):
    f = FileExports(tmp_path / "exports", P)
    _converge(f, _want("a"))
    f.path.write_bytes(content)
    with caplog.at_level(logging.DEBUG, logger="shared_mysql.exports"):
        assert f.read() == {}
    assert f"{f.path} is not a JSON object of strings" in caplog.text
    assert _converge(f, _want("a")) == sorted(_want("a"))  # the plan shows them all, apply rewrites it
    assert f.read() == _want("a") and json.loads(f.path.read_text()) == _want("a")


def test_an_unreadable_parameters_json_is_one_line(tmp_path):
    from shared_mysql.errors import StateError

    f = FileExports(tmp_path / "exports", P)
    f.path.mkdir(parents=True)  # something that is not a file where parameters.json should be
    with pytest.raises(StateError, match=f"^cannot read {f.path}: not a regular file; "):
        f.read()


HOSTILE = {
    f"{P}/tenants/../../../../tmp/pwn/username": "x_user",  # a file outside the exports dir
    f"{P}/tenants/../secret-arn": "x",
    f"{P}/tenants/a/../../b/username": "x_user",
    f"{P}/tenants/evil\nDB_HOST=attacker/username": "x_user",  # a forged line in a .env or a plan
    f"{P}/tenants/Evil/username": "x_user",
    f"{P}/tenants/e": "no key",
    f"{P}/tenants/b/username": "b_user\nDB_HOST=attacker.example",
    f"{P}/tenants/b/secret-arn": "$(touch /tmp/pwned)",  # run by `set -a; . ./b.env`
    f"{P}/tenants/b/database-name": "b_db # comment",
    f"{P}/tenants/b/x\ny": "z",
    f"{P}/other\n+ export forged": "v",  # an unmanaged name, listed by the plan
    f"{P}/someone-elses": "line1\nline2",
}


def test_hostile_entries_in_parameters_json_are_skipped(tmp_path, caplog):
    f = FileExports(tmp_path / "exports", P)
    _converge(f, _want("a"))
    f.path.write_text(json.dumps({**_want("a"), **HOSTILE, f"{P}/someone-elses-ok": "kept"}))
    (tmp_path / "exports" / "a.env").write_text(A_ENV)
    with caplog.at_level(logging.DEBUG, logger="shared_mysql.exports"):
        have = f.read()
    assert have == {**_want("a"), f"{P}/someone-elses-ok": "kept"}
    assert "skipping entry" in caplog.text
    assert _converge(f, _want("a", "b")) == sorted(n for n in _want("b") if "/tenants/b/" in n)
    # (exports-index.json, a cache beside the directory, may or may not be there yet)
    assert [f for f in _files(tmp_path) if f != "exports-index.json"] == \
        ["exports", "exports/a.env", "exports/b.env", "exports/parameters.json"]
    assert (tmp_path / "exports" / "b.env").read_text() == A_ENV.replace("a_", "b_").replace("-a-", "-b-")
    assert json.loads(f.path.read_text()) == {**_want("a", "b"), f"{P}/someone-elses-ok": "kept"}
    assert not os.path.exists("/tmp/pwned")


@pytest.mark.parametrize("name, value", [
    (f"{P}/endpoint", "db.example\nDB_PASSWORD=x"),
    (f"{P}/endpoint", "db example"),
    (f"{P}/tenants/a/username", "`id`"),
    (f"{P}/tenants/a/../../x/username", "x"),
    (f"{P}/tenants/a/readonly-username", "ro\n"),
])
def test_an_unsafe_value_is_refused_before_anything_is_written(tmp_path, name, value):
    from shared_mysql.errors import ExportsError

    f = FileExports(tmp_path / "exports", P)
    with pytest.raises(ExportsError) as err:
        f.write({**_want("a"), name: value}, [])
    assert str(err.value).startswith(f"cannot export {name!r} to {f.path}: ") and "\n" not in str(err.value)
    assert not (tmp_path / "exports").exists()


def test_only_env_files_we_could_have_made_are_removed(tmp_path):
    f = FileExports(tmp_path / "exports", P)
    _converge(f, _want("a", "b"))
    for other in (".env", "My-App.env", "gone.env"):
        (tmp_path / "exports" / other).write_text("x\n")
    f.write({}, [n for n in _want("b") if "/tenants/b/" in n])
    assert _files(tmp_path / "exports") == [".env", "My-App.env", "a.env", "parameters.json"]
