"""The seed's Terraform module as one CDK stack, built from shared-mysql.yaml (same variables, same outputs).

Added over the module: an option group with the MariaDB audit plugin (the module exported the `audit` log
without it), require_secure_transport in the parameter group, KMS-encrypted log groups with retention created
before the instance, a rotation schedule for the master secret, OK actions on every alarm, an encrypted SNS topic
when none is given, and the master secret retained when the stack is deleted. See docs/infra-parity.md.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import (CfnOutput, Duration, RemovalPolicy, Stack, Tags, aws_cloudwatch as cw,
                     aws_cloudwatch_actions as cw_actions, aws_ec2 as ec2, aws_iam as iam, aws_kms as kms,
                     aws_lambda as lambda_, aws_logs as logs, aws_rds as rds, aws_sns as sns, aws_ssm as ssm)
from constructs import Construct

from ..config.model import USER_SUFFIXES, Config
from .names import SEED_PARAMETERS, param_value as _param

MYSQL_PORT = 3306
# Seed output name -> CloudFormation output id (ids are alphanumeric).
OUTPUTS = {
    "db_instance_id": "DbInstanceId", "db_instance_arn": "DbInstanceArn",
    "db_instance_endpoint": "DbInstanceEndpoint", "db_instance_address": "DbInstanceAddress",
    "db_instance_port": "DbInstancePort", "db_instance_name": "DbInstanceName",
    "db_instance_resource_id": "DbInstanceResourceId", "db_security_group_id": "DbSecurityGroupId",
    "db_subnet_group_name": "DbSubnetGroupName", "db_parameter_group_name": "DbParameterGroupName",
    "master_password_secret_arn": "MasterPasswordSecretArn", "master_password_secret_name": "MasterPasswordSecretName",
    "kms_key_arn": "KmsKeyArn", "kms_key_id": "KmsKeyId",
}
RETENTION = {d: getattr(logs.RetentionDays, n) for d, n in (
    (1, "ONE_DAY"), (3, "THREE_DAYS"), (5, "FIVE_DAYS"), (7, "ONE_WEEK"), (14, "TWO_WEEKS"), (30, "ONE_MONTH"),
    (60, "TWO_MONTHS"), (90, "THREE_MONTHS"), (120, "FOUR_MONTHS"), (150, "FIVE_MONTHS"), (180, "SIX_MONTHS"),
    (365, "ONE_YEAR"), (400, "THIRTEEN_MONTHS"), (545, "EIGHTEEN_MONTHS"), (731, "TWO_YEARS"),
    (1096, "THREE_YEARS"), (1827, "FIVE_YEARS"), (2192, "SIX_YEARS"), (2557, "SEVEN_YEARS"),
    (2922, "EIGHT_YEARS"), (3288, "NINE_YEARS"), (3653, "TEN_YEARS"))}


class SharedMySqlStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, rotation_asset: Path | None = None,
                 **kwargs):
        """`rotation_asset`: the tenant rotation function's code (infra/app.py builds it) when
        secrets.rotation_schedule asks the stack for the function."""
        super().__init__(scope, construct_id, **kwargs)
        self.acknowledged: dict[str, str] = {}  # per-construct cdk-nag acknowledgements: rule -> reason
        c, inst = config, config.instance
        name = c.db_instance_identifier
        port = c.instance.port or MYSQL_PORT
        self.config = c
        for k, v in {"Environment": c.environment, "ManagedBy": "shared-mysql", "Service": c.identifier,
                     **inst.tags}.items():
            # DBProxyTargetGroup takes no tags (CloudFormation rejects the property).
            Tags.of(self).add(k, v, exclude_resource_types=["AWS::RDS::DBProxyTargetGroup"])

        azs = list(inst.availability_zones) or [f"{inst.aws_region}{z}" for z in "abcdef"[:len(inst.private_subnet_ids)]]
        vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=inst.vpc_id, availability_zones=azs,
                                          private_subnet_ids=list(inst.private_subnet_ids))
        subnets = ec2.SubnetSelection(subnets=vpc.private_subnets)

        # Existing keys, as in the seed: ARNs from config or from the SSM parameters the platform publishes.
        rds_key_arn = inst.kms_key_id or ssm.StringParameter.value_for_string_parameter(self, inst.rds_kms_key_parameter)
        rds_key = kms.Key.from_key_arn(self, "RdsKey", rds_key_arn)
        secrets_key = kms.Key.from_key_arn(
            self, "SecretsKey", ssm.StringParameter.value_for_string_parameter(self, inst.secrets_kms_key_parameter))
        # Log groups and the alarm topic get a key of their own: its policy must admit the logs/CloudWatch services.
        ops_key = kms.Key(self, "OpsKey", alias=f"alias/{name}-ops", enable_key_rotation=True,
                          description=f"{name}: RDS log groups and alarm topic", removal_policy=RemovalPolicy.RETAIN)
        ops_key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": [
                f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/rds/*",
                f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/lambda/{name}-*"]}}))
        ops_key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"]))

        subnet_group = rds.SubnetGroup(self, "SubnetGroup", vpc=vpc, vpc_subnets=subnets,
                                       subnet_group_name=f"{name}-subnet-group",
                                       description=f"{name} private subnets")
        engine = rds.DatabaseInstanceEngine.mysql(
            version=rds.MysqlEngineVersion.of(inst.mysql_version, ".".join(inst.mysql_version.split(".")[:2])))
        parameters = {**SEED_PARAMETERS, **{k: _param(v) for k, v in inst.parameters.items()},
                      "require_secure_transport": "1"}
        parameter_group = rds.ParameterGroup(self, "ParameterGroup", engine=engine, parameters=parameters,
                                             description=f"{name}: seed parameters, TLS required")
        option_group = rds.OptionGroup(self, "OptionGroup", engine=engine, description=f"{name}: audit plugin",
                                       configurations=[rds.OptionConfiguration(
                                           name="MARIADB_AUDIT_PLUGIN",
                                           settings={"SERVER_AUDIT_EVENTS": "CONNECT,QUERY_DDL,QUERY_DCL",
                                                     "SERVER_AUDIT_FILE_ROTATIONS": "10"})])

        self.db_sg = ec2.SecurityGroup(self, "SecurityGroup", vpc=vpc, security_group_name=f"{name}-sg",
                                       description=f"{name}: MySQL from allowed groups and CIDRs only",
                                       allow_all_outbound=False)
        _allow(self.db_sg, inst.allowed_security_group_ids, inst.allowed_cidr_blocks, port)

        self.log_groups = {t: logs.LogGroup(self, f"Log{t.capitalize()}", log_group_name=f"/aws/rds/instance/{name}/{t}",
                                            retention=RETENTION[inst.cloudwatch_log_retention_days],
                                            encryption_key=ops_key, removal_policy=RemovalPolicy.RETAIN)
                           for t in inst.enabled_cloudwatch_logs_exports}
        log_groups = list(self.log_groups.values())
        monitoring_role = None
        if inst.monitoring_interval:
            monitoring_role = iam.Role(
                self, "MonitoringRole", assumed_by=iam.ServicePrincipal("monitoring.rds.amazonaws.com"),
                description=f"{name}: Enhanced Monitoring",
                managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonRDSEnhancedMonitoringRole")])

        pi = inst.performance_insights
        self.db = db = rds.DatabaseInstance(
            self, "Instance", instance_identifier=name, engine=engine,
            instance_type=ec2.InstanceType(inst.instance_class.removeprefix("db.")),
            vpc=vpc, subnet_group=subnet_group, security_groups=[self.db_sg], port=port,
            parameter_group=parameter_group, option_group=option_group,
            credentials=rds.Credentials.from_generated_secret(
                inst.master_username, secret_name=c.master_secret_name, encryption_key=secrets_key,
                exclude_characters=" %+~`#$&*()|[]{}:;<>?!'/@\"\\"),
            database_name=inst.database_name, multi_az=inst.multi_az, publicly_accessible=False,
            allocated_storage=inst.allocated_storage, max_allocated_storage=inst.max_allocated_storage,
            storage_type=getattr(rds.StorageType, inst.storage_type.upper()),
            storage_encrypted=True, storage_encryption_key=rds_key,
            backup_retention=Duration.days(inst.backup_retention_period),
            preferred_backup_window=inst.backup_window, preferred_maintenance_window=inst.maintenance_window,
            deletion_protection=inst.deletion_protection,
            removal_policy=RemovalPolicy.DESTROY if inst.skip_final_snapshot else RemovalPolicy.SNAPSHOT,
            copy_tags_to_snapshot=True, iam_authentication=True, auto_minor_version_upgrade=inst.auto_minor_version_upgrade,
            cloudwatch_logs_exports=list(inst.enabled_cloudwatch_logs_exports),
            monitoring_interval=Duration.seconds(inst.monitoring_interval) if inst.monitoring_interval else None,
            monitoring_role=monitoring_role,
            enable_performance_insights=pi,
            performance_insight_encryption_key=rds_key if pi else None,
            performance_insight_retention=(rds.PerformanceInsightRetention.DEFAULT
                                           if inst.performance_insights_retention_period == 7
                                           else rds.PerformanceInsightRetention.LONG_TERM) if pi else None,
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
        )
        for lg in log_groups:
            db.node.add_dependency(lg)  # the groups exist (with retention and KMS) before RDS writes to them
        master = db.secret  # the attachment (adds host/port to the secret JSON)
        # Deleting the stack must not take the credential along; CloudFormation has no recovery-window setting.
        db.node.find_child("Secret").apply_removal_policy(RemovalPolicy.RETAIN)
        db.add_rotation_single_user(automatically_after=Duration.days(inst.secret_rotation_days),
                                    exclude_characters=" %+~`#$&*()|[]{}:;<>?!'/@\"\\")

        # The seed kept a copy of the master credential as `{environment}-{identifier}-connection`; a copy goes
        # stale at the first rotation. The master secret already holds the whole connection (engine, host, port,
        # username, password, dbname) and rotates, so `connection-secret-arn` points at it.
        topic = (sns.Topic.from_topic_arn(self, "AlarmTopic", inst.alarm_sns_topic_arn) if inst.alarm_sns_topic_arn
                 else sns.Topic(self, "AlarmTopic", topic_name=f"{name}-alarms", master_key=ops_key, enforce_ssl=True))
        self.alarms = self._alarms(name, db, inst, topic)

        proxy = None
        if inst.enable_rds_proxy:
            proxy_sg = ec2.SecurityGroup(self, "ProxySecurityGroup", vpc=vpc, security_group_name=f"{name}-proxy-sg",
                                         description=f"{name} proxy: MySQL from allowed groups and CIDRs only",
                                         allow_all_outbound=False)
            _allow(proxy_sg, inst.allowed_security_group_ids, inst.allowed_cidr_blocks, port)
            proxy_sg.add_egress_rule(self.db_sg, ec2.Port.tcp(port), "to the instance")
            self.db_sg.add_ingress_rule(proxy_sg, ec2.Port.tcp(port), "from the RDS Proxy")
            proxy_role = iam.Role(self, "ProxyRole", assumed_by=iam.ServicePrincipal("rds.amazonaws.com"),
                                  description=f"{name}: RDS Proxy reads the master's and this instance's tenant "
                                              "secrets")
            # Tenants log in through the proxy with their own secrets, which `apply` adds to the proxy's auth list
            # (shared_mysql/proxy.py). The role may read exactly those: the tenant secrets' name pattern, held to
            # this instance's by the tags apply puts on them. Never `*`.
            tenant_secrets = (f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:"
                              f"{c.environment}-*-db-*credentials-??????")
            proxy_role.add_to_policy(iam.PolicyStatement(
                sid="TenantSecrets", resources=[tenant_secrets], actions=["secretsmanager:GetSecretValue"],
                conditions={"StringEquals": {"secretsmanager:ResourceTag/managed-by": "shared-mysql",
                                             "secretsmanager:ResourceTag/instance": c.identifier}}))
            self._acknowledge(
                proxy_role, f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:"
                            f"{inst.aws_region}:<AWS::AccountId>:secret:{c.environment}-*-db-*credentials-??????]",
                "Tenant secrets come and go with `apply`, so no fixed ARN list exists; the statement is held to this "
                "instance's tenant secrets by their name pattern and their managed-by/instance tags.")
            iam_users = sorted(f"{tn}{USER_SUFFIXES[role]}" for tn, t in c.tenants.items() if t.auth == "iam"
                               for role in ("app", *(("readonly",) if t.readonly else ())))
            if iam_users:  # end-to-end IAM: the proxy signs its own token for exactly these accounts
                proxy_role.add_to_policy(iam.PolicyStatement(
                    sid="IamTenantsConnect", actions=["rds-db:connect"],
                    resources=[f"arn:{self.partition}:rds-db:{self.region}:{self.account}:dbuser:"
                               f"{db.instance_resource_id}/{u}" for u in iam_users]))
            proxy = rds.DatabaseProxy(
                self, "Proxy", db_proxy_name=f"{name}-proxy", proxy_target=rds.ProxyTarget.from_instance(db),
                secrets=[master], vpc=vpc, vpc_subnets=subnets, security_groups=[proxy_sg], role=proxy_role,
                require_tls=True, iam_auth=True, max_connections_percent=inst.proxy_max_connections_percent,
                max_idle_connections_percent=inst.proxy_max_idle_connections_percent,
                borrow_timeout=Duration.seconds(inst.proxy_connection_borrow_timeout),
                **({"default_auth_scheme": rds.DefaultAuthScheme.IAM_AUTH} if iam_users else {}))
            secrets_key.grant_decrypt(proxy_role)

        if inst.create_read_replica:
            replica = rds.DatabaseInstanceReadReplica(
                self, "ReadReplica", instance_identifier=f"{name}-replica", source_database_instance=db,
                instance_type=ec2.InstanceType((inst.replica_instance_class or inst.instance_class).removeprefix("db.")),
                vpc=vpc, subnet_group=subnet_group, security_groups=[self.db_sg], publicly_accessible=False,
                multi_az=inst.multi_az,  # encryption is inherited from the encrypted source instance
                storage_type=getattr(rds.StorageType, inst.storage_type.upper()),
                parameter_group=parameter_group, deletion_protection=inst.deletion_protection,
                iam_authentication=True, auto_minor_version_upgrade=inst.auto_minor_version_upgrade,
                monitoring_interval=Duration.seconds(inst.monitoring_interval) if inst.monitoring_interval else None,
                monitoring_role=monitoring_role, enable_performance_insights=pi,
                performance_insight_encryption_key=rds_key if pi else None,
                copy_tags_to_snapshot=True, removal_policy=RemovalPolicy.SNAPSHOT)
            self._acknowledge(
                replica, "AwsSolutions::AwsSolutions-RDS2",
                "A same-region read replica inherits encryption (and the key) from its encrypted source; "
                "CloudFormation rejects StorageEncrypted next to SourceDBInstanceIdentifier.")

        self.rotation_function = None
        if rotation_asset is not None:
            self.rotation_function = self._tenant_rotation(name, c, vpc, subnets, port, rotation_asset, secrets_key,
                                                           ops_key, master)

        # The seed's SSM exports, for other stacks (`data "aws_ssm_parameter"` in the application projects).
        prefix = c.exports_prefix
        exports = {"endpoint": db.db_instance_endpoint_address, "port": db.db_instance_endpoint_port,
                   "database-name": inst.database_name, "master-password-secret-arn": master.secret_arn,
                   "connection-secret-arn": master.secret_arn}
        if proxy:
            exports["proxy-endpoint"] = proxy.endpoint
        if self.rotation_function is not None:  # `apply` attaches tenant secrets to it (secrets.rotation_schedule)
            exports["rotation-function-arn"] = self.rotation_function.function_arn
        for key, value in exports.items():
            ssm.StringParameter(self, f"Export{''.join(p.capitalize() for p in key.split('-'))}",
                                parameter_name=f"{prefix}/{key}", string_value=value,
                                description=f"{name}: {key} (exported by shared-mysql infra)")

        outputs = {
            "db_instance_id": db.instance_identifier, "db_instance_arn": db.instance_arn,
            "db_instance_endpoint": db.instance_endpoint.socket_address,
            "db_instance_address": db.db_instance_endpoint_address, "db_instance_port": db.db_instance_endpoint_port,
            "db_instance_name": inst.database_name, "db_instance_resource_id": db.instance_resource_id,
            "db_security_group_id": self.db_sg.security_group_id,
            "db_subnet_group_name": subnet_group.subnet_group_name,
            "db_parameter_group_name": parameter_group.bind_to_instance().parameter_group_name,
            "master_password_secret_arn": master.secret_arn, "master_password_secret_name": c.master_secret_name,
            "kms_key_arn": rds_key.key_arn, "kms_key_id": rds_key.key_id,
        }
        for seed_name, out_id in OUTPUTS.items():
            CfnOutput(self, out_id, value=outputs[seed_name], description=seed_name)
        CfnOutput(self, "ConnectionSecretArn", value=master.secret_arn, description="connection_secret_arn")
        if proxy:
            CfnOutput(self, "ProxyEndpoint", value=proxy.endpoint, description="proxy_endpoint")
        if self.rotation_function is not None:
            CfnOutput(self, "TenantRotationFunctionArn", value=self.rotation_function.function_arn,
                      description="tenant_rotation_function_arn")

    def _tenant_rotation(self, name, c, vpc, subnets, port, asset: Path, secrets_key, ops_key, master):
        """The function Secrets Manager rotates tenant secrets with (shared_mysql.rotation.lambda_handler: the four
        steps, alternating twins): in the instance's private subnets, reaching only the instance and HTTPS (the
        Secrets Manager endpoint), allowed only what the four steps need on this instance's tenant secrets."""
        fn_name = f"{name}-tenant-rotation"[:64]
        sg = ec2.SecurityGroup(self, "RotationSecurityGroup", vpc=vpc, security_group_name=f"{name}-rotation-sg",
                               description=f"{name} tenant rotation: MySQL to the instance, HTTPS to Secrets Manager",
                               allow_all_outbound=False)
        sg.add_egress_rule(self.db_sg, ec2.Port.tcp(port), "to the instance")
        sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Secrets Manager API (VPC endpoint or NAT)")
        self.db_sg.add_ingress_rule(sg, ec2.Port.tcp(port), "from the tenant rotation function")
        log_group = logs.LogGroup(self, "RotationLogs", log_group_name=f"/aws/lambda/{fn_name}",
                                  retention=RETENTION[c.instance.cloudwatch_log_retention_days],
                                  encryption_key=ops_key, removal_policy=RemovalPolicy.RETAIN)
        role = iam.Role(self, "RotationRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"{name}: rotates tenant secrets (four steps) and nothing else")
        tenant_secrets = f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:{c.environment}-*"
        mine = {"StringEquals": {"secretsmanager:ResourceTag/managed-by": "shared-mysql",
                                 "secretsmanager:ResourceTag/instance": c.identifier}}
        role.add_to_policy(iam.PolicyStatement(
            sid="TenantSecretsFourSteps", resources=[tenant_secrets], conditions=mine,
            actions=["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                     "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="TagRotatedAt", resources=[tenant_secrets], actions=["secretsmanager:TagResource"],
            conditions={**mine, "ForAllValues:StringEquals": {"aws:TagKeys": ["rotated-at"]}}))
        self._acknowledge(
            role, f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:"
                  f"{c.instance.aws_region}:<AWS::AccountId>:secret:{c.environment}-*]",
            "Tenant secrets come and go with `apply`, so no fixed ARN list exists; the statements are held to this "
            "instance's tenant secrets by their managed-by/instance tags, and TagResource to the rotated-at key.")
        role.add_to_policy(iam.PolicyStatement(sid="MasterLogin", resources=[master.secret_arn],
                                               actions=["secretsmanager:GetSecretValue"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="SecretsKey", resources=[secrets_key.key_arn], actions=["kms:Decrypt", "kms:GenerateDataKey"],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"}}))
        fn = lambda_.Function(
            self, "TenantRotation", function_name=fn_name, runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64, handler="shared_mysql.rotation.lambda_handler",
            code=lambda_.Code.from_asset(str(asset)), role=role, vpc=vpc, vpc_subnets=subnets,
            security_groups=[sg], timeout=Duration.minutes(1), memory_size=256, log_group=log_group,
            environment={"SHARED_MYSQL_CA_BUNDLE": "/var/task/rds-ca.pem"},
            description=f"{name}: Secrets Manager rotation of tenant secrets (shared-mysql)")
        fn.add_permission("SecretsManagerInvoke", principal=iam.ServicePrincipal("secretsmanager.amazonaws.com"),
                          action="lambda:InvokeFunction", source_account=self.account)
        return fn

    def _acknowledge(self, construct, rule: str, reason: str) -> None:
        """A cdk-nag finding accepted on one construct, with its reason (listed by `infra check`)."""
        from aws_cdk import Acknowledgment, Validations

        Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))
        self.acknowledged[rule] = reason

    def _alarms(self, name: str, db: rds.DatabaseInstance, inst, topic) -> dict[str, cw.Alarm]:
        a = inst.alarms
        five = Duration.minutes(5)
        specs = {
            "cpu-utilization": (db.metric_cpu_utilization(period=five), a.cpu_utilization_threshold, True,
                                "CPU utilization above {t}%"),
            "free-storage-space": (db.metric_free_storage_space(period=five), a.free_storage_space_threshold, False,
                                   "free storage below {t} bytes"),
            "freeable-memory": (db.metric_freeable_memory(period=five), a.freeable_memory_threshold, False,
                                "freeable memory below {t} bytes"),
            "database-connections": (db.metric_database_connections(period=five, statistic="Maximum"),
                                     a.database_connections_threshold, True, "connections above {t}"),
            "read-latency": (db.metric("ReadLatency", period=five), a.read_latency_threshold, True,
                             "read latency above {t} s"),
            "write-latency": (db.metric("WriteLatency", period=five), a.write_latency_threshold, True,
                              "write latency above {t} s"),
        }
        out = {}
        for key, (metric, threshold, above, text) in specs.items():
            alarm = cw.Alarm(self, f"Alarm{''.join(p.capitalize() for p in key.split('-'))}",
                             alarm_name=f"{name}-{key}", metric=metric, threshold=threshold, evaluation_periods=2,
                             datapoints_to_alarm=2, alarm_description=f"{name}: {text.format(t=threshold)}",
                             comparison_operator=(cw.ComparisonOperator.GREATER_THAN_THRESHOLD if above
                                                  else cw.ComparisonOperator.LESS_THAN_THRESHOLD),
                             treat_missing_data=cw.TreatMissingData.BREACHING if key == "free-storage-space"
                             else cw.TreatMissingData.MISSING)
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            alarm.add_ok_action(cw_actions.SnsAction(topic))
            out[key] = alarm
        audit = self.log_groups.get("audit")
        if audit is not None:
            # The seed's security alarm: failed logins > 10 in 5 minutes. RDS has no such metric; the audit
            # plugin writes one FAILED_CONNECT line per failed login, so a metric filter makes one.
            metric = logs.MetricFilter(
                self, "FailedLoginFilter", log_group=audit, metric_namespace=f"SharedMySQL/{name}",
                metric_name="FailedLoginAttempts", filter_pattern=logs.FilterPattern.literal('"FAILED_CONNECT"'),
                metric_value="1", default_value=0).metric(statistic="Sum", period=five)
            alarm = cw.Alarm(self, "AlarmFailedLogin", alarm_name=f"{name}-failed-login-attempts", metric=metric,
                             threshold=a.failed_login_threshold, evaluation_periods=1,
                             comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                             treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                             alarm_description=f"{name}: failed login attempts > {a.failed_login_threshold} in 5 minutes")
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            alarm.add_ok_action(cw_actions.SnsAction(topic))
            out["failed-login-attempts"] = alarm
        return out


def _allow(sg: ec2.SecurityGroup, groups, cidrs, port: int) -> None:
    for g in groups:
        sg.add_ingress_rule(ec2.Peer.security_group_id(g), ec2.Port.tcp(port), f"MySQL from {g}")
    for cidr in cidrs:
        peer = ec2.Peer.ipv6(cidr) if ":" in cidr else ec2.Peer.ipv4(cidr)
        sg.add_ingress_rule(peer, ec2.Port.tcp(port), f"MySQL from {cidr}")
