"""Names and values the infra stack creates, without importing CDK: the audit compares the live account with
them (shared_mysql.audit.checks_aws), the stack builds from them (stack.py)."""

from __future__ import annotations

# The seed's parameter group; require_secure_transport is added and cannot be turned off.
SEED_PARAMETERS = {
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
    "max_connections": "200",
    "slow_query_log": "1",
    "long_query_time": "2",
    "log_queries_not_using_indexes": "1",
    "wait_timeout": "28800",
    "interactive_timeout": "28800",
}

# The six alarms (named {instance}-{key}) -> their threshold in instance.alarms.
ALARM_KEYS = {
    "cpu-utilization": "cpu_utilization_threshold",
    "free-storage-space": "free_storage_space_threshold",
    "freeable-memory": "freeable_memory_threshold",
    "database-connections": "database_connections_threshold",
    "read-latency": "read_latency_threshold",
    "write-latency": "write_latency_threshold",
}


def stack_security_group_names(instance: str) -> frozenset[str]:
    """The security groups the stack makes beside the instance's: the proxy's and the rotation function's."""
    return frozenset({f"{instance}-sg", f"{instance}-proxy-sg", f"{instance}-rotation-sg"})


def param_value(v) -> str:
    """A parameter value as the parameter group holds it."""
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)
