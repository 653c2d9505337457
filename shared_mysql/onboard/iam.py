"""`iam-policy TENANT [--user readonly]`: the least-privilege IAM policy of a service's task role.

  secretsmanager:GetSecretValue on its own secret only (the exact ARN once `apply` created it; before, the name
  with Secrets Manager's 6-character suffix wildcard), kms:Decrypt on the secrets key only when Secrets Manager
  asks for it (kms:ViaService), and rds-db:connect for `auth: iam` tenants on exactly its database user.
"""

from __future__ import annotations

from ..aws import client_for, describe_error
from ..errors import SharedMySQLError, UsageError


def _region(config) -> str:
    """The region every client of this config talks to (aws.region, else boto3's chain, else instance.aws_region):
    the secret, the key and kms:ViaService must all name that one."""
    return client_for(config, "secretsmanager").meta.region_name


def _account(config, arn: str | None) -> str:
    if arn and arn.startswith("arn:") and len(arn.split(":")) > 4 and arn.split(":")[4]:
        return arn.split(":")[4]
    try:
        return client_for(config, "sts").get_caller_identity()["Account"]
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise SharedMySQLError(f"iam-policy: cannot tell the AWS account ({describe_error(exc)}); set AWS "
                               "credentials for it") from None


def _key_arn(config) -> str:
    key = config.secrets.kms_key_id
    if key.startswith("arn:") and ":key/" in key:
        return key
    try:
        return client_for(config, "kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise SharedMySQLError(f"iam-policy: KMS key {key} (secrets.kms_key_id): {describe_error(exc)}; an IAM "
                               "policy needs the key's ARN (an alias does not match kms:Decrypt)") from None


def policy(target, tenant: str, role: str = "app") -> dict:
    from ..tenants.model import USER_SUFFIXES, account_secret

    cfg = target.config
    if cfg.secrets_backend != "aws":
        raise UsageError("iam-policy: the tenants' secrets are in the local file store here (secrets.backend file); "
                         "a task role reads them from Secrets Manager: use secrets.backend aws (target aws)")
    name, problem = account_secret(cfg, target.loaded.path, tenant, role)
    if problem:
        raise UsageError(problem)
    region = _region(cfg)
    arn = target.store.reference(name)
    account = _account(cfg, arn)
    secret_arn = arn or f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????"
    statements = [
        {"Sid": "ReadOwnDatabaseSecret", "Effect": "Allow",
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": [secret_arn]},
        {"Sid": "DecryptThroughSecretsManagerOnly", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": _key_arn(cfg),
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
    ]
    t = cfg.tenants[tenant]
    if t.auth == "iam":
        try:
            db = client_for(cfg, "rds").describe_db_instances(
                DBInstanceIdentifier=cfg.db_instance_identifier)["DBInstances"][0]
        except Exception as exc:  # noqa: BLE001 - botocore errors, translated
            raise SharedMySQLError(f"iam-policy: RDS instance {cfg.db_instance_identifier}: {describe_error(exc)}; "
                                   "rds-db:connect names the instance's resource id") from None
        user = f"{tenant}{USER_SUFFIXES[role]}"
        statements.append({"Sid": "ConnectAsItsDatabaseUser", "Effect": "Allow", "Action": "rds-db:connect",
                           "Resource": f"arn:aws:rds-db:{region}:{account}:dbuser:{db['DbiResourceId']}/{user}"})
    return {"Version": "2012-10-17", "Statement": statements}
