"""Flyway-compatible schema migrations, run as the tenant (issue 14): the same file names, history table and
checksums as Flyway, so a team can move between Flyway and this tool either way without a repair."""
