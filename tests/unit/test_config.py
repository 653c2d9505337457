import pytest
import yaml

from shared_mysql.config import params, parse_config
from shared_mysql.config.example import EXAMPLE_LOCAL
from shared_mysql.config.yamlload import ConfigLoader, DuplicateKeyError, NoDuplicateKeys
from shared_mysql.config.params import ALLOWED, OWNED, check_parameter, owner_of, render_value
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


# -- instance.parameters: owned names, the allowlist, typed values ------------------------------------------------

def error_of(text: str) -> str:
    """The one-line ConfigError for `text`, without the file name."""
    with pytest.raises(ConfigError) as e:
        parse_config(text, "cfg.yaml")
    msg = str(e.value)
    assert "\n" not in msg and "\r" not in msg
    assert msg.startswith("cfg.yaml: ")
    return msg[len("cfg.yaml: "):]


def param_error(name: str, value) -> str:
    with pytest.raises(ValueError) as e:
        check_parameter(name, value)
    msg = str(e.value)
    assert "\n" not in msg and "\r" not in msg
    return msg


TLS = ("owned by shared-mysql (TLS is always required, as in the seed's parameter group); remove it: TLS is "
       "always on")
LISTEN = "owned by shared-mysql (the embedded server listens on instance.host only); set instance.host instead"
AUDIT = ("owned by shared-mysql (the audit log of connections, DDL and DCL is always on); remove it from "
         "instance.parameters")
GRANTS = "owned by shared-mysql (privileges are always checked); remove it from instance.parameters"


@pytest.mark.parametrize("entry,expected", [
    ("bind_address: 0.0.0.0", f"instance.parameters.bind_address: {LISTEN}"),
    ("loose_bind_address: 0.0.0.0",
     f"instance.parameters.loose_bind_address: read by the server as bind_address, {LISTEN}"),
    ("bind-address: 0.0.0.0", f"instance.parameters.bind-address: read by the server as bind_address, {LISTEN}"),
    ("BIND_ADDRESS: 0.0.0.0", f"instance.parameters.BIND_ADDRESS: read by the server as bind_address, {LISTEN}"),
    ("require_secure_transport: false", f"instance.parameters.require_secure_transport: {TLS}"),
    ("require_secure: false", "instance.parameters.require_secure: read by the server as an abbreviation of "
                              f"require_secure_transport, {TLS}"),
    ("skip_require_secure_transport: true", "instance.parameters.skip_require_secure_transport: read by the "
                                            f"server as require_secure_transport, {TLS}"),
    ("disable-require-secure-transport: true", "instance.parameters.disable-require-secure-transport: read by "
                                               f"the server as require_secure_transport, {TLS}"),
    ("server_audit_logging: false",
     f"instance.parameters.server_audit_logging: one of the server_audit_* options, {AUDIT}"),
    ("server_audit: 'OFF'", f"instance.parameters.server_audit: {AUDIT}"),
    ("loose-server-audit-events: CONNECT",
     f"instance.parameters.loose-server-audit-events: one of the server_audit_* options, {AUDIT}"),
    ("ssl: false", "instance.parameters.ssl: owned by shared-mysql (the server's TLS certificate and key are "
                   "generated and set by shared-mysql); remove it from instance.parameters"),
    ("skip_ssl: true", "instance.parameters.skip_ssl: read by the server as ssl, owned by shared-mysql (the "
                       "server's TLS certificate and key are generated and set by shared-mysql); remove it from "
                       "instance.parameters"),
    ("skip_grant_tables: true", f"instance.parameters.skip_grant_tables: {GRANTS}"),
    ("loose-skip-grant: true",
     f"instance.parameters.loose-skip-grant: read by the server as an abbreviation of skip_grant_tables, {GRANTS}"),
    ("port: 3307", "instance.parameters.port: owned by shared-mysql (the server listens on instance.port only); "
                   "set instance.port instead"),
    ("max_user_connections: 5", "instance.parameters.max_user_connections: owned by shared-mysql (each account's "
                                "limit comes from its tenant); set tenants.<name>.max_connections instead"),
    ("init_connect: x", "instance.parameters.init_connect: owned by shared-mysql (no SQL runs at every tenant's "
                        "login); remove it from instance.parameters"),
])
def test_owned_parameters_are_refused_in_every_spelling(entry, expected):
    assert error_of(f"instance:\n  parameters:\n    {entry}\n") == expected


@pytest.mark.parametrize("name", [
    "local_infile", "log_bin", "log_bin_trust_function_creators", "sql_log_bin", "binlog_format",
    "binlog_row_image", "expire_logs_days", "binlog_expire_logs_seconds", "sync_binlog", "server_id",
    "datadir", "tmpdir", "pid_file", "log_error", "general_log_file", "slow_query_log_file", "log_slow_query_file",
    "plugin_dir", "plugin_load_add", "early_plugin_load", "secure_file_priv", "init_file", "ssl_ca", "ssl_cipher",
    "tls_version", "have_ssl", "skip_networking", "skip_name_resolve", "extra_port", "proxy_protocol_networks",
    "socket", "user", "old_passwords", "secure_auth", "default_password_lifetime", "automatic_sp_privileges",
    "mandatory_roles", "activate_all_roles_on_login", "log_output", "log_raw", "log_warnings", "mysqlx_port",
    "innodb_data_home_dir", "innodb_log_group_home_dir", "lc_messages_dir", "character_sets_dir", "basedir",
    "server_audit_file_path", "server_audit_excl_users", "validate_password_policy", "symbolic_links",
])
def test_owned_names_name_shared_mysql(name):
    msg = param_error(name, True)
    assert msg.startswith(f"instance.parameters.{name}: ") and "owned by shared-mysql (" in msg


SPELLINGS = (
    lambda n: n, lambda n: n.upper(), lambda n: n.replace("_", "-"), lambda n: f"loose_{n}", lambda n: f"skip-{n}",
    lambda n: f"disable_{n}", lambda n: f"enable_{n}", lambda n: f"maximum_{n}", lambda n: f"LOOSE-SKIP-{n}",
    lambda n: f"{n}_x", lambda n: n[:-1] if len(n) > 3 else n,  # a member of its family; an abbreviation
)


@pytest.mark.parametrize("owned", sorted(OWNED))
def test_every_owned_name_is_refused_however_spelled(owned):
    for spelling in SPELLINGS:
        name = spelling(owned)
        assert owner_of(name) is not None, name
        assert "owned by shared-mysql" in param_error(name, True), name


def sample(spec: params.ParamSpec):
    if spec.kind in ("enum", "set"):
        return ",".join(spec.choices[:2]) if spec.kind == "set" else spec.choices[0]
    return {"bool": True, "int": spec.min, "float": spec.max, "str": "+00:00"}[spec.kind]


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_every_allowed_parameter_accepts_a_valid_value_and_is_not_owned(name):
    spec = ALLOWED[name]
    assert owner_of(name) is None
    value = int(sample(spec)) if spec.kind == "int" else sample(spec)
    check_parameter(name, value)
    assert render_value(value)


def test_flavor_specific_names_are_not_read_as_abbreviations_of_owned_ones():
    # An allowed name is exempt from the abbreviation rule because it is an exact option: on the flavor that
    # lacks it, mysqld would try it as a prefix, so it must not be one of an owned name.
    forms = [form for owned in OWNED for form in params._forms(owned)]
    for name, spec in ALLOWED.items():
        if spec.only:
            assert not [f for f in forms if f.startswith(name)], name


def test_allowlist_covers_the_seed_parameter_group():
    for name in ("character_set_server", "collation_server", "max_connections", "slow_query_log",
                 "long_query_time", "log_queries_not_using_indexes", "wait_timeout", "interactive_timeout"):
        assert name in ALLOWED
    c = parse_config("instance:\n  parameters:\n    character_set_server: utf8mb4\n"
                     "    collation_server: utf8mb4_unicode_ci\n    max_connections: 200\n    slow_query_log: true\n"
                     "    long_query_time: 2\n    log_queries_not_using_indexes: true\n    wait_timeout: 28800\n"
                     "    interactive_timeout: 28800\n    general_log: true\n    time_zone: '+09:00'\n"
                     "    sql_mode: STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION\n"
                     "    transaction_isolation: READ-COMMITTED\n    innodb_flush_log_at_trx_commit: 2\n")
    assert c.instance.parameters["slow_query_log"] is True and c.instance.parameters["long_query_time"] == 2


@pytest.mark.parametrize("entry,expected", [
    ("max_conections: 20", "instance.parameters.max_conections: not a parameter shared-mysql allows (did you mean "
                           "max_connections, max_connect_errors; all {n} are in shared_mysql/config/params.py "
                           "ALLOWED); to tune another, propose it there with its type and bounds"),
    ("no_such_variable: 1", "instance.parameters.no_such_variable: not a parameter shared-mysql allows (allowed "
                            "ones include max_connections, wait_timeout, long_query_time, innodb_buffer_pool_size, "
                            "sql_mode; all {n} are in shared_mysql/config/params.py ALLOWED); to tune another, "
                            "propose it there with its type and bounds"),
    ("Max-Connections: 20", "instance.parameters.Max-Connections: write it as max_connections"),
    ("skip_slow_query_log: true",
     "instance.parameters.skip_slow_query_log: write slow_query_log: false instead of the skip_ prefix"),
    ("enable-general-log: true",
     "instance.parameters.enable-general-log: write general_log: true instead of the enable_ prefix"),
    ("loose_wait_timeout: 60", "instance.parameters.loose_wait_timeout: write it as wait_timeout"),
    ("'bind_address = 0.0.0.0': x", "instance.parameters: 'bind_address = 0.0.0.0' is not a server parameter "
                                    "name; use letters, digits and _, e.g. max_connections"),
    ("\"x\\nskip_grant_tables\": 1", "instance.parameters: 'x\\nskip_grant_tables' is not a server parameter "
                                     "name; use letters, digits and _, e.g. max_connections"),
])
def test_unknown_parameters_are_refused_with_the_way_forward(entry, expected):
    assert error_of(f"instance:\n  parameters:\n    {entry}\n") == expected.format(n=len(ALLOWED))


MC = "max_connections must be a whole number between 10 and 100000"


@pytest.mark.parametrize("entry,expected", [
    ("max_connections: true", f"True is not a whole number (YAML true/false are booleans); {MC}"),
    ("max_connections: '20'", f"'20' is not a whole number; {MC}"),
    ("max_connections: 20.5", f"20.5 is not a whole number; {MC}"),
    ("max_connections: 200.0", f"200.0 is not a whole number; {MC}"),
    ("max_connections: 5", f"5 is out of range; {MC}"),
    ("max_connections: 100001", f"100001 is out of range; {MC}"),
    ("max_connections: null", f"None is not a whole number; {MC}"),
    ("max_connections: [200]", f"[200] is not a whole number; {MC}"),
    ("slow_query_log: 1", "1 is not a YAML boolean; slow_query_log must be true or false (a YAML boolean)"),
    ("slow_query_log: 'ON'", "'ON' is not a YAML boolean; slow_query_log must be true or false (a YAML boolean)"),
    ("long_query_time: true", "True is not a number (YAML true/false are booleans); long_query_time must be a "
                              "number between 0 and 31536000"),
    ("long_query_time: '2'", "'2' is not a number; long_query_time must be a number between 0 and 31536000"),
    ("long_query_time: .nan", "nan is not a finite number; long_query_time must be a number between 0 and "
                              "31536000"),
    ("long_query_time: -1", "-1 is out of range; long_query_time must be a number between 0 and 31536000"),
    ("innodb_flush_log_at_trx_commit: 3", "3 is out of range; innodb_flush_log_at_trx_commit must be a whole "
                                          "number between 0 and 2"),
    ("transaction_isolation: read-committed", "'read-committed' is not allowed; transaction_isolation must be "
                                              "one of READ-UNCOMMITTED, READ-COMMITTED, REPEATABLE-READ, "
                                              "SERIALIZABLE"),
    ("character_set_server: latin1", "'latin1' is not allowed; character_set_server must be one of utf8mb4"),
    ("innodb_flush_method: 'off'", "'off' is not allowed; innodb_flush_method must be one of fsync, O_DSYNC, "
                                   "O_DIRECT, O_DIRECT_NO_FSYNC"),
    ("innodb_flush_method: off", "False is not a text value (YAML reads ON/OFF/yes/no as booleans: quote it); "
                                 "innodb_flush_method must be one of fsync, O_DSYNC, O_DIRECT, O_DIRECT_NO_FSYNC"),
    ("time_zone: 'Asia/Seoul;'", "the value 'Asia/Seoul;' contains ';' (allowed: letters, digits and _ . , : / + "
                                 "-); time_zone must be a text value such as +00:00, SYSTEM or Asia/Seoul"),
    ("time_zone: '+25:00'", "'+25:00' is not allowed; time_zone must be a text value such as +00:00, SYSTEM or "
                            "Asia/Seoul"),
])
def test_parameter_values_have_the_allowlisted_type_and_bounds(entry, expected):
    name = entry.split(":")[0]
    assert error_of(f"instance:\n  parameters:\n    {entry}\n") == f"instance.parameters.{name}: {expected}"


def test_sql_mode_is_a_list_of_known_modes_without_the_ones_that_change_quoting():
    check_parameter("sql_mode", "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION")
    check_parameter("sql_mode", "TRADITIONAL")
    for mode in ("ANSI_QUOTES", "ANSI", "NO_BACKSLASH_ESCAPES", "PIPES_AS_CONCAT", "ORACLE", "strict_trans_tables"):
        assert param_error("sql_mode", f"STRICT_TRANS_TABLES,{mode}") == (
            f"instance.parameters.sql_mode: {mode!r} is not allowed; sql_mode must be a comma-separated list of "
            + ", ".join(params.SQL_MODES))
    assert "'' is not allowed" in param_error("sql_mode", "STRICT_TRANS_TABLES,,TRADITIONAL")


@pytest.mark.parametrize("value,problem", [
    ("+00:00\nskip_grant_tables = ON", "contains the control character '\\n'"),
    ("+00:00\rskip_grant_tables = ON", "contains the control character '\\r'"),
    ("+00:00\x00", "contains the control character '\\x00'"),
    ("+00:00\t", "contains the control character '\\t'"),
    ("UTC\u2028skip_grant_tables", "contains the control character '\\u2028'"),
    ("UTC\u202e", "contains the control character '\\u202e'"),
    (" UTC", "has leading or trailing spaces"),
    ("UTC ", "has leading or trailing spaces"),
    ("", "is empty"),
    ("UTC # comment", "contains ' ', '#' (allowed: letters, digits and _ . , : / + -)"),
    ("'UTC'", "contains \"'\" (allowed: letters, digits and _ . , : / + -)"),
    ('"UTC"', "contains '\"' (allowed: letters, digits and _ . , : / + -)"),
    ("UTC\\n", "contains '\\\\' (allowed: letters, digits and _ . , : / + -)"),
    ("a=b", "contains '=' (allowed: letters, digits and _ . , : / + -)"),
    ("a;b", "contains ';' (allowed: letters, digits and _ . , : / + -)"),
    ("A" * 300, "is 300 characters long (at most 256)"),
])
def test_text_values_cannot_carry_another_line_or_a_comment(value, problem):
    msg = param_error("time_zone", value)
    assert msg.startswith("instance.parameters.time_zone: the value ")
    assert msg.endswith(f" {problem}; time_zone must be a text value such as +00:00, SYSTEM or Asia/Seoul")


def test_the_reported_injection_is_refused_by_type():
    # The security review's value: a newline then forced settings. wait_timeout is a whole number.
    assert error_of('instance:\n  parameters:\n    wait_timeout: "28800\\nrequire_secure_transport = OFF\\n'
                    'skip_grant_tables = ON"\n') == (
        "instance.parameters.wait_timeout: '28800\\nrequire_secure_transport = OF... is not a whole number; "
        "wait_timeout must be a whole number between 1 and 31536000")
    for value in ("STRICT_TRANS_TABLES\nskip_grant_tables", "TRADITIONAL\r\nbind_address=0.0.0.0"):
        assert "contains the control character" in param_error("sql_mode", value)


def test_mariadb_only_parameters_are_refused_for_rds_mysql():
    base = "target: aws\ninstance:\n  ca_bundle: ca.pem\n  parameters:\n"
    assert error_of(base + "    max_statement_time: 5\n") == (
        "instance.parameters.max_statement_time: a MariaDB parameter; RDS MySQL (target aws) does not have it: "
        "remove it")
    assert parse_config(base + "    max_execution_time: 5000\n").instance.parameters == {"max_execution_time": 5000}
    assert parse_config("instance: {parameters: {max_statement_time: 2.5}}").instance.parameters


@pytest.mark.parametrize("value,text", [
    (True, "ON"), (False, "OFF"), (200, "200"), (0, "0"), (0.5, "0.5"), (2.0, "2.0"), (1e-05, "0.00001"),
    (1e16, "10000000000000000"), (1.5e-7, "0.00000015"), ("utf8mb4_unicode_ci", "utf8mb4_unicode_ci"),
])
def test_render_value_for_my_cnf(value, text):
    assert render_value(value) == text


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "\x00", "a\u2028b", float("nan"), float("inf")])
def test_render_value_refuses_control_characters_and_non_finite_numbers(value):
    with pytest.raises(ValueError):
        render_value(value)


def test_render_value_refuses_other_types():
    with pytest.raises(TypeError):
        render_value(None)


# -- strict scalar types across the models -------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("tenants: {a: {max_connections: true}}", "tenants.a.max_connections: Input should be a valid integer"),
    ("tenants: {a: {max_connections: '20'}}", "tenants.a.max_connections: Input should be a valid integer"),
    ("tenants: {a: {max_connections: 20.0}}", "tenants.a.max_connections: Input should be a valid integer"),
    ("tenants: {a: {readonly: 1}}", "tenants.a.readonly: Input should be a valid boolean"),
    ("tenants: {a: {readonly: 'true'}}", "tenants.a.readonly: Input should be a valid boolean"),
    ("instance: {port: true}", "instance.port: Input should be a valid integer"),
    ("instance: {port: '3306'}", "instance.port: Input should be a valid integer"),
    ("instance: {multi_az: 1}", "instance.multi_az: Input should be a valid boolean"),
    ("instance: {allocated_storage: 30.0}", "instance.allocated_storage: Input should be a valid integer"),
    ("instance: {connection_reserve: false}", "instance.connection_reserve: Input should be a valid integer"),
    ("instance: {monitoring_interval: true}",
     "instance.monitoring_interval: True is a YAML boolean, not a whole number"),
    ("instance: {monitoring_interval: '5'}",
     "instance.monitoring_interval: Input should be 0, 1, 5, 10, 15, 30 or 60"),
    ("instance: {monitoring_interval: 5.0}", "instance.monitoring_interval: 5.0 is not a whole number"),
    ("instance: {performance_insights_retention_period: '7'}",
     "instance.performance_insights_retention_period: Input should be 7 or 731"),
    ("instance: {performance_insights_retention_period: true}",
     "instance.performance_insights_retention_period: True is a YAML boolean, not a whole number"),
    ("instance: {performance_insights_enabled: 0}",
     "instance.performance_insights_enabled: Input should be a valid boolean"),
    ("instance: {alarms: {cpu_utilization_threshold: true}}",
     "instance.alarms.cpu_utilization_threshold: Input should be a valid number"),
    ("instance: {alarms: {cpu_utilization_threshold: .inf}}",
     "instance.alarms.cpu_utilization_threshold: Input should be a finite number"),
    ("instance: {alarms: {failed_login_threshold: '10'}}",
     "instance.alarms.failed_login_threshold: Input should be a valid integer"),
    ("secrets: {recovery_window_days: '7'}", "secrets.recovery_window_days: Input should be a valid integer"),
    ("instance: {secret_rotation_days: 30.5}", "instance.secret_rotation_days: Input should be a valid integer"),
])
def test_scalars_are_strict(text, expected):
    msg = error_of(text)
    assert msg.startswith(expected)
    if "valid" in expected:  # a value of the wrong type: what is wrong, then what to write
        assert "; write " in msg[len(expected):], msg


def test_strict_scalars_keep_lists_as_tuples_and_ints_as_floats():
    c = parse_config("instance: {private_subnet_ids: [subnet-a, subnet-b], availability_zones: [x-1a, x-1b],\n"
                     "  enabled_cloudwatch_logs_exports: [error], alarms: {cpu_utilization_threshold: 90,\n"
                     "  read_latency_threshold: 1}, monitoring_interval: 0, performance_insights_retention_period: "
                     "731}\ntenants: {a: {readonly: true, max_connections: 4}}")
    assert c.instance.private_subnet_ids == ("subnet-a", "subnet-b")
    assert c.instance.enabled_cloudwatch_logs_exports == ("error",)
    assert c.instance.alarms.cpu_utilization_threshold == 90.0
    assert (c.instance.monitoring_interval, c.instance.performance_insights_retention_period) == (0, 731)
    assert c.tenants["a"].readonly is True


# -- text that reaches files and commands ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ('instance: {ca_bundle: "ca.pem\\n"}', "instance.ca_bundle: contains the control character '\\n'; remove it"),
    ('instance: {proxy_endpoint: "p\\rx"}',
     "instance.proxy_endpoint: contains the control character '\\r'; remove it"),
    ('instance: {database_name: "shared\\tdb"}',
     "instance.database_name: contains the control character '\\t'; remove it"),
    ('instance: {tags: {Team: "a\\x00"}}', "instance.tags.Team: contains the control character '\\x00'; remove it"),
    ('instance: {tags: {"Te\\nam": a}}',
     "instance.tags.'Te\\nam': key: contains the control character '\\n'; remove it"),
    ('aws: {region: "us-east-1\\n"}', "aws.region: contains the control character '\\n'; remove it"),
    ('aws: {profile: "p\\u2028"}', "aws.profile: contains the control character '\\u2028'; remove it"),
    ('aws: {endpoint_url: "http://x\\n"}', "aws.endpoint_url: contains the control character '\\n'; remove it"),
    ('secrets: {kms_key_id: "alias/x\\r"}', "secrets.kms_key_id: contains the control character '\\r'; remove it"),
    ("instance: {database_name: 'shared db'}",
     "instance.database_name: 'shared db': use 1-64 letters, digits or _ starting with a letter (RDS rule); "
     "e.g. shared_db"),
])
def test_text_fields_refuse_control_characters(text, expected):
    assert error_of(text) == expected


# -- instance.host ---------------------------------------------------------------------------------------------------

NOT_LOOPBACK = ("is not a loopback address; the embedded server (target local) is private to this machine: use "
                "127.0.0.1 (the default), ::1 or localhost")


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.1.5", "db.example.com", "'::'", "'::ffff:10.0.0.1'"])
def test_local_target_listens_on_loopback_only(host):
    assert error_of(f"instance: {{host: {host}}}") == f"instance.host: {host.strip(chr(39))} {NOT_LOOPBACK}"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "'::1'", "localhost", "LOCALHOST"])
def test_local_target_accepts_loopback_hosts(host):
    assert parse_config(f"instance: {{host: {host}}}").host == host.strip("'")


@pytest.mark.parametrize("host,shown", [
    ('"127.0.0.1\\n"', None), ('"db.example.com\\r\\nbind_address=0.0.0.0"', None),
    ("'db example.com'", "'db example.com'"), ("'host=x'", "'host=x'"), ("'db#1'", "'db#1'"),
    ("999.1.1.1", "'999.1.1.1'"), ("-db.example.com", "'-db.example.com'"), ("db_1.example.com", "'db_1.example.com'"),
    ("'[::1]'", "'[::1]'"), ("''", "''"),
])
def test_host_is_a_host_name_or_ip_literal(host, shown):
    msg = error_of(f"target: server\ninstance: {{host: {host}, ca_bundle: ca.pem}}")
    if shown is None:
        assert msg.startswith("instance.host: contains the control character ")
    else:
        assert msg == (f"instance.host: {shown} is not a host name or IP address; e.g. db.internal.example.com "
                       "or 10.0.1.5")


@pytest.mark.parametrize("host", ["db.internal.example.com", "10.0.1.5", "'2001:db8::5'", "db-1", "127.0.0.1"])
def test_server_target_accepts_host_names_and_addresses(host):
    assert parse_config(f"target: server\ninstance: {{host: {host}, ca_bundle: ca.pem}}").host == host.strip("'")


# -- master_username ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("master,tenants,expected", [
    ("billing_user", "{billing: {}}", "'billing_user' is also the app account of tenant 'billing'"),
    ("billing_readonly", "{billing: {}}", "'billing_readonly' is also the readonly account of tenant 'billing'"),
    ("billing_user_alt", "{billing: {}}", "'billing_user_alt' is also the app rotation account of tenant 'billing'"),
    ("ab_readonly_alt", "{ab: {readonly: true}}",
     "'ab_readonly_alt' is also the readonly rotation account of tenant 'ab'"),
    ("Billing_User", "{billing: {}}", "'Billing_User' is also the app account of tenant 'billing'"),
])
def test_master_username_cannot_be_a_tenant_account(master, tenants, expected):
    assert error_of(f"instance: {{master_username: {master}}}\ntenants: {tenants}") == (
        f"instance.master_username: {expected}; choose another, e.g. admin")


@pytest.mark.parametrize("master,tenant,role", [
    ("billing_user", "billing", "app"), ("orders_readonly", "orders", "readonly"),
    ("orders_user_alt", "orders", "app rotation"), ("ab_readonly_alt", "ab", "readonly rotation"),
])
def test_master_username_cannot_be_a_name_a_future_tenant_derives(master, tenant, role):
    assert error_of(f"instance: {{master_username: {master}}}\ntenants: {{other: {{}}}}") == (
        f"instance.master_username: {master!r} is the {role} account tenant {tenant!r} would get; choose a name no "
        "tenant derives (not <tenant>_user, <tenant>_readonly or their _alt twins), e.g. admin")


@pytest.mark.parametrize("master", ["root", "ROOT", "rdsadmin", "rdsrepladmin", "rdstopmgr", "PUBLIC", "public",
                                    "Public"])
def test_master_username_cannot_be_a_system_account(master):
    assert error_of(f"instance: {{master_username: {master}}}") == (
        f"instance.master_username: {master!r} is an account the server keeps for itself (root, mariadb.sys, "
        "mysql.sys, mysql.session, mysql.infoschema, rdsadmin, rdsrepladmin, rdstopmgr, PUBLIC); choose another, "
        "e.g. admin")


@pytest.mark.parametrize("master", ["admin", "dbadmin", "admin_user", "root_readonly", "user", "billing"])
def test_master_usernames_no_tenant_can_derive_are_fine(master):
    # admin_user / root_readonly: admin and root are reserved, so no tenant can ever derive them.
    assert parse_config(f"instance: {{master_username: {master}}}\ntenants: {{billing: {{readonly: true}}}}")


# -- duplicate keys --------------------------------------------------------------------------------------------------

DUP = "(the second value would silently win); keep one"


@pytest.mark.parametrize("text,expected", [
    ("environment: dev\ntarget: local\nenvironment: prod\n", f"line 3: duplicate key 'environment' {DUP}"),
    ("tenants:\n  orders: {}\n  billing: {}\n  orders: {readonly: true}\n", f"line 4: duplicate key 'orders' {DUP}"),
    ("tenants:\n  orders:\n    max_connections: 5\n    readonly: true\n    max_connections: 50\n",
     f"line 5: duplicate key 'max_connections' {DUP}"),
    ("instance:\n  parameters:\n    max_connections: 200\n    wait_timeout: 60\n    max_connections: 300\n",
     f"line 5: duplicate key 'max_connections' {DUP}"),
    ("instance:\n  parameters: {max_connections: 200, max_connections: 300}\n",
     f"line 2: duplicate key 'max_connections' {DUP}"),
    ("instance:\n  port: 1\ninstance:\n  port: 2\n", f"line 3: duplicate key 'instance' {DUP}"),
])
def test_duplicate_keys_are_errors_at_any_depth(text, expected):
    assert error_of(text) == expected


def test_merge_keys_may_still_override_and_the_c_loader_is_used():
    c = parse_config("tenants:\n  orders: &base {max_connections: 5, readonly: true}\n"
                     "  billing:\n    <<: *base\n    max_connections: 6\n")
    assert c.tenants["billing"].max_connections == 6 and c.tenants["billing"].readonly
    assert issubclass(ConfigLoader, yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)


def test_duplicate_check_works_with_the_pure_python_loader_too():
    class PureLoader(NoDuplicateKeys, yaml.SafeLoader):
        pass

    assert yaml.load("a: {b: 1, c: 2}", Loader=PureLoader) == {"a": {"b": 1, "c": 2}}  # noqa: S506
    with pytest.raises(DuplicateKeyError) as e:
        yaml.load("a:\n  b: 1\n  b: 2\n", Loader=PureLoader)  # noqa: S506
    assert (e.value.key, e.value.line) == ("b", 3)
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.load("{[1]: a}", Loader=PureLoader)  # noqa: S506 - unhashable keys keep PyYAML's own error


def test_aliases_cannot_make_an_error_message_walk_an_exponential_structure():
    # Nine levels of ten aliases each: 10**9 leaves if repr() walked it (PyYAML itself shares the objects).
    levels = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "instance:\n  parameters:\n    max_connections:\n" + "".join(f"      - {lv}\n" for lv in levels)
    msg = error_of(text)
    assert msg.startswith("instance.parameters.max_connections: [[")
    assert msg.endswith(f"is not a whole number; {MC}")


def test_big_configs_keep_their_parsed_form_keyed_by_content(tmp_path, monkeypatch):
    from shared_mysql.config import load
    from shared_mysql.config.load import load_config

    tenants = "\n".join(f"  t{i:05d}: {{max_connections: 1}}" for i in range(3000))
    path = tmp_path / "shared-mysql.yaml"
    path.write_text(f"instance: {{parameters: {{max_connections: 5000}}}}\ntenants:\n{tenants}\n")
    parses = []
    real = load._parse_yaml
    monkeypatch.setattr(load, "_parse_yaml", lambda *a: parses.append(1) or real(*a))
    assert len(load_config(path).config.tenants) == 3000 and len(parses) == 1
    cache = tmp_path / ".shared-mysql" / "config-cache.json"
    assert cache.stat().st_mode & 0o777 == 0o600
    assert len(load_config(path).config.tenants) == 3000 and len(parses) == 1  # from the cache
    path.write_text(path.read_text().replace("t00001: {max_connections: 1}", "t00001: {max_connections: 2}"))
    assert load_config(path).config.tenants["t00001"].max_connections == 2 and len(parses) == 2
    # a cache someone else could have written is never trusted; a tampered one (wrong digest) is re-parsed
    cache.chmod(0o666)
    load_config(path)
    assert len(parses) == 3
    cache.write_text('{"sha256": "0", "data": {"tenants": {}}}')
    cache.chmod(0o600)
    assert len(load_config(path).config.tenants) == 3000 and len(parses) == 4
    # the cache never hides an error: a duplicate key added to the file is found
    path.write_text(path.read_text() + "  t00001: {}\n")
    with pytest.raises(ConfigError, match="duplicate key 't00001'"):
        load_config(path)


def test_values_json_cannot_hold_are_never_cached(tmp_path):
    from shared_mysql.config.load import _json_exact

    assert _json_exact({"a": [1, "x", None, True, 1.5]})
    assert not _json_exact({1: "int key"}) and not _json_exact({"d": __import__("datetime").date(2026, 1, 1)})
    assert not _json_exact({"f": float("nan")})


@pytest.mark.parametrize("value", ["0764", "1:20", "9:29:21", "1_000", "0b101", "1:20.5"])
def test_yaml_1_1_number_surprises_are_errors(value):
    with pytest.raises(ConfigError, match=f"'{value}' is a YAML 1.1 octal, binary, base-60 or underscored number"):
        parse_config(f"tenants:\n  orders: {{max_connections: {value}}}\n")


@pytest.mark.parametrize("text, got", [("20", 20), ("0", None), ("0x14", 20)])
def test_plain_numbers_still_read(text, got):
    if got is None:
        with pytest.raises(ConfigError):
            parse_config(f"tenants:\n  orders: {{max_connections: {text}}}\n")
        return
    assert parse_config(f"tenants:\n  orders: {{max_connections: {text}}}\n").tenants["orders"].max_connections == got
