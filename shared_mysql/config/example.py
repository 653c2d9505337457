"""The example written by `shared-mysql init`."""

EXAMPLE_LOCAL = """\
# shared-mysql: one MySQL/MariaDB instance shared by many services.
# Instance settings use the seed's Terraform variable names; anything left out takes the seed's default.
environment: dev
identifier: shared-mysql
target: local            # the embedded server on 127.0.0.1 (state in .shared-mysql/ next to this file)

instance:
  port: 13306
  master_username: admin
  parameters:            # the parameter group; require_secure_transport is always ON
    max_connections: 200
    long_query_time: 2
  connection_reserve: 20 # kept back for admin/operators: tenants may use at most 180 of 200

tenants:
  orders:                # -> database orders_db, users orders_user and orders_readonly
    max_connections: 20
    readonly: true
  billing:               # -> database billing_db, user billing_user
    max_connections: 10
"""

EXAMPLE_AWS = """\
# shared-mysql on AWS: the RDS instance (shared-mysql infra) and its tenants (shared-mysql up).
# Replace the placeholder ids, as in the seed's terraform.auto.tfvars.
environment: prod
identifier: shared-mysql
target: aws

instance:
  aws_region: ap-northeast-2
  mysql_version: "8.0.42"
  instance_class: db.t4g.small         # Performance Insights is off on this class (RDS does not offer it)
  allocated_storage: 30
  max_allocated_storage: 200
  multi_az: true
  backup_retention_period: 14
  backup_window: "03:00-04:00"
  maintenance_window: "Mon:04:00-Mon:05:00"
  vpc_id: vpc-0f162b9e588276e09
  private_subnet_ids: [subnet-09692620519f86cf0, subnet-0d99080cbe134b6e9]
  allowed_security_group_ids: [sg-0a1b2c3d4e5f60718]   # ECS tasks security group
  allowed_cidr_blocks: []
  alarm_sns_topic_arn: null             # null: the stack creates an encrypted topic
  enable_rds_proxy: false
  create_read_replica: false
  ca_bundle: ap-northeast-2-bundle.pem  # the RDS regional CA bundle, for TLS verification by the CLI and clients

tenants:
  orders:
    max_connections: 20
    readonly: true
  billing:
    max_connections: 10
"""
