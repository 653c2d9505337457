"""Exports in SSM Parameter Store (String parameters; never a password)."""

from __future__ import annotations

from ..aws import describe_error, error_code
from ..errors import SharedMySQLError


class SsmExports:
    def __init__(self, ssm_client, prefix: str, tags: dict[str, str] | None = None):
        self.ssm = ssm_client
        self.prefix = prefix
        self.tags = tags or {}
        self.calls = 0

    def _call(self, what: str, fn, **kw):
        self.calls += 1
        try:
            return fn(**kw)
        except Exception as exc:  # noqa: BLE001 - botocore errors, translated
            raise SharedMySQLError(f"SSM {what}: {describe_error(exc)}") from None

    def read(self) -> dict[str, str]:
        out: dict[str, str] = {}
        token = None
        while True:
            kw = {"Path": self.prefix, "Recursive": True, "MaxResults": 10}
            if token:
                kw["NextToken"] = token
            page = self._call("GetParametersByPath", self.ssm.get_parameters_by_path, **kw)
            for p in page.get("Parameters", []):
                out[p["Name"]] = p["Value"]
            token = page.get("NextToken")
            if not token:
                return out

    def write(self, put: dict[str, str], delete: list[str]) -> None:
        existing = None
        for name, value in sorted(put.items()):
            if existing is None:
                existing = self.read()
            if name in existing:
                self._call(f"PutParameter {name}", self.ssm.put_parameter, Name=name, Value=value, Type="String",
                           Overwrite=True)
            else:
                try:
                    self.calls += 1
                    self.ssm.put_parameter(Name=name, Value=value, Type="String", Description="shared-mysql export",
                                           Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])
                except Exception as exc:  # noqa: BLE001
                    if error_code(exc) != "ParameterAlreadyExists":
                        raise SharedMySQLError(f"SSM PutParameter {name}: {describe_error(exc)}") from None
                    self._call(f"PutParameter {name}", self.ssm.put_parameter, Name=name, Value=value,
                               Type="String", Overwrite=True)
        for i in range(0, len(delete), 10):
            self._call("DeleteParameters", self.ssm.delete_parameters, Names=delete[i:i + 10])
