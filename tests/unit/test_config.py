import pytest

from shared_mysql.config import parse_config
from shared_mysql.config.example import EXAMPLE_LOCAL
from shared_mysql.errors import ConfigError

ISSUE_EXAMPLE = """
environment: dev
identifier: shared-mysql
target: local
instance:
  port: 13306
  parameters: {max_connections: 200}
tenants:
  orders: {max_connections: 20, readonly: true}
  billing: {max_connections: 10}
"""


def test_issue_example_parses_with_seed_defaults():
    c = parse_config(ISSUE_EXAMPLE)
    assert c.port == 13306
    assert c.tenants["orders"].readonly and c.tenants["orders"].readonly_limit == 5
    assert c.instance.instance_class == "db.t4g.small"
    assert c.instance.mysql_version == "8.0.35"
    assert (c.instance.allocated_storage, c.instance.max_allocated_storage) == (30, 200)
    assert c.instance.backup_retention_period == 14
    assert c.instance.backup_window == "03:00-04:00"
    assert c.instance.maintenance_window == "Mon:04:00-Mon:05:00"
    assert c.instance.master_username == "admin"
    assert c.instance.alarms.database_connections_threshold == 180
    assert c.master_secret_name == "dev-shared-mysql-master-password"


def test_init_example_is_valid():
    c = parse_config(EXAMPLE_LOCAL)
    assert set(c.tenants) == {"orders", "billing"}


def test_defaults_when_empty():
    c = parse_config("")
    assert c.environment == "prod" and c.identifier == "shared-mysql" and c.port == 13306
    assert c.tenants == {}


@pytest.mark.parametrize("name,needle", [
    ("Orders", "invalid"), ("or'ders", "invalid"), ("my tenant", "invalid"), ("or-ders", "invalid"),
    ("ordérs", "invalid"), ("1orders", "invalid"), ("_orders", "invalid"), ("mysql", "reserved"),
    ("sys", "reserved"), ("information_schema", "reserved"), ("performance_schema", "reserved"),
    ("a" * 20, "characters"),
])
def test_bad_tenant_names_are_one_line_errors(name, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(f'tenants: {{"{name}": {{}}}}', "cfg.yaml")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("cfg.yaml: tenants")
    assert needle in msg
    assert repr(name) in msg


def test_longest_tenant_name_fits_mysql_user_limit_with_rotation_suffix():
    name = "a" * 19
    c = parse_config(f"tenants: {{{name}: {{readonly: true}}}}")
    assert len(f"{name}_readonly_alt") == 32
    assert name in c.tenants


def test_over_budget_is_refused():
    with pytest.raises(ConfigError) as e:
        parse_config("instance: {parameters: {max_connections: 200}}\n"
                     "tenants: {a: {max_connections: 150}, b: {max_connections: 31}}")
    msg = str(e.value)
    assert "181" in msg and "connection_reserve 20" in msg and "max_connections 200" in msg


def test_readonly_counts_in_budget():
    with pytest.raises(ConfigError):
        parse_config("tenants: {a: {max_connections: 170, readonly: true, readonly_max_connections: 11}}")
    parse_config("tenants: {a: {max_connections: 170, readonly: true, readonly_max_connections: 10}}")


@pytest.mark.parametrize("text,needle", [
    ("tenants: {a: {max_conections: 3}}", "tenants.a.max_conections: unknown key"),
    ("instance: {allocated_storage: 100, max_allocated_storage: 50}", "max_allocated_storage (50)"),
    ("identifier: Shared_MySQL", "identifier:"),
    ("target: aws", "instance.ca_bundle: required for target aws"),
    ("target: server\ninstance: {ca_bundle: ca.pem}", "instance.host: required for target server"),
    ("tenants: {a: {auth: iam}}", "tenants.a.auth: iam needs RDS MySQL"),
    ("exports: {prefix: shared/rds}", "exports.prefix: must start with /"),
    ("instance: {performance_insights_enabled: true}", "no Performance Insights on db.t4g.small"),
    ("instance: {allowed_cidr_blocks: ['0.0.0.0/0']}", "opens MySQL to the whole internet"),
    ("instance: {allowed_cidr_blocks: ['::/0']}", "opens MySQL to the whole internet"),
    ("instance: {allowed_cidr_blocks: ['10.0.0.1/16']}", "is not a CIDR block"),
    ("instance: {backup_window: '03:00-04:00', maintenance_window: 'Mon:03:30-Mon:04:30'}", "overlaps"),
    ("instance: {backup_window: '23:30-00:30', maintenance_window: 'Sun:00:00-Sun:01:00'}", "overlaps"),
    ("instance: {backup_window: '03:00-03:10'}", "at least 30 minutes"),
    ("instance: {maintenance_window: 'Mon 04:00'}", "ddd:hh:mm-ddd:hh:mm"),
    ("instance: {instance_class: t4g.small}", "not an RDS instance class"),
    ("instance: {mysql_version: '8'}", "exact RDS MySQL"),
    ("instance: {cloudwatch_log_retention_days: 0}", "never-expiring"),
    ("tenants: [a, b]", "tenants: must be a mapping"),
    ("tenants: {a: {max_connections: 0}}", "tenants.a.max_connections"),
    ("instance: {parameters: {max_connections: lots}}", "max_connections must be a whole number"),
    ("tenants: {a: [", "fix the YAML syntax"),
    ("- just\n- a list", "top level must be a mapping"),
])
def test_other_errors_name_the_key(text, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(text, "cfg.yaml")
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_windows_that_touch_are_fine_and_pi_defaults_by_class():
    c = parse_config("instance: {backup_window: '03:00-04:00', maintenance_window: 'Mon:04:00-Mon:05:00'}")
    assert c.instance.performance_insights is False  # db.t4g.small
    c = parse_config("instance: {instance_class: db.t4g.medium}")
    assert c.instance.performance_insights is True
    assert parse_config("instance: {backup_window: '23:30-00:30', maintenance_window: 'Sun:01:00-Sun:02:00'}")
