"""AWS Secrets Manager backend: one secret per account, KMS-encrypted, tagged; labels map 1:1 to AWS's own.

Secrets Manager moves AWSPREVIOUS itself when AWSCURRENT moves; we only move AWSCURRENT to the pending version
and then take AWSPENDING off it. Deleting uses a recovery window (7 days, the seed's), so a removed tenant can be
restored; re-adding a tenant during that window restores its secret.
"""

from __future__ import annotations

import json
import uuid

from ..aws import describe_error, error_code
from ..errors import SecretStoreError
from . import CURRENT, PENDING, SCHEDULE_TAG

BATCH = 20  # BatchGetSecretValue's limit


class AwsSecretStore:
    def __init__(self, sm_client, *, name_prefix: str, kms_key_id: str | None = "alias/secrets-manager",
                 recovery_window_days: int = 7, description: str = "managed by shared-mysql"):
        self.sm = sm_client
        self.name_prefix = name_prefix
        self.kms_key_id = kms_key_id
        self.recovery_window_days = recovery_window_days
        self.description = description
        self._listing: dict[str, dict] | None = None
        self.calls = 0

    def _call(self, what: str, fn, **kw):
        self.calls += 1
        try:
            return fn(**kw)
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            if error_code(exc) is None and exc.__class__.__module__.split(".")[0] not in ("botocore", "boto3"):
                raise
            raise SecretStoreError(f"Secrets Manager {what}: {describe_error(exc)}") from None

    # -- reads ---------------------------------------------------------------------------------------------
    def _list(self) -> dict[str, dict]:
        if self._listing is None:
            out: dict[str, dict] = {}
            token = None
            while True:
                kw = {"Filters": [{"Key": "name", "Values": [self.name_prefix]}], "MaxResults": 100,
                      "IncludePlannedDeletion": False}
                if token:
                    kw["NextToken"] = token
                page = self._call("ListSecrets", self.sm.list_secrets, **kw)
                for s in page.get("SecretList", []):
                    if not s["Name"].startswith(self.name_prefix):
                        continue  # the name filter matches prefixes of words, not only of the whole name
                    stages = {st: vid for vid, sts in (s.get("SecretVersionsToStages") or {}).items() for st in sts}
                    rules = s.get("RotationRules") or {}
                    rotation = ((s.get("RotationLambdaARN") or "", int(rules.get("AutomaticallyAfterDays") or 0))
                                if s.get("RotationEnabled") else None)
                    out[s["Name"]] = {"arn": s["ARN"], "tags": {t["Key"]: t["Value"] for t in s.get("Tags") or []},
                                      "stages": stages, "rotation": rotation}
                token = page.get("NextToken")
                if not token:
                    break
            self._listing = out
        return self._listing

    def reload(self) -> None:
        self._listing = None

    def names(self) -> dict[str, dict]:
        """name -> tags, stages and, when Secrets Manager rotates it on a schedule, (function ARN, days)."""
        return {n: {"tags": dict(s["tags"]), "stages": sorted(s["stages"]),
                    **({"rotation": s["rotation"]} if s.get("rotation") else {})} for n, s in self._list().items()}

    def schedule_rotation(self, name: str, function_arn: str, days: int) -> None:
        """Secrets Manager rotates `name` every `days` through `function_arn`, starting then (not now). AWS checks
        the set-up by running the function's testSecret on a throwaway AWSPENDING copy of the current version,
        which it then removes; a pending left on that copy (moto keeps it) is removed here, or the next `rotate`
        would take it for an interrupted rotation."""
        def pending() -> str | None:
            desc = self._call(f"DescribeSecret {name}", self.sm.describe_secret, SecretId=name)
            return next((v for v, st in (desc.get("VersionIdsToStages") or {}).items() if PENDING in st), None)

        before = pending()
        self._call(f"RotateSecret {name}", self.sm.rotate_secret, SecretId=name, RotationLambdaARN=function_arn,
                   RotationRules={"AutomaticallyAfterDays": int(days)}, RotateImmediately=False)
        self._call(f"TagResource {name}", self.sm.tag_resource, SecretId=name,
                   Tags=[{"Key": SCHEDULE_TAG, "Value": "shared-mysql"}])
        after = pending()
        if after is not None and after != before:
            self._call(f"UpdateSecretVersionStage {name}", self.sm.update_secret_version_stage, SecretId=name,
                       VersionStage=PENDING, RemoveFromVersionId=after)
        self.reload()

    def cancel_rotation(self, name: str) -> None:
        self._call(f"CancelRotateSecret {name}", self.sm.cancel_rotate_secret, SecretId=name)
        self._call(f"UntagResource {name}", self.sm.untag_resource, SecretId=name, TagKeys=[SCHEDULE_TAG])
        self.reload()

    def reference(self, name: str) -> str | None:
        s = self._list().get(name)
        return s["arn"] if s else None

    def version_id(self, name: str, stage: str = CURRENT) -> str | None:
        s = self._list().get(name)
        return s["stages"].get(stage) if s else None

    def created(self, name: str, stage: str = CURRENT) -> float | None:
        vid = self.version_id(name, stage)
        if vid is None:
            return None
        resp = self._call(f"ListSecretVersionIds {name}", self.sm.list_secret_version_ids, SecretId=name)
        for v in resp.get("Versions") or []:
            if v.get("VersionId") == vid and v.get("CreatedDate") is not None:
                return v["CreatedDate"].timestamp()
        return None

    def get(self, name: str, stage: str = CURRENT) -> dict | None:
        try:
            # Always name the stage: a plain read right after a stage move can return the old version.
            resp = self.sm.get_secret_value(SecretId=name, VersionStage=stage)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "ResourceNotFoundException":
                return None
            if error_code(exc) == "InvalidRequestException" and "deleted" in describe_error(exc):
                return None  # scheduled for deletion
            raise SecretStoreError(f"Secrets Manager GetSecretValue {name}: {describe_error(exc)}") from None
        finally:
            self.calls += 1
        return _parse(name, resp.get("SecretString"))

    def get_all(self, stage: str = CURRENT) -> dict[str, dict]:
        listing = self._list()
        names = sorted(n for n, s in listing.items() if stage in s["stages"])
        out: dict[str, dict] = {}
        if stage != CURRENT:
            for n in names:
                v = self.get(n, stage)
                if v is not None:
                    out[n] = v
            return out
        for i in range(0, len(names), BATCH):
            chunk = names[i:i + BATCH]
            resp = self._call("BatchGetSecretValue", self.sm.batch_get_secret_value, SecretIdList=chunk)
            for item in resp.get("SecretValues", []):
                name = item["Name"]
                # Batch reads return AWSCURRENT; guard against a version that is not the one the listing saw.
                if item.get("VersionId") != listing[name]["stages"].get(CURRENT):
                    v = self.get(name, CURRENT)
                else:
                    v = _parse(name, item.get("SecretString"))
                if v is not None:
                    out[name] = v
            for err in resp.get("Errors", []):
                if err.get("ErrorCode") != "ResourceNotFoundException":
                    raise SecretStoreError(f"Secrets Manager BatchGetSecretValue {err.get('SecretId')}: "
                                           f"{err.get('ErrorCode')}: {err.get('Message')}")
        return out

    # -- writes --------------------------------------------------------------------------------------------
    def _ensure(self, name: str, tags: dict, _retry: bool = True) -> None:
        listing = self._list()
        if name in listing:
            missing = {k: v for k, v in tags.items() if listing[name]["tags"].get(k) != v}
            if missing:
                self._call("TagResource", self.sm.tag_resource, SecretId=name,
                           Tags=[{"Key": k, "Value": str(v)} for k, v in missing.items()])
                listing[name]["tags"].update(missing)
            return
        kw = {"Name": name, "Description": self.description, "Tags": [{"Key": k, "Value": str(v)} for k, v in tags.items()]}
        if self.kms_key_id:
            kw["KmsKeyId"] = self.kms_key_id
        try:
            self.calls += 1
            resp = self.sm.create_secret(**kw)
        except Exception as exc:  # noqa: BLE001
            code = error_code(exc)
            if not _retry or code not in ("InvalidRequestException", "ResourceExistsException"):
                raise SecretStoreError(f"Secrets Manager CreateSecret {name}: {describe_error(exc)}") from None
            self.reload()
            if name not in self._list():
                # Scheduled for deletion (a tenant removed within the recovery window): bring it back.
                self._call(f"RestoreSecret {name}", self.sm.restore_secret, SecretId=name)
                self.reload()
            return self._ensure(name, tags, _retry=False)
        listing[name] = {"arn": resp["ARN"], "tags": dict(tags), "stages": {}}

    def put_pending(self, values: dict[str, tuple[dict, dict]]) -> None:
        for name, (value, tags) in values.items():
            self._ensure(name, tags)
            vid = str(uuid.uuid4())
            self._call(f"PutSecretValue {name}", self.sm.put_secret_value, SecretId=name,
                       SecretString=json.dumps(value), VersionStages=[PENDING], ClientRequestToken=vid)
        if values:
            self.reload()  # a secret's first version became AWSCURRENT as well

    def promote(self, names: list[str], tags: dict[str, str] | None = None) -> None:
        listing = self._list()
        for name in names:
            if PENDING not in listing.get(name, {}).get("stages", {}):
                continue
            desc = self._call(f"DescribeSecret {name}", self.sm.describe_secret, SecretId=name)
            stages = {st: vid for vid, sts in (desc.get("VersionIdsToStages") or {}).items() for st in sts}
            pending = stages.get(PENDING)
            if pending is None:
                continue
            if tags:  # before the stages move: a crash in between re-runs the whole step, tags included
                self._call(f"TagResource {name}", self.sm.tag_resource, SecretId=name,
                           Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            current = stages.get(CURRENT)
            if current != pending:
                kw = {"SecretId": name, "VersionStage": CURRENT, "MoveToVersionId": pending}
                if current:
                    kw["RemoveFromVersionId"] = current
                self._call(f"UpdateSecretVersionStage {name}", self.sm.update_secret_version_stage, **kw)
            self._call(f"UpdateSecretVersionStage {name}", self.sm.update_secret_version_stage, SecretId=name,
                       VersionStage=PENDING, RemoveFromVersionId=pending)
        if names:
            self.reload()

    def delete(self, names: list[str]) -> None:
        for name in names:
            try:
                self.calls += 1
                self.sm.delete_secret(SecretId=name, RecoveryWindowInDays=self.recovery_window_days)
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) not in ("ResourceNotFoundException",):
                    raise SecretStoreError(f"Secrets Manager DeleteSecret {name}: {describe_error(exc)}") from None
        if names:
            self.reload()


def _parse(name: str, text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise SecretStoreError(f"secret {name}: not JSON; expected the RDS secret format "
                               "(engine, host, port, username, password, dbname)") from None
    if not isinstance(value, dict):
        raise SecretStoreError(f"secret {name}: expected a JSON object in the RDS secret format")
    return value
