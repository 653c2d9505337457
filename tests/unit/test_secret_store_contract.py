"""One contract, every backend: the encrypted file, memory, and Secrets Manager (moto)."""

import json

import boto3
import pytest
from moto import mock_aws

from shared_mysql.secrets import CURRENT, PENDING, PREVIOUS
from shared_mysql.secrets.aws import AwsSecretStore
from shared_mysql.secrets.document import MemorySecretStore
from shared_mysql.secrets.file import FileSecretStore

VALUE = {"engine": "mysql", "host": "h", "port": 3306, "username": "u", "password": "p1", "dbname": "a_db"}


@pytest.fixture
def aws_store(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        kms = boto3.client("kms", region_name="ap-northeast-2")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=key)
        sm = boto3.client("secretsmanager", region_name="ap-northeast-2")
        yield AwsSecretStore(sm, name_prefix="dev-"), sm


@pytest.fixture(params=["memory", "file", "aws"])
def backend(request, tmp_path):
    if request.param == "memory":
        return MemorySecretStore(), None
    if request.param == "file":
        return FileSecretStore(tmp_path / "s.enc", tmp_path / "s.key"), None
    return request.getfixturevalue("aws_store")


def v(pw):
    return {**VALUE, "password": pw}


def test_labels_move_like_secrets_manager(backend):
    store, _ = backend
    store.put_pending({"dev-a-db-credentials": (v("one"), {"tenant": "a", "managed-by": "shared-mysql"})})
    # Secrets Manager makes a secret's first version AWSCURRENT too; every backend does the same.
    assert store.get("dev-a-db-credentials")["password"] == "one"
    assert store.get("dev-a-db-credentials", PENDING)["password"] == "one"
    assert store.names()["dev-a-db-credentials"]["stages"] == [CURRENT, PENDING]
    store.promote(["dev-a-db-credentials"])
    assert store.get("dev-a-db-credentials")["password"] == "one"
    assert store.get("dev-a-db-credentials", PENDING) is None
    for pw in ("two", "three"):
        store.put_pending({"dev-a-db-credentials": (v(pw), {})})
        assert store.get("dev-a-db-credentials")["password"] != pw  # pending is not current yet
        store.promote(["dev-a-db-credentials"])
    store.reload()
    assert store.get("dev-a-db-credentials", CURRENT)["password"] == "three"
    assert store.get("dev-a-db-credentials", PREVIOUS)["password"] == "two"
    assert store.names()["dev-a-db-credentials"] == {"tags": {"tenant": "a", "managed-by": "shared-mysql"},
                                                     "stages": [CURRENT, PREVIOUS]}
    assert store.get_all(CURRENT) == {"dev-a-db-credentials": v("three")}
    assert store.reference("dev-a-db-credentials")


def test_promote_without_pending_is_a_noop_and_repeatable(backend):
    store, _ = backend
    store.put_pending({"dev-b": (v("x"), {})})
    store.promote(["dev-b"])
    store.promote(["dev-b", "dev-missing"])
    assert store.get("dev-b")["password"] == "x"


def test_a_second_pending_replaces_the_first(backend):
    store, _ = backend
    store.put_pending({"dev-c": (v("first"), {})})
    store.put_pending({"dev-c": (v("second"), {})})
    store.promote(["dev-c"])
    assert store.get("dev-c")["password"] == "second"


def test_delete(backend):
    store, _ = backend
    store.put_pending({"dev-d": (v("x"), {})})
    store.promote(["dev-d"])
    store.delete(["dev-d", "dev-never-existed"])
    store.reload()
    assert store.get("dev-d") is None and "dev-d" not in store.names()
    assert store.reference("dev-d") is None


def test_aws_specifics(aws_store):
    store, sm = aws_store
    store.put_pending({"dev-e": (v("x"), {"tenant": "e"})})
    store.promote(["dev-e"])
    d = sm.describe_secret(SecretId="dev-e")
    assert d["KmsKeyId"] == "alias/secrets-manager"
    assert {"Key": "tenant", "Value": "e"} in d["Tags"]
    assert json.loads(sm.get_secret_value(SecretId="dev-e", VersionStage="AWSCURRENT")["SecretString"]) == v("x")
    # deletion keeps the 7-day recovery window; re-adding within it restores the secret
    store.delete(["dev-e"])
    assert sm.describe_secret(SecretId="dev-e").get("DeletedDate")
    store.put_pending({"dev-e": (v("y"), {"tenant": "e"})})
    store.promote(["dev-e"])
    assert store.get("dev-e")["password"] == "y"
    # names outside the prefix are not ours to list
    sm.create_secret(Name="prod-other", SecretString="{}")
    assert "prod-other" not in store.names()
