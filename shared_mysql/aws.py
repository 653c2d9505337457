"""boto3 sessions and clients, created on demand (never at import time).

Region, profile and endpoint follow boto3's usual chain (AWS_PROFILE, AWS_REGION/AWS_DEFAULT_REGION,
AWS_ENDPOINT_URL[_<SERVICE>], shared config files) unless the config's `aws:` block sets them; the region finally
falls back to the seed's `instance.aws_region`.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import SharedMySQLError


def _boto3():
    try:
        import boto3
    except ImportError:
        raise SharedMySQLError("AWS support needs boto3: pip install 'shared-mysql[aws]'") from None
    return boto3


@lru_cache(maxsize=8)
def session(region: str | None = None, profile: str | None = None, fallback_region: str | None = None):
    boto3 = _boto3()
    try:
        s = boto3.Session(profile_name=profile, region_name=region)
    except Exception as exc:  # botocore ProfileNotFound and friends
        raise SharedMySQLError(f"aws.profile {profile!r}: {exc}") from None
    if s.region_name is None and fallback_region:
        s = boto3.Session(profile_name=profile, region_name=fallback_region)
    return s


def client(service: str, *, region: str | None = None, profile: str | None = None, endpoint_url: str | None = None,
           fallback_region: str | None = None):
    from botocore.config import Config as BotoConfig

    s = session(region, profile, fallback_region)
    cfg = BotoConfig(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=30)
    return s.client(service, endpoint_url=endpoint_url, config=cfg)


def client_for(config, service: str):
    """A client configured from a `Config`'s `aws:` block."""
    a = config.aws
    return client(service, region=a.region, profile=a.profile, endpoint_url=a.endpoint_url,
                  fallback_region=config.instance.aws_region)


def describe_error(exc: BaseException) -> str:
    """One line for a botocore error: its code and message, never a request body."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError
    except ImportError:  # pragma: no cover
        return str(exc)
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return _one_line(f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip())
    if isinstance(exc, ParamValidationError):
        # Its text can quote parameter values (a SecretString among them): name the problem only.
        return "ParamValidationError: a request parameter was rejected by botocore (values not shown)"
    if exc.__class__.__name__ == "ResponseParserError":
        # Its text quotes the raw response body, which for Secrets Manager can be a secret value.
        return ("ResponseParserError: the endpoint's response could not be parsed (an outage, a proxy, or an API "
                "the endpoint lacks; body not shown)")
    return _one_line(f"{exc.__class__.__name__}: {exc}")


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def error_code(exc: BaseException) -> str | None:
    resp = getattr(exc, "response", None)
    return resp.get("Error", {}).get("Code") if isinstance(resp, dict) else None
