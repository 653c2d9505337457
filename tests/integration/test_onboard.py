"""`iam-policy` and `ci-workflow` (issue 14, items 5 and 6): the policy validates as IAM JSON and, enforced by
moto's IAM, reads the tenant's own secret and not another tenant's; the workflow's structure."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from shared_mysql import aws as aws_mod
from shared_mysql.config.load import load_config
from shared_mysql.onboard.iam import policy
from shared_mysql.onboard.workflow import render, workflow
from shared_mysql.target import open_target


@pytest.fixture
def aws_env(fake_aws_env, monkeypatch):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws_mod.session.cache_clear()
    yield
    aws_mod.session.cache_clear()


def config(tmp_path, **tenants):
    doc = {"environment": "prod", "identifier": "shared-mysql", "target": "aws",
           "instance": {"host": "db.example", "ca_bundle": "ca.pem"},
           "tenants": tenants or {"orders": {}, "billing": {}}}
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "shared-mysql.yaml").write_text(yaml.safe_dump(doc))
    return open_target(load_config(tmp_path / "shared-mysql.yaml"))


def _secret_arn_is_the_resource(monkeypatch):
    """moto's IAM checks Secrets Manager calls against Resource "*" only; taught the secret's ARN, its own policy
    evaluator checks the Resource element too (what real IAM does)."""
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.secretsmanager.responses import SecretsManagerResponse

    def resource(self):
        sid = self._get_param("SecretId")
        backend = secretsmanager_backends[self.current_account][self.region]
        try:
            return backend.describe_secret(sid).arn
        except Exception:  # noqa: BLE001 - unknown secret: let the call itself say so
            return "*"

    monkeypatch.setattr(SecretsManagerResponse, "_determine_resource", resource, raising=False)


def test_the_policy_reads_its_own_secret_only(aws_env, tmp_path, monkeypatch):
    _secret_arn_is_the_resource(monkeypatch)

    @set_initial_no_auth_action_count(11)
    @mock_aws
    def run():
        kms = boto3.client("kms")
        key = kms.create_key()["KeyMetadata"]
        kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=key["KeyId"])
        sm = boto3.client("secretsmanager")
        mine = sm.create_secret(Name="prod-orders-db-credentials", SecretString='{"password": "a"}',
                                KmsKeyId=key["Arn"])["ARN"]
        theirs = sm.create_secret(Name="prod-billing-db-credentials", SecretString='{"password": "b"}',
                                  KmsKeyId=key["Arn"])["ARN"]
        t = config(tmp_path)
        doc = policy(t, "orders")
        iam = boto3.client("iam")
        iam.create_user(UserName="orders-task")
        iam.put_user_policy(UserName="orders-task", PolicyName="db", PolicyDocument=json.dumps(doc))
        k = iam.create_access_key(UserName="orders-task")["AccessKey"]
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        ActionAuthenticatorMixin.request_count = settings.INITIAL_NO_AUTH_ACTION_COUNT  # enforced from here on
        as_task = boto3.client("secretsmanager", aws_access_key_id=k["AccessKeyId"],
                               aws_secret_access_key=k["SecretAccessKey"])
        assert json.loads(as_task.get_secret_value(SecretId=mine)["SecretString"]) == {"password": "a"}
        with pytest.raises(Exception) as e:
            as_task.get_secret_value(SecretId=theirs)
        assert "AccessDenied" in str(e.value) or "not authorized" in str(e.value)
        return doc, mine, key["Arn"]

    doc, mine, key_arn = run()
    assert doc["Version"] == "2012-10-17"
    read, decrypt = doc["Statement"]
    assert read["Resource"] == [mine] and read["Action"] == ["secretsmanager:GetSecretValue",
                                                             "secretsmanager:DescribeSecret"]
    assert decrypt == {"Sid": "DecryptThroughSecretsManagerOnly", "Effect": "Allow", "Action": "kms:Decrypt",
                       "Resource": key_arn,
                       "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.ap-northeast-2.amazonaws.com"}}}
    assert "*" not in json.dumps(doc)


@mock_aws
def test_the_policy_validates_as_iam_json_and_names_the_iam_user(aws_env, tmp_path):
    kms = boto3.client("kms")
    kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    boto3.client("rds").create_db_instance(DBInstanceIdentifier="prod-shared-mysql", Engine="mysql",
                                           DBInstanceClass="db.t4g.small", MasterUsername="admin",
                                           MasterUserPassword="x" * 16, AllocatedStorage=30)
    rid = boto3.client("rds").describe_db_instances()["DBInstances"][0]["DbiResourceId"]
    t = config(tmp_path, orders={"auth": "iam", "readonly": True}, billing={})
    for role in ("app", "readonly"):
        doc = policy(t, "orders", role)
        # before apply the secret has no ARN yet: the name with Secrets Manager's 6-character suffix
        name = "prod-orders-db-credentials" if role == "app" else "prod-orders-db-readonly-credentials"
        assert doc["Statement"][0]["Resource"] == [f"arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:"
                                                   f"{name}-??????"]
        user = "orders_user" if role == "app" else "orders_readonly"
        assert doc["Statement"][2] == {"Sid": "ConnectAsItsDatabaseUser", "Effect": "Allow",
                                       "Action": "rds-db:connect",
                                       "Resource": f"arn:aws:rds-db:ap-northeast-2:123456789012:dbuser:{rid}/{user}"}
        # IAM accepts it as a policy document (moto runs IAM's document validation)
        boto3.client("iam").create_policy(PolicyName=f"orders-{role}", PolicyDocument=json.dumps(doc))
    assert len(policy(t, "billing")["Statement"]) == 2  # a password tenant: no rds-db:connect
    with pytest.raises(Exception, match="no read-only account"):
        policy(t, "billing", "readonly")


def test_the_workflow_assumes_a_role_and_never_handles_a_secret(tmp_path):
    t = config(tmp_path, orders={"migrations": {"dir": "db/orders", "table": "schema_version"}})
    text = render(workflow(t, "orders", role_arn="arn:aws:iam::123456789012:role/orders-migrate"))
    doc = yaml.safe_load(text)
    assert doc["on"]["push"]["paths"] == ["db/orders/**"] and doc["on"]["push"]["branches"] == ["main"]
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}
    job = doc["jobs"]["migrate"]
    steps = job["steps"]
    creds = [s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert len(creds) == 1 and creds[0]["with"]["role-to-assume"] == "arn:aws:iam::123456789012:role/orders-migrate"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(creds[0]["with"])
    runs = [s["run"] for s in steps if "run" in s]
    assert runs[-1] == "shared-mysql -c shared-mysql.yaml migrate orders --dir db/orders"
    assert any(r.endswith("--dry-run") for r in runs) and any(" validate " in r for r in runs)
    for bad in ("secrets.", "password", "set-output", "GITHUB_OUTPUT", "add-mask", "upload-artifact",
                "secretsmanager get-secret-value"):
        assert bad not in text
    assert doc["concurrency"] == {"group": "migrate-prod-orders", "cancel-in-progress": False}
    # this very version, with boto3 (review: an unpinned `pip install shared-mysql` in a job holding the role)
    from importlib.metadata import version

    assert f"pip install 'shared-mysql[aws]=={version('shared-mysql')}'" in runs
    with pytest.raises(Exception, match="not a tenant"):
        workflow(t, "nobody")


@pytest.mark.parametrize("kw, fragment", [
    ({"role_arn": "arn:aws:iam::123:role/x"}, "not an IAM role ARN"),
    ({"role_arn": "${{ secrets.AWS_KEY }}"}, "not an IAM role ARN"),
    ({"branch": "main\nrun: curl evil"}, "--branch"),
    ({"config_path": "a.yaml ${{ github.event.issue.title }}"}, "expressions"),
    ({"migrations_dir": "m\nrun: x"}, "expressions"),
    ({"runs_on": "${{ github.event.head_commit.message }}"}, "--runs-on"),
    ({"package": "x ${{ secrets.T }}"}, "--package"),
])
def test_hostile_workflow_inputs_are_refused(tmp_path, kw, fragment):
    t = config(tmp_path, orders={})
    with pytest.raises(Exception, match=fragment):
        workflow(t, "orders", **kw)


def test_paths_with_shell_characters_are_quoted_in_run_lines(tmp_path):
    t = config(tmp_path, orders={})
    doc = yaml.safe_load(render(workflow(t, "orders", migrations_dir="db/it's here; rm -rf ~")))
    runs = [s["run"] for s in doc["jobs"]["migrate"]["steps"] if "run" in s]
    assert runs[-1] == "shared-mysql -c shared-mysql.yaml migrate orders --dir 'db/it'\"'\"'s here; rm -rf ~'"
