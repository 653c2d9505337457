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
