"""`isolate --source sg-...|CIDR` / `unisolate` (aws): the seed's incident response at the network edge.

The instance's security groups (and the RDS Proxy's, `{instance}-proxy-sg`) lose exactly the ingress rules that
admit that source on the database port; what was removed is recorded (`<state dir>/isolations.json`, written before
each revoke, so a killed run's re-run finds it) and `unisolate` puts back exactly that. Nothing else changes.
"""

from __future__ import annotations

import ipaddress
import re

from .aws import client_for, describe_error, error_code
from .errors import SharedMySQLError, UsageError

STATE = "isolations.json"


def parse_source(text: str, flag: str = "--source", everything: bool = False) -> tuple[str, str]:
    """("sg"|"cidr"|"cidr6", normalised) or one UsageError naming `flag`. `everything`: /0 is a valid question
    (doctor: "is the port open to all?"), not a valid thing to isolate."""
    t = (text or "").strip()
    if re.fullmatch(r"sg-[0-9a-f]{8,17}", t):
        return "sg", t
    try:
        net = ipaddress.ip_network(t, strict=False)
    except ValueError:
        raise UsageError(f"{flag} {text[:60]!r}: a security group id (sg-0123abcd) or a CIDR (10.1.0.0/16)") \
            from None
    if net.prefixlen == 0 and not everything:
        raise UsageError(f"{flag} {t}: isolating everything is not what this does; name the compromised source")
    return ("cidr6" if net.version == 6 else "cidr"), net.with_prefixlen


def _path(target):
    return target.state_dir / STATE


def _read(target) -> dict:
    from .secrets.file import read_json_dict

    return read_json_dict(_path(target))


def _write(target, d: dict) -> None:
    from .secrets.file import write_json

    write_json(_path(target), d)


def groups(target) -> list[str]:
    """The instance's security groups and the proxy's (by the stack's name), in a stable order."""
    cfg = target.config
    try:
        db = client_for(cfg, "rds").describe_db_instances(
            DBInstanceIdentifier=cfg.db_instance_identifier)["DBInstances"][0]
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise SharedMySQLError(f"RDS instance {cfg.db_instance_identifier}: {describe_error(exc)}") from None
    out = [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups") or []]
    ec2 = client_for(cfg, "ec2")
    try:
        proxy = ec2.describe_security_groups(Filters=[{"Name": "group-name",
                                                       "Values": [f"{cfg.db_instance_identifier}-proxy-sg"]}])
        out += [g["GroupId"] for g in proxy.get("SecurityGroups", []) if g["GroupId"] not in out]
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise SharedMySQLError(f"EC2 DescribeSecurityGroups: {describe_error(exc)}") from None
    return out


def _matching(perm: dict, kind: str, source: str, port: int) -> dict | None:
    """The part of one ingress permission that admits `source` on `port` (a rule of its own to revoke)."""
    proto = perm.get("IpProtocol")
    if proto not in ("tcp", "-1", "6"):
        return None
    if proto != "-1" and not (perm.get("FromPort", 0) <= port <= perm.get("ToPort", 65535)):
        return None
    base = {k: perm[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in perm}
    if kind == "sg":
        pairs = [p for p in perm.get("UserIdGroupPairs") or [] if p.get("GroupId") == source]
        return {**base, "UserIdGroupPairs": [{k: p[k] for k in ("GroupId", "UserId", "Description") if k in p}
                                             for p in pairs]} if pairs else None
    key, field = ("IpRanges", "CidrIp") if kind == "cidr" else ("Ipv6Ranges", "CidrIpv6")
    ranges = [r for r in perm.get(key) or [] if ipaddress.ip_network(r[field], strict=False).with_prefixlen == source]
    return {**base, key: [{k: r[k] for k in (field, "Description") if k in r} for r in ranges]} if ranges else None


def isolate(target, source_text: str, say=None) -> dict:
    say = say or (lambda m: None)
    kind, source = parse_source(source_text)
    port = target.port
    ec2 = client_for(target.config, "ec2")
    state = _read(target)
    removed = state.setdefault(source, [])
    done = []
    for gid in groups(target):
        sg = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
        for perm in sg.get("IpPermissions") or []:
            m = _matching(perm, kind, source, port)
            if m is None:
                continue
            removed.append({"group": gid, "permission": m})
            _write(target, state)  # recorded before the revoke: a killed run's re-run can still put it back
            try:
                ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[m])
            except Exception as exc:  # noqa: BLE001 - botocore errors, translated
                raise SharedMySQLError(f"EC2 RevokeSecurityGroupIngress {gid}: {describe_error(exc)}") from None
            done.append({"group": gid, "permission": m})
            say(f"removed {source} -> port {m.get('FromPort', 'all')}-{m.get('ToPort', 'all')} from {gid}")
    if not removed:
        state.pop(source, None)
    _write(target, state)
    return {"source": source, "removed": done, "recorded": len(removed)}


def unisolate(target, source_text: str, say=None) -> dict:
    say = say or (lambda m: None)
    _, source = parse_source(source_text)
    state = _read(target)
    rules = state.get(source) or []
    ec2 = client_for(target.config, "ec2")
    restored = []
    for r in list(rules):
        try:
            ec2.authorize_security_group_ingress(GroupId=r["group"], IpPermissions=[r["permission"]])
        except Exception as exc:  # noqa: BLE001 - botocore errors, translated
            if error_code(exc) != "InvalidPermission.Duplicate":
                raise SharedMySQLError(f"EC2 AuthorizeSecurityGroupIngress {r['group']}: {describe_error(exc)}; "
                                       "re-run unisolate") from None
        restored.append(r)
        rules.remove(r)
        if rules:
            state[source] = rules
        else:
            state.pop(source, None)
        _write(target, state)
        say(f"restored {source} -> port {r['permission'].get('FromPort', 'all')} on {r['group']}")
    return {"source": source, "restored": restored}


def isolated(target) -> dict:
    return {k: len(v) for k, v in _read(target).items()}
