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
