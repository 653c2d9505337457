"""`isolate` / `unisolate` on aws (issue 15, item 3), against moto's EC2 and RDS: exactly the rules that admit the
source on the database port are removed from the instance's and the proxy's groups, and put back as they were."""

from __future__ import annotations

import boto3
import pytest
import yaml
from moto import mock_aws

from shared_mysql import aws as aws_mod
from shared_mysql.config.load import load_config
from shared_mysql.errors import UsageError
from shared_mysql.isolation import isolate, isolated, parse_source, unisolate
from shared_mysql.target import open_target


def _rules(ec2, gid):
    out = set()
    for p in ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"]:
        for pair in p.get("UserIdGroupPairs", []):
            out.add((p["FromPort"], pair["GroupId"], pair.get("Description")))
        for r in p.get("IpRanges", []):
            out.add((p["FromPort"], r["CidrIp"], r.get("Description")))
    return out


@mock_aws
def test_isolate_removes_exactly_the_sources_rules_and_unisolate_puts_them_back(fake_aws_env, tmp_path):
    aws_mod.session.cache_clear()
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    other = ec2.create_security_group(GroupName="other", Description="other", VpcId=vpc)["GroupId"]
    db = ec2.create_security_group(GroupName="prod-shared-mysql-sg", Description="db", VpcId=vpc)["GroupId"]
    proxy = ec2.create_security_group(GroupName="prod-shared-mysql-proxy-sg", Description="proxy", VpcId=vpc)["GroupId"]
    for gid in (db, proxy):
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306,
             "UserIdGroupPairs": [{"GroupId": app, "Description": "app tier"}, {"GroupId": other}],
             "IpRanges": [{"CidrIp": "10.1.0.0/16", "Description": "peered vpc"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": app}]}])
    boto3.client("rds").create_db_instance(DBInstanceIdentifier="prod-shared-mysql", Engine="mysql",
                                           DBInstanceClass="db.t4g.small", MasterUsername="admin",
                                           MasterUserPassword="x" * 16, AllocatedStorage=30, VpcSecurityGroupIds=[db])
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "shared-mysql.yaml").write_text(yaml.safe_dump(
        {"environment": "prod", "identifier": "shared-mysql", "target": "aws",
         "instance": {"host": "db.example", "ca_bundle": "ca.pem"}, "tenants": {"orders": {}}}))
    t = open_target(load_config(tmp_path / "shared-mysql.yaml"))
    before = {gid: _rules(ec2, gid) for gid in (db, proxy)}
    out = isolate(t, app)
    assert {r["group"] for r in out["removed"]} == {db, proxy}
    for gid in (db, proxy):
        assert _rules(ec2, gid) == before[gid] - {(3306, app, "app tier")}  # port 22 and the others stay
    assert isolated(t) == {app: 2}
    assert isolate(t, app)["removed"] == []  # a re-run: nothing more to remove, the record kept
    cidr = isolate(t, "10.1.0.0/16")
    assert len(cidr["removed"]) == 2 and (3306, "10.1.0.0/16", "peered vpc") not in _rules(ec2, db)
    unisolate(t, app)
    unisolate(t, "10.1.0.0/16")
    assert {gid: _rules(ec2, gid) for gid in (db, proxy)} == before  # descriptions included
    assert isolated(t) == {}
    assert unisolate(t, app)["restored"] == []
    aws_mod.session.cache_clear()


@pytest.mark.parametrize("bad", ["0.0.0.0/0", "::/0", "sg-xyz", "10.0.0.0/33", "", "sg-0123abcd; rm"])
def test_hostile_sources_are_refused(bad):
    with pytest.raises(UsageError):
        parse_source(bad)


def test_sources_are_normalised():
    assert parse_source("10.1.2.3/16") == ("cidr", "10.1.0.0/16")
    assert parse_source(" sg-0123abcd ") == ("sg", "sg-0123abcd")
    assert parse_source("2001:db8::1/64") == ("cidr6", "2001:db8::/64")
