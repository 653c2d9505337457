"""The rotation Lambda (issue 8, item 3): Secrets Manager's four events against moto's Secrets Manager and the
real local server; each step retried (Secrets Manager retries), and a failed test leaves AWSCURRENT alone."""

import json
import uuid

import boto3
import pytest
from moto import mock_aws

from shared_mysql.rotation import RotationError, lambda_handler

from .helpers import error_code, login


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="ap-northeast-2")


def mirror(sm, t, name, tags):
    """The local store's secret as Secrets Manager would hold it (with masterarn), tagged as apply tags it."""
    master = sm.create_secret(Name="master", SecretString=json.dumps(t.master_secret()))["ARN"]
    value = {**t.store.get(name), "ssl_ca": t.ca, "masterarn": master}
    arn = sm.create_secret(Name=name, SecretString=json.dumps(value),
                           Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["ARN"]
    return arn, value


def current(sm, arn, stage="AWSCURRENT"):
    return json.loads(sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"])


@pytest.mark.parametrize("role,name", [("app", "test-orders-db-credentials"),
                                       ("readonly", "test-orders-db-readonly-credentials")])
def test_the_four_steps_rotate_to_the_twin_and_retries_are_harmless(instance_factory, aws, role, name):
    inst = instance_factory({"orders": {"max_connections": 3, "readonly": True}})
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    arn, before = mirror(aws, t, name, {"tenant": "orders", "role": role, "rotation": "alternating"})
    token = str(uuid.uuid4())
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        for _ in range(2):  # Secrets Manager retries a step; the second call must change nothing
            lambda_handler({"SecretId": arn, "ClientRequestToken": token, "Step": step})
        if step == "createSecret":
            pending = current(aws, arn, "AWSPENDING")
            assert pending["username"].endswith("_alt") and pending["password"] != before["password"]
    now = current(aws, arn)
    assert now["username"] == before["username"] + "_alt" and now["password"] == pending["password"]
    assert now["masterarn"] == before["masterarn"] and now["dbname"] == "orders_db"  # every other field kept
    login(now).close()
    login(before).close()  # the previous credential keeps working (alternating)
    assert current(aws, arn, "AWSPREVIOUS")["password"] == before["password"]
    tags = {x["Key"]: x["Value"] for x in aws.describe_secret(SecretId=arn)["Tags"]}
    assert "rotated-at" in tags


def test_single_strategy_and_a_failed_test_leaves_current_alone(instance_factory, aws):
    inst = instance_factory({"billing": {"max_connections": 3, "rotation": "single"}})
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    arn, before = mirror(aws, t, "test-billing-db-credentials", {"tenant": "billing", "role": "app",
                                                                 "rotation": "single"})
    token = str(uuid.uuid4())
    lambda_handler({"SecretId": arn, "ClientRequestToken": token, "Step": "createSecret"})
    # setSecret never ran: testSecret fails, and AWSCURRENT still names the working password.
    with pytest.raises(RotationError, match="does not log in"):
        lambda_handler({"SecretId": arn, "ClientRequestToken": token, "Step": "testSecret"})
    assert current(aws, arn) == before
    login(before).close()
    for step in ("setSecret", "testSecret", "finishSecret"):
        lambda_handler({"SecretId": arn, "ClientRequestToken": token, "Step": step})
    now = current(aws, arn)
    assert now["username"] == "billing_user" and now["password"] != before["password"]
    login(now).close()
    assert error_code(lambda: login(before)) == 1045
    with pytest.raises(RotationError, match="not a version"):
        lambda_handler({"SecretId": arn, "ClientRequestToken": str(uuid.uuid4()), "Step": "setSecret"})
